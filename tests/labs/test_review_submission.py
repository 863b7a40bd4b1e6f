"""A real review of a real submission: the candidate's side (start, solve, submit) and
the hiring team's (review, sandboxed) as a new user runs them. drift-detection runs
one-shot commands; retraining-trigger runs a long-lived worker and API in the sandbox,
reaching a private Prefect server the grade starts and answering on a Unix socket.

A review runs every candidate command cold (confined commands never go through
labkit.warm), while tests/labs grades the solution warm: together, CI's proof that both
ways give full marks. `labkit verify LAB --cold` compares them check by check."""

from __future__ import annotations

import json
import os

import pytest

from labkit.cli import main

pytestmark = pytest.mark.labs


@pytest.mark.parametrize("lab_id", ["drift-detection", "retraining-trigger"])
def test_a_submission_is_reviewed_to_full_marks(lab_id, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("LABKIT_LABS_PATH", raising=False)
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path / "candidate-home"))
    monkeypatch.chdir(tmp_path)
    try:
        assert main(["start", lab_id, "--seed", "7", "--workspace", str(tmp_path / "ws")]) == 0
        assert main(["solve"]) == 0
        assert main(["submit", "--out", str(tmp_path / "subs" / "candidate.tar.gz")]) == 0
    finally:
        main(["stop"])
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path / "reviewer-home"))
    capsys.readouterr()
    code = main(["review", str(tmp_path / "subs"), "--out", str(tmp_path / "reviews"), "--json"])
    row = json.loads(capsys.readouterr().out)["leaderboard"][0]
    assert code == 0 and row["status"] == "reviewed" and row["complete"], row
    assert row["percent"] == 100 and row["flags"] == 0, row
    assert not any(p.name == "session.json" for p in (tmp_path / "reviews").rglob("session.json")), \
        "the review left a lab running"
    assert os.path.exists(tmp_path / "reviews" / "leaderboard.csv")
