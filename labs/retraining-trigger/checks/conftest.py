"""Fixtures of the retraining-trigger checks: one copy of the candidate's loop per grade,
and the scenarios played through it in a fixed order, each only when a check needs it."""

from __future__ import annotations

import threading

import pytest

from support import data
from support.loop import ORDER, Loop, Scenario




class Scenarios:
    """Plays scenarios in ORDER up to the one asked for (they share one registry and one
    cooldown clock, so a later scenario is only fair after the earlier ones)."""

    def __init__(self, loop: Loop) -> None:
        self.loop = loop
        self._lock = threading.RLock()
        self._played: list[str] = []
        self._failed: dict[str, Exception] = {}

    def __getitem__(self, name: str) -> Loop:
        with self._lock:
            for step in ORDER[: ORDER.index(name) + 1]:
                if step in self._failed:  # played once, and it broke: every check that needs it says so
                    raise self._failed[step]
                if step not in self._played and not self.loop.startup_problem:
                    try:
                        getattr(self, f"_play_{step}")()
                    except Exception as exc:
                        self._failed[step] = exc
                        raise
                    self._played.append(step)
            return self.loop

    def _play_clean(self) -> None:
        loop = self.loop
        loop.play(Scenario("clean"), lambda s: loop.deliver(s, [loop.batch("before"), loop.batch("before")], gap_s=2),
                  expect_retrain=False)

    def _play_episode(self) -> None:
        loop = self.loop
        loop.write_holdout("after")  # the data team verified labels of the new traffic
        loop.play(Scenario("episode"), lambda s: loop.deliver(s, [loop.batch("after") for _ in range(3)], gap_s=2),
                  expect_retrain=True)

    def _play_serving(self) -> None:
        episode = self.loop.scenarios["episode"]
        rows = self.loop.batch("after").head(40)  # drawn whatever the loop did: the data stay a function of the seed
        if episode.champion_after != episode.champion_before:
            self.loop.watch_serving(rows)

    def _play_poisoned(self) -> None:
        loop = self.loop
        loop.wait_cooldown()
        poisoned = loop.play(Scenario("poisoned"), lambda s: loop.deliver(s, [loop.batch("after", labels="inverted")]),
                             expect_retrain=True)
        rows = loop.batch("after").head(40)
        if poisoned.champion_after == poisoned.champion_before:
            loop.hold_serving(poisoned, rows)

    def _play_margin(self) -> None:
        """Traffic shifts again (the data team refreshes the holdout): a challenger better than
        the champion, but by less than min_auc_gain."""
        loop = self.loop
        loop.wait_cooldown()
        loop.write_holdout("later")
        frame, gap = loop.within_margin_batch()
        margin = loop.play(Scenario("margin", note=f"designed so the team's model beats the champion by {gap:.4f}"),
                           lambda s: loop.deliver(s, [frame]), expect_retrain=True)

    def _play_burst(self) -> None:
        """Five batches of the new traffic at once, after rejected retrains: one retrain, and its
        challenger is better than the champion by far."""
        loop = self.loop
        loop.wait_cooldown()
        loop.play(Scenario("burst"), lambda s: loop.deliver(s, [loop.batch("later") for _ in range(5)]),
                  expect_retrain=True)


@pytest.fixture(scope="session")
def population(seed: int, scenario_seed: int) -> data.Population:
    """The lab's population; a hidden grade draws its rows from the hidden seed."""
    return data.Population.from_seed(seed, draw_seed=scenario_seed)


@pytest.fixture(scope="session")
def loop(run_in_workspace, start_in_workspace, start_private_service, mlflow_tracking_uri, workspace, population,
         tmp_path_factory) -> Loop:
    """The candidate's worker and API, running from the grade's copy of the workspace."""
    prefect_url = start_private_service("prefect") + "/api"
    loop = Loop(run=run_in_workspace, start=start_in_workspace, folder=tmp_path_factory.mktemp("loop"),
                population=population, tracking_uri=mlflow_tracking_uri, prefect_url=prefect_url)
    loop.prepare(workspace)
    loop.start_loop()
    return loop


@pytest.fixture(scope="session")
def scenarios(loop: Loop) -> Scenarios:
    return Scenarios(loop)
