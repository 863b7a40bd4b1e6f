"""Shared fixtures: every test gets its own LABKIT_HOME and sees labkit's test labs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURE_LABS = REPO / "tests" / "fixtures" / "labs"


@pytest.fixture
def labkit_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("LABKIT_HOME", str(home))
    monkeypatch.setenv("LABKIT_LABS_PATH", str(FIXTURE_LABS))
    monkeypatch.chdir(tmp_path)
    return home


@pytest.fixture
def labs_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, labkit_home: Path) -> Path:
    """A writable copy of the test labs, for tests that break a lab on purpose."""
    root = tmp_path / "labs"
    shutil.copytree(FIXTURE_LABS, root)
    monkeypatch.setenv("LABKIT_LABS_PATH", str(root))
    return root
