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
