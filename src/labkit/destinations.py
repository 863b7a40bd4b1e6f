"""Where a command will write, checked before it does any work.

A grade that runs for minutes and then cannot write its report, or a start that brings
services up and then finds its workspace location read-only, has wasted the user's time
and ends in a crash report. These checks run first and turn an unusable destination
into bad input that names the path and the reason.

``os.access`` is the test: it answers for the real user (root included) and reports a
read-only filesystem even to root, which a permission bit alone would not.
"""

from __future__ import annotations

import os
from pathlib import Path

from labkit.errors import BadInput, WorkspaceConflict


def check_folder_destination(path: Path, *, option: str) -> None:
    """A folder the command creates, or writes into when it exists."""
    if path.exists():
        if not path.is_dir():
            raise BadInput(f"{option} {path} is a file; a folder is needed there", hint=f"give {option} a folder")
        _require_writable(path, path, option)
        return
    _require_creatable(path, option)


def check_file_destination(path: Path, *, option: str, force: bool | None = None) -> None:
    """A file the command creates or replaces. ``force`` None: replacing is fine (a report);
    False: an existing file is the user's and is kept (exit 5); True: it may be replaced."""
    if path.is_dir():
        raise BadInput(f"{option} {path} is a folder; a file is needed there", hint=f"give {option} a file name")
    if path.exists():
        if force is False:
            raise WorkspaceConflict(f"{option} {path} exists; labkit would overwrite it",
                                    hint="choose another path, or pass --force to replace it")
        _require_writable(path, path, option)
        return
    _require_creatable(path, option)


def _require_creatable(path: Path, option: str) -> None:
    """Every missing folder up to ``path`` can be created: the nearest existing one is a
    writable folder (a file on the way makes the path impossible)."""
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise BadInput(f"{option} {path}: {ancestor} is a file, not a folder", hint=f"give {option} another path")
    _require_writable(path, ancestor, option)


def _require_writable(path: Path, where: Path, option: str) -> None:
    mode = os.W_OK | (os.X_OK if where.is_dir() else 0)
    if not os.access(where, mode):
        what = "" if where == path else f": {where} "
        raise BadInput(f"{option} {path}{what or ' '}is not writable (a read-only filesystem, or no permission)",
                       hint=f"give {option} a location you can write to")
