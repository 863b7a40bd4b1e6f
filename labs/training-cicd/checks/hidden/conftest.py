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
        self._changes = {
            "good": changes.good(shipments),
            "failing-test": changes.failing_test(),
            "bad-schema": changes.schema_violation(shipments),
            "regressed": changes.regression(shipments),
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
            # The same commit and data as the good push, trained again in another checkout:
            # the pull request of that commit when it trained, else a run up to training.
            self["good"]
            pull_request = self["pull-request"]
            if pull_request.stage("train") is not None:
                return pull_request
            repo, sha = self._player.checkout(self._changes["good"], name="good-again")
            return self._player.play(self._changes["good"], repo=repo, sha=sha, until="train")
        if name == "pull-request":
            repo, sha = self._player.checkout(self._changes["good"], name="pull-request")
            return self._player.play(self._changes["good"], repo=repo, sha=sha, event="pull_request")
        return self._player.play(self._changes[name])


@pytest.fixture(scope="session")
def pushes(player, shipments) -> Pushes:
    return Pushes(player, shipments)
