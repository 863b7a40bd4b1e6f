"""A candidate installs from the export bundle alone: a fresh virtual environment gets labkit
from the bundle's wheel with no package index at all (`--no-index --no-deps`), and
`labkit start` works from it. The ML stack, which a candidate would take from PyPI, is
lent from this test's environment through a path entry, so the test needs no network and
no second 1.6 GB install; labkit itself can only come from the wheel."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

import pytest

from labkit.bundles.export import export_lab

pytestmark = pytest.mark.integration


def _sh(argv: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=kw.pop("timeout", 300), **kw)


def test_a_bundle_installs_with_no_index_and_starts_its_lab(tmp_path, monkeypatch):
    monkeypatch.delenv("LABKIT_LABS_PATH", raising=False)
    bundle = export_lab(lab_id="drift-detection", seed=4711, out=tmp_path / "alice.tar.gz").path
    unpacked = tmp_path / "candidate"
    with tarfile.open(bundle) as archive:
        archive.extractall(unpacked, filter="data")
    (folder,) = unpacked.iterdir()
    (wheel,) = folder.glob("*.whl")

    venv = tmp_path / "venv"
    assert _sh([sys.executable, "-m", "venv", str(venv)]).returncode == 0
    python = venv / "bin" / "python"
    site = Path(_sh([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    # The dependencies only (not a site dir: this environment's editable labkit .pth is not read).
    (site / "lent-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = _sh([str(python), "-m", "pip", "install", "-q", "--no-index", "--no-deps", f"{wheel}[local]"], cwd=folder)
    assert install.returncode == 0, install.stderr

    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABKIT_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(LABKIT_HOME=str(tmp_path / "home"), PATH=f"{venv / 'bin'}:{env.get('PATH', '')}")
    where = _sh([str(python), "-c", "import labkit; print(labkit.__file__)"], env=env)
    assert where.stdout.strip().startswith(str(site)), f"labkit came from elsewhere: {where.stdout}{where.stderr}"

    labkit = str(venv / "bin" / "labkit")
    try:
        started = _sh([labkit, "start", "drift-detection", "--seed", "4711"], cwd=folder, env=env, timeout=600)
        assert started.returncode == 0, started.stdout + started.stderr
        workspace = folder / "drift-detection"
        assert (workspace / "BRIEF.md").is_file() and (workspace / "monitor.yaml").is_file()
        # A candidate copy: the hidden checks are not in the candidate's install.
        hidden = _sh([labkit, "grade", "--hidden"], cwd=workspace, env=env)
        assert hidden.returncode == 11, hidden.stdout + hidden.stderr
    finally:
        _sh([labkit, "stop"], cwd=folder, env=env)
