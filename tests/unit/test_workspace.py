import pytest

from labkit.catalog import load_lab
from labkit.errors import WorkspaceConflict
from labkit.workspace import (
    Manifest,
    backup,
    changes_since_render,
    check_can_render,
    choose_variant,
    finish_render,
    hash_tree,
    overlay_solution,
    render_starter,
    solution_conflicts,
)


@pytest.fixture
def lab(labkit_home):
    return load_lab("adder")


def render(lab, seed, target):
    target.mkdir()
    variant = render_starter(lab, seed, target)
    finish_render(lab, seed, variant, target)
    return target


def test_the_same_seed_renders_the_same_workspace(lab, tmp_path):
    a = hash_tree(render(lab, 7, tmp_path / "a"))
    b = hash_tree(render(lab, 7, tmp_path / "b"))
    assert a == b and "adder.py" in a and "BRIEF.md" in a


def test_the_seed_picks_the_variant_deterministically(lab):
    picks = {seed: choose_variant(lab, seed) for seed in range(40)}
    assert set(picks.values()) == {"plus", "minus"}
    assert all(choose_variant(lab, seed) == variant for seed, variant in picks.items())


def test_changes_are_facts_against_the_manifest(lab, tmp_path):
    ws = render(lab, 1, tmp_path / "ws")
    (ws / "adder.py").write_text("print('mine')\n")
    (ws / "notes.md").write_text("notes")
    (ws / "variant.txt").unlink()
    (ws / "__pycache__").mkdir()
    (ws / "__pycache__" / "x.pyc").write_bytes(b"\0")
    changes = changes_since_render(ws, Manifest.read(ws))
    assert changes.modified == ["adder.py"]
    assert changes.added == ["notes.md"]
    assert changes.deleted == ["variant.txt"]


def test_render_decisions_never_clobber(lab, tmp_path):
    assert check_can_render(tmp_path / "absent", lab, 1, force=False) == "new"
    ws = render(lab, 1, tmp_path / "ws")
    (ws / "adder.py").write_text("print('my work')\n")
    assert check_can_render(ws, lab, 1, force=False) == "reuse"  # same lab and seed: keep the work
    with pytest.raises(WorkspaceConflict, match="seed 1"):
        check_can_render(ws, lab, 2, force=False)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("years of work")
    with pytest.raises(WorkspaceConflict, match="did not create"):
        check_can_render(foreign, lab, 1, force=False)
    assert check_can_render(foreign, lab, 1, force=True) == "replace"


def test_backup_moves_the_folder_aside_with_a_unique_name(lab, tmp_path):
    ws = render(lab, 1, tmp_path / "ws")
    first = backup(ws)
    render(lab, 1, ws)
    second = backup(ws)
    assert first != second and first.exists() and second.exists() and not ws.exists()
    assert (first / "adder.py").exists()


def test_the_solution_conflicts_only_with_the_candidates_changes(lab, tmp_path):
    ws = render(lab, 1, tmp_path / "ws")
    assert solution_conflicts(lab, ws) == []
    overlay_solution(lab, ws)
    assert solution_conflicts(lab, ws) == []  # already the solution: solving twice is fine
    (ws / "adder.py").write_text("print('candidate')\n")
    assert solution_conflicts(lab, ws) == ["adder.py"]


def test_hidden_checks_and_the_solution_never_enter_the_workspace(lab, tmp_path):
    from labkit.workspace import iter_files, sha256_file

    ws = render(lab, 1, tmp_path / "ws")
    secret = {sha256_file(p) for d in ("solution", "checks") for p in iter_files(lab.path / d)}
    leaked = [p.relative_to(ws).as_posix() for p in iter_files(ws) if sha256_file(p) in secret]
    assert leaked == []
    assert not any("hidden" in p.parts or "checks" in p.parts for p in ws.rglob("*"))


def test_the_enclosing_workspace_is_found_from_any_folder_below_it_and_home_is_none(lab, tmp_path):
    from labkit.workspace import enclosing_workspace

    ws = render(lab, 3, tmp_path / "ws")
    assert enclosing_workspace(ws) == ws and enclosing_workspace(ws / "data") == ws
    home = tmp_path / "user"
    (home / ".labkit" / "state").mkdir(parents=True)  # labkit's own home: .labkit/ without a manifest
    (home / "projects").mkdir()
    assert enclosing_workspace(home / "projects") is None
