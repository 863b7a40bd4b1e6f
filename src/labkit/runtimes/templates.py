"""Seed databases for local services: a fresh Prefect server spends about 8 of its ~18 s
start-up creating and migrating its SQLite database, the same schema every time. The
first start on a machine saves a consistent copy of the database it made (SQLite's online
backup, once the server answers); later starts with an empty data folder begin from that
copy. Keyed by the service's package version, so an upgrade starts fresh once more."""

from __future__ import annotations

import importlib.metadata
import os
import sqlite3
import tempfile
from pathlib import Path

# service → (its package, the database file in its data folder)
SEEDED = {"prefect": ("prefect", "prefect.db")}


def templates_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "labkit" / "service-templates"


def _template(service: str) -> Path | None:
    if service not in SEEDED:
        return None
    package, _ = SEEDED[service]
    try:
        version = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None
    return templates_dir() / f"{service}-{version}.db"


def seed(service: str, data_dir: Path) -> bool:
    """Put the template in an empty data folder; whether there was one to put."""
    template = _template(service)
    if template is None or not template.is_file():
        return False
    target = data_dir / SEEDED[service][1]
    if target.exists():
        return False
    _copy(template, target)
    return True


def save(service: str, data_dir: Path) -> None:
    """Keep a copy of a fresh server's database as the template (never fails the start)."""
    template = _template(service)
    source = data_dir / SEEDED.get(service, ("", ""))[1]
    if template is None or template.exists() or not source.is_file():
        return
    tmp: Path | None = None
    try:
        template.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=template.parent, prefix=".template-")
        os.close(fd)
        tmp = Path(name)
        _copy(source, tmp)
        with sqlite3.connect(tmp) as db:  # one self-contained file: no -wal or -shm beside it
            db.execute("PRAGMA journal_mode=DELETE")
        os.replace(tmp, template)  # atomic: a concurrent start sees the whole file or none
    except (OSError, sqlite3.Error):
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def _copy(source: Path, target: Path) -> None:
    """A consistent copy of a live SQLite database (WAL included), by SQLite's backup API."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()
