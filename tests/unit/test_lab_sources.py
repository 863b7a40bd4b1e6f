"""Candidate copies and full lab sources: the published wheel carries each lab without its
hidden checks, solution and wrong fixes (tests/unit/test_packaging.py). A candidate's
commands work on that copy; the hiring team's and authors' commands stop with a clear
message and their own exit status until labkit is pointed at the full sources."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from labkit import catalog
from labkit.catalog import LABS_PATH_ENV, lab_dirs, labs_roots, load_lab
from labkit.errors import ExitStatus
from tests.conftest import FIXTURE_LABS, REPO


def _candidate_copy(src: Path, dest: Path) -> Path:
    """The lab as the wheel ships it."""
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("hidden", "solution", "wrong", "__pycache__"))
    return dest


@pytest.fixture
def candidate_labs(tmp_path, labkit_home, monkeypatch) -> Path:
    """labkit as installed from the wheel: only candidate copies in its package."""
    root = tmp_path / "candidate-labs"
    _candidate_copy(FIXTURE_LABS / "adder", root / "adder")
    monkeypatch.delenv(LABS_PATH_ENV)
    monkeypatch.setattr(catalog, "package_labs_roots", lambda: [root])
    return root


def test_an_editable_install_reads_the_full_labs_of_the_checkout(monkeypatch):
    monkeypatch.delenv(LABS_PATH_ENV, raising=False)
    assert labs_roots()[0] == REPO / "labs"
    for lab_id, path in lab_dirs().items():
        lab = load_lab(lab_id)
        assert path.is_relative_to(REPO / "labs"), path
        assert lab.has_hidden_checks and lab.has_solution and (path / "wrong").is_dir(), lab_id


def test_a_candidate_copy_starts_and_self_grades(run, candidate_labs, tmp_path):
    assert run("start", "adder", "--seed", "5", "--workspace", str(tmp_path / "ws"))[0] == ExitStatus.OK
    assert run("grade")[0] == ExitStatus.CHECKS_FAILED  # the visible checks ran on the starter


def test_hidden_grade_and_solve_say_where_the_full_sources_are(run, candidate_labs, tmp_path):
    run("start", "adder", "--seed", "5", "--workspace", str(tmp_path / "ws"))
    grades = list((tmp_path / "home").rglob("grades/*"))
    for argv, missing in ((("grade", "--hidden"), "hidden checks"), (("solve",), "solution")):
        code, _, err = run(*argv)
        assert code == ExitStatus.LAB_SOURCES_MISSING == 11, err
        assert f"needs the {missing} of adder" in err and str(candidate_labs / "adder") in err
        assert LABS_PATH_ENV in err and "--labs DIR" in err
    assert list((tmp_path / "home").rglob("grades/*")) == grades  # nothing ran, no misleading record
    assert "+" not in (tmp_path / "ws" / "adder.py").read_text()  # solve wrote nothing

    # The same session, pointed at the full sources by the flag.
    assert run("solve", "--labs", str(FIXTURE_LABS))[0] == ExitStatus.OK
    code, out, _ = run("grade", "--hidden", "--labs", str(FIXTURE_LABS), "--format", "json")
    grade = json.loads(out)
    assert code == ExitStatus.OK and grade["hidden"]
    assert any(check["visibility"] == "hidden" for check in grade["checks"])


def test_labs_flag_names_a_folder_of_labs(run, candidate_labs, tmp_path):
    code, _, err = run("list", "--labs", str(tmp_path / "nowhere"))
    assert code == ExitStatus.NOT_FOUND and "no such folder" in err
    code, _, err = run("list", "--labs", str(FIXTURE_LABS / "adder"))
    assert code == ExitStatus.USAGE and f"--labs {FIXTURE_LABS}" in err


def test_review_with_candidate_copies_only_stops_before_anything_runs(run, candidate_labs, tmp_path):
    archive = tmp_path / "sub.tar.gz"
    archive.write_bytes(b"not looked at")
    code, _, err = run("review", str(archive), "--out", str(tmp_path / "reviews"))
    assert code == ExitStatus.LAB_SOURCES_MISSING, err
    assert "no lab labkit found has them" in err and str(candidate_labs) in err and "--visible-only" in err
    assert not (tmp_path / "reviews").exists()


def test_a_submission_whose_lab_is_a_candidate_copy_is_an_error_to_rerun(run, candidate_labs, tmp_path, monkeypatch):
    run("start", "adder", "--seed", "5", "--workspace", str(tmp_path / "ws"))
    assert run("submit", "--no-grade", "--out", str(tmp_path / "sub.tar.gz"))[0] == ExitStatus.OK
    run("stop")
    # The other labs have their full sources (this checkout's), so the batch starts; the
    # worker (a process of its own) finds adder's candidate copy first and stops before any service.
    monkeypatch.setenv(LABS_PATH_ENV, str(candidate_labs))
    monkeypatch.setattr(catalog, "package_labs_roots", lambda: [REPO / "labs"])
    code, out, _ = run("review", str(tmp_path / "sub.tar.gz"), "--out", str(tmp_path / "reviews"),
                       "--sandbox", "subprocess")
    assert code == ExitStatus.LAB_SOURCES_MISSING
    assert "error" in out and "`labkit review` needs the hidden checks of adder" in out
    assert not list((tmp_path / "reviews").rglob("grade/results.jsonl"))


def test_what_a_review_hides_is_what_the_wheel_leaves_out():
    """catalog.SOURCES_ONLY (hidden from candidate code in a review) and pyproject.toml's
    exclude (left out of the wheel and sdist) name the same parts of a lab."""
    import tomllib

    hatch = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]
    expected = sorted(f"labs/*/{part}/" for part in catalog.SOURCES_ONLY)
    assert sorted(hatch["wheel"]["exclude"]) == expected and sorted(hatch["sdist"]["exclude"]) == expected
    shown = {p.relative_to(FIXTURE_LABS / "adder").as_posix() for p in catalog.candidate_copy(FIXTURE_LABS / "adder")
             if p.name != "__pycache__"}
    assert shown == {"BRIEF.md", "lab.yaml", "starter", "support", "variants", "checks/conftest.py", "checks/visible"}
