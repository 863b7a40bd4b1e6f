"""Where labkit keeps its own state, apart from the candidate's workspace."""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "LABKIT_HOME"


def labkit_home() -> Path:
    """$LABKIT_HOME, else ~/.labkit: sessions, service data and logs, grades."""
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".labkit").expanduser()


def session_file() -> Path:
    return labkit_home() / "session.json"


def state_dir_for(lab_id: str, seed: int) -> Path:
    return labkit_home() / "state" / f"{lab_id}-seed{seed}"


def project_file(relative: str) -> Path:
    """A project file outside the package (k8s/, infra/): the checkout's copy in an
    editable install, else the copy the wheel carries under labkit/_project/."""
    package_dir = Path(__file__).resolve().parent
    for root in (package_dir.parents[1], package_dir / "_project"):
        candidate = root / relative
        if candidate.exists():
            return candidate
    return package_dir / "_project" / relative  # missing: callers report the path they wanted


def labkit_sources() -> list[Path]:
    """labkit's own files: its package, and the checkout it runs from in an editable install
    (which also holds the full lab sources, the tests and the git history). A review hides
    them from candidate code."""
    package_dir = Path(__file__).resolve().parent
    checkout = package_dir.parents[1]
    found = [package_dir]
    if (checkout / "pyproject.toml").is_file() and (checkout / "src" / "labkit").is_dir():
        found.append(checkout)
    return found
