"""The published artifacts are what a candidate can install (the wheel an export bundle
carries, `labkit-mlops` on an index), so they carry each lab's candidate copy only: built here
from this checkout and scanned for every hidden check, solution and wrong fix of every lab,
by path and by content."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from labkit.catalog import lab_dirs, load_all
from labkit.spec import load_spec
from tests.conftest import REPO

SECRET_DIRS = ("checks/hidden", "solution", "wrong", "fair")
OPTIONAL_DIRS = ("fair",)  # honest alternatives to the solution: not every lab keeps them
PUBLIC = ("lab.yaml", "BRIEF.md", "starter/", "checks/visible/", "checks/conftest.py", "support/")
LABS = lab_dirs([REPO / "labs"])


def _files(root: Path, sub: str) -> dict[str, Path]:
    base = root / sub
    paths = [base] if base.is_file() else base.rglob("*") if base.is_dir() else []
    return {p.relative_to(root).as_posix(): p for p in paths
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


def _public_parts(lab_dir: Path) -> tuple[str, ...]:
    overlays = tuple(f"{v.overlay.rstrip('/')}/" for v in load_spec(lab_dir).variants)
    return PUBLIC + overlays


class Files(dict):
    """An artifact's files by name; a short repr keeps a failure's report readable."""

    def __repr__(self) -> str:
        return f"<{len(self)} files>"


def _build(kind: str, out: Path) -> Path:
    # The way a release job builds it, without fetching the backend: hatchling is a dev extra.
    argv = ([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(REPO)]
            if kind == "wheel" else [sys.executable, "-m", "hatchling", "build", "-t", "sdist", "-d", str(out)])
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"building the {kind} failed:\n{proc.stdout}\n{proc.stderr}"
    (artifact,) = out.glob("*.whl" if kind == "wheel" else "*.tar.gz")
    return artifact


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    with zipfile.ZipFile(_build("wheel", tmp_path_factory.mktemp("wheel"))) as archive:
        return Files((name, archive.read(name)) for name in archive.namelist() if not name.endswith("/"))


@pytest.fixture(scope="module")
def sdist(tmp_path_factory: pytest.TempPathFactory) -> Files:
    with tarfile.open(_build("sdist", tmp_path_factory.mktemp("sdist"))) as archive:
        return Files((m.name.split("/", 1)[1], b"") for m in archive.getmembers() if m.isfile())


def _lab_files(wheel: dict[str, bytes], lab_id: str) -> dict[str, bytes]:
    prefix = f"labkit/_labs/{lab_id}/"
    return {name.removeprefix(prefix): data for name, data in wheel.items() if name.startswith(prefix)}


def test_the_scan_has_labs_and_secrets_to_look_for():
    assert {"drift-detection", "training-cicd", "broken-deployment"} <= set(LABS)
    for lab_id, lab_dir in LABS.items():
        for sub in SECRET_DIRS:
            if sub not in OPTIONAL_DIRS:
                assert _files(lab_dir, sub), f"{lab_id}/{sub} is empty: the scan below would prove nothing"
    for sub in OPTIONAL_DIRS:
        assert any(_files(lab_dir, sub) for lab_dir in LABS.values()), f"no lab has {sub}/: the scan would prove nothing"


@pytest.mark.parametrize("lab_id", sorted(LABS))
def test_the_wheel_carries_no_hidden_check_solution_or_wrong_fix(wheel, lab_id):
    lab_dir = LABS[lab_id]
    packaged = _lab_files(wheel, lab_id)
    secret = {rel for sub in SECRET_DIRS for rel in _files(lab_dir, sub)}
    assert not secret & set(packaged), f"in the wheel: {sorted(secret & set(packaged))}"
    # By content too, anywhere in the wheel (a secret file copied or moved elsewhere);
    # content a secret file shares with a public one (an empty __init__.py) proves nothing.
    public = {hashlib.sha256(p.read_bytes()).hexdigest() for other in LABS.values()
              for part in _public_parts(other) for p in _files(other, part.rstrip("/")).values()}
    secret_digests = {hashlib.sha256(p.read_bytes()).hexdigest(): rel
                      for sub in SECRET_DIRS for rel, p in _files(lab_dir, sub).items()}
    for name, data in wheel.items():
        digest = hashlib.sha256(data).hexdigest()
        assert digest in public or digest not in secret_digests, f"{name} has the content of {secret_digests[digest]}"


@pytest.mark.parametrize("lab_id", sorted(LABS))
def test_the_wheel_carries_the_candidate_copy_and_nothing_else(wheel, lab_id):
    lab_dir = LABS[lab_id]
    packaged = _lab_files(wheel, lab_id)
    parts = _public_parts(lab_dir)
    expected = {rel: p.read_bytes() for part in parts for rel, p in _files(lab_dir, part.rstrip("/")).items()}
    assert any(rel.startswith("starter/") for rel in expected) and any(rel.startswith("checks/visible/") for rel in expected)
    missing = sorted(set(expected) - set(packaged))
    assert not missing, f"the candidate copy lacks {missing}: `labkit start`/`grade` need them"
    assert all(packaged[rel] == data for rel, data in expected.items())
    # A lab folder the list above does not know (a new answers/ folder) must be decided on,
    # not shipped by default: add it to PUBLIC here, or to the exclude list in pyproject.toml.
    unknown = sorted(rel for rel in packaged if not rel.startswith(parts))
    assert not unknown, f"not part of a candidate copy: {unknown}"


def test_every_packaged_lab_is_a_valid_lab(wheel, tmp_path):
    root = tmp_path / "_labs"
    for name, data in wheel.items():
        if name.startswith("labkit/_labs/"):
            (tmp_path / name.removeprefix("labkit/")).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name.removeprefix("labkit/")).write_bytes(data)
    labs, invalid = load_all([root])
    assert not invalid, invalid
    assert {lab.id for lab in labs} == set(LABS)
    assert not [path for lab in labs for sub in SECRET_DIRS if (path := lab.path / sub).exists()]


def test_the_sdist_carries_no_hidden_check_solution_or_wrong_fix(sdist):
    secret = {f"labs/{lab_id}/{rel}" for lab_id, lab_dir in LABS.items() for sub in SECRET_DIRS
              for rel in _files(lab_dir, sub)}
    assert not secret & set(sdist), f"in the sdist: {sorted(secret & set(sdist))}"
    assert "labs/drift-detection/starter/monitor.py" in sdist
    assert "tests/fixtures/labs/adder/solution/adder.py" in sdist  # labkit's own test labs are no secret
