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
        assert "BRIEF.md" in files and files["LABKIT_VERSION"].startswith(b"labkit-mlops==")
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


# ---- the labkit wheel a bundle carries --------------------------------------------------------


def _wheel_in(files: dict[str, bytes]) -> tuple[str, bytes]:
    (name,) = [n for n in files if n.endswith(".whl")]
    return name, files[name]


def test_bundle_carries_the_labkit_wheel_it_was_exported_with(tmp_path, monkeypatch):
    """The candidate installs from the bundle, not from an index where `labkit` is someone
    else's package: the wheel is there, named and hashed, and it is this labkit's build with
    candidate copies only."""
    import io
    import zipfile

    from labkit import __version__

    monkeypatch.setenv("LABKIT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LABKIT_LABS_PATH", raising=False)
    files = _bundle_files(export_lab(lab_id="drift-detection", seed=5, out=tmp_path / "b.tar.gz").path)
    name, data = _wheel_in(files)
    assert name == f"labkit_mlops-{__version__}-py3-none-any.whl"
    version_file = files["LABKIT_VERSION"].decode()
    assert f"{name} sha256={hashlib.sha256(data).hexdigest()}" in version_file
    readme = files["README-labkit.md"].decode()
    assert f"pip install './{name}[local]'" in readme and "labkit[local]==" not in readme
    with zipfile.ZipFile(io.BytesIO(data)) as wheel:
        names = wheel.namelist()
        metadata = wheel.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "Name: labkit-mlops" in metadata and f"Version: {__version__}" in metadata
    assert "labkit/_labs/drift-detection/lab.yaml" in names
    for secret in ("/checks/hidden/", "/solution/", "/wrong/"):
        assert not [n for n in names if secret in n], f"the bundle's wheel carries {secret}"


def test_an_installed_wheel_packs_back_into_the_same_wheel(tmp_path):
    """A hiring team that installed labkit from a wheel exports that same build: installed
    files, packed again from RECORD, equal the wheel's (less what the installer adds)."""
    import importlib.metadata
    import subprocess
    import sys
    import zipfile

    from labkit.bundles.wheel import DISTRIBUTION, _cached_wheel, repack_installed

    original = _cached_wheel()
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--no-compile",
                    "--target", str(target), str(original)], check=True, capture_output=True, timeout=120)
    (dist,) = [d for d in importlib.metadata.distributions(path=[str(target)]) if d.metadata["Name"] == DISTRIBUTION]
    repacked = repack_installed(dist, tmp_path / "out")

    def contents(path):
        with zipfile.ZipFile(path) as wheel:
            return {n: wheel.read(n) for n in wheel.namelist() if not n.endswith(("/RECORD", "/INSTALLER", "/REQUESTED"))}

    before, after = contents(original), contents(repacked)
    assert after.keys() == before.keys()
    assert [n for n in before if before[n] != after[n]] == []
    with zipfile.ZipFile(repacked) as wheel:  # a RECORD pip accepts: every file, hashed
        record = wheel.read(next(n for n in wheel.namelist() if n.endswith("/RECORD"))).decode()
    assert len(record.strip().splitlines()) == len(after) + 1 and "sha256=" in record
