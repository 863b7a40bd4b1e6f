"""`labkit export`: every bundle of every lab (catalog and test labs) is scanned for
anything a candidate must not see — by name and by content hash."""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

import pytest

from labkit.bundles.export import export_lab
from labkit.catalog import lab_dirs
from labkit.cli import main
from labkit.errors import ExitStatus, WorkspaceConflict
from tests.conftest import FIXTURE_LABS, REPO

SECRET_DIRS = ("checks/hidden", "solution", "wrong", "support")
ALLOWED_DIRS = ("starter", "variants", "checks/visible")
SECRET_NAMES = {"hidden", "solution", "wrong", "support"}


def _all_labs() -> dict[str, Path]:
    return {**lab_dirs([REPO / "labs"]), **lab_dirs([FIXTURE_LABS])}


def _hashes(root: Path, subdirs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for sub in subdirs:
        for path in (root / sub).rglob("*") if (root / sub).is_dir() else []:
            if path.is_file() and "__pycache__" not in path.parts:
                out[hashlib.sha256(path.read_bytes()).hexdigest()] = f"{sub}/{path.relative_to(root / sub)}"
    return out


def _bundle_files(path: Path) -> dict[str, bytes]:
    if path.is_dir():
        return {p.relative_to(path).as_posix(): p.read_bytes() for p in path.rglob("*") if p.is_file()}
    with tarfile.open(path) as archive:
        return {m.name.split("/", 1)[1]: archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()}


@pytest.mark.parametrize("lab_id", sorted(_all_labs()))
@pytest.mark.parametrize("form", ["dir", "tar.gz"])
def test_no_bundle_carries_hidden_checks_solution_or_support(lab_id, form, tmp_path, monkeypatch):
    lab_dir = _all_labs()[lab_id]
    monkeypatch.setenv("LABKIT_LABS_PATH", str(lab_dir.parent))
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path / "home"))
    # Content a secret file shares with a public one (an empty __init__.py) proves nothing.
    secret = _hashes(lab_dir, SECRET_DIRS)
    for digest in _hashes(lab_dir, ALLOWED_DIRS) | {hashlib.sha256((lab_dir / "BRIEF.md").read_bytes()).hexdigest(): ""}:
        secret.pop(digest, None)
    assert secret or lab_id == "platform", "the scan must have secrets to look for"
    for seed in (0, 1, 7):
        out = tmp_path / (f"b{seed}.tar.gz" if form == "tar.gz" else f"b{seed}")
        outcome = export_lab(lab_id=lab_id, seed=seed, out=out)
        files = _bundle_files(outcome.path)
        assert "BRIEF.md" in files and files["LABKIT_VERSION"].startswith(b"labkit==")
        assert f"--seed {seed}".encode() in files["README-labkit.md"]
        for name, data in files.items():
            assert not SECRET_NAMES.intersection(Path(name).parts), f"{name} leaked into the bundle"
            assert hashlib.sha256(data).hexdigest() not in secret, f"{name} has the content of {secret.get(hashlib.sha256(data).hexdigest())}"
        assert not any(name.startswith("data/") for name in files), "provisioned data is rendered at start, not shipped"


def test_bundle_holds_the_seeds_variant_and_the_visible_checks(labkit_home, tmp_path):
    variants = set()
    for seed in range(8):
        files = _bundle_files(export_lab(lab_id="adder", seed=seed, out=tmp_path / f"s{seed}").path)
        assert "checks/visible/test_visible.py" in files and "adder.py" in files
        variants.add(files["variant.txt"])
    assert variants == {b"variant=plus\n", b"variant=minus\n"}  # the seed picks the variant


def test_export_refuses_to_overwrite_without_force(labkit_home, tmp_path, capsys):
    out = tmp_path / "bundle.tar.gz"
    assert main(["export", "adder", "--seed", "3", "--out", str(out)]) == ExitStatus.OK
    before = out.read_bytes()
    assert main(["export", "adder", "--seed", "4", "--out", str(out)]) == ExitStatus.WORKSPACE_CONFLICT
    assert "will not overwrite" in capsys.readouterr().err and out.read_bytes() == before
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "mine.txt").write_text("a reviewer's note")
    with pytest.raises(WorkspaceConflict):
        export_lab(lab_id="adder", seed=1, out=tmp_path / "folder")
    assert main(["export", "adder", "--seed", "4", "--out", str(out), "--force"]) == ExitStatus.OK
    assert out.read_bytes() != before
    assert main(["export", "nope", "--seed", "1", "--out", str(tmp_path / "x")]) == ExitStatus.NOT_FOUND
