"""A service's first fresh database becomes the seed of later empty data folders: copied
whole (what sits in the WAL included), never over an existing database, and per version."""

from __future__ import annotations

import sqlite3

from labkit.runtimes import templates


def _live_db(path):
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE alembic_version (version_num TEXT)")
    db.execute("INSERT INTO alembic_version VALUES ('head')")
    db.commit()
    return db  # left open, as a running server leaves it: the row may sit in the WAL only


def test_a_fresh_database_seeds_the_next_empty_folder_only(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    first, second, third = (tmp_path / n for n in ("first", "second", "third"))
    for folder in (first, second, third):
        folder.mkdir()
    assert not templates.seed("prefect", first)  # no template yet: a fresh start
    live = _live_db(first / "prefect.db")
    templates.save("prefect", first)
    live.close()
    assert templates.seed("prefect", second)
    with sqlite3.connect(second / "prefect.db") as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [("head",)]
    (third / "prefect.db").write_text("the candidate's data")
    assert not templates.seed("prefect", third) and (third / "prefect.db").read_text() == "the candidate's data"
    saved = list((tmp_path / "cache" / "labkit" / "service-templates").iterdir())
    assert [p.name.startswith("prefect-") and p.suffix == ".db" for p in saved] == [True]


def test_services_without_a_template_start_as_before(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    templates.save("mlflow", tmp_path)
    assert not templates.seed("mlflow", tmp_path) and not (tmp_path / "cache").exists()
