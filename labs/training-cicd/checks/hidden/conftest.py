"""Hidden fixtures: each change pushed through the candidate's pipeline once per grade.

Changes are played one at a time and lazily (a grade of a few checks plays only the
changes those checks need), since they share the one MLflow registry and its champion.
"""

from __future__ import annotations

import threading

import pytest

from support import changes
from support.ci import PipelinePlayer, PipelineRun


class Pushes:
    def __init__(self, player: PipelinePlayer, shipments) -> None:
        self._player = player
        violations = changes.schema_violations(shipments)
        self.schema_violations = tuple(c.name for c in violations)
        self._changes = {
            "good": changes.good(shipments),
            "failing-test": changes.failing_test(),
            "regressed": changes.regression(shipments),
            **{c.name: c for c in violations},
        }
        self._runs: dict[str, PipelineRun] = {}
        self._lock = threading.RLock()

    def __getitem__(self, name: str) -> PipelineRun:
        with self._lock:
            if name not in self._runs:
                self._runs[name] = self._play(name)
            return self._runs[name]

    def _play(self, name: str) -> PipelineRun:
        if name == "good-again":
            # The same files built a second time: the pull request of the good change when it
            # trained (GitHub's test merge has the push's tree), else a re-run of the push.
            self["good"]
            pull_request = self["pull-request"]
            if pull_request.stage("train") is not None and pull_request.tree == self["good"].tree:
                return pull_request
            return self._player.play(self._changes["good"], name="good-again", rerun_of="good")
        if name == "pull-request":
            return self._player.play(self._changes["good"], name="pull-request", event="pull_request")
        if name == "regressed":
            self._player.restore_champion()  # worse than a known champion, whatever ran before
        return self._player.play(self._changes[name])


@pytest.fixture(scope="session")
def pushes(player, shipments, hidden_seed) -> Pushes:
    """The pushes are drawn from the hidden seed (the lab seed under the review key): the
    same population as the workspace's data, rows the candidate cannot regenerate."""
    return Pushes(player, shipments.hidden(hidden_seed))
