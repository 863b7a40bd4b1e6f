"""The retraining-trigger grader's pure parts: fast checks of how it designs and judges scenarios.

The lab's grader is proven end to end in tests/labs (real MLflow, Prefect, the candidate's
worker and API); these pin down, in seconds, what must hold on every seed and under any
load: the within-margin batch really is within the margin, versions are counted against
the scenario their trigger_batch names, and events too far apart end the check `error`.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def lab(lab_support):
    pytest.importorskip("sklearn")
    return lab_support("retraining-trigger", "support.loop", "support.data")


def offline_loop(loop_module, data, seed: int, tmp_path: Path, **overrides):
    """A Loop whose registry and Prefect server are stand-ins."""

    class Offline(loop_module.Loop):
        pass

    for name, value in overrides.items():
        setattr(Offline, name, value)
    return Offline(run=None, start=None, folder=tmp_path, population=data.Population.from_seed(seed),
                   tracking_uri="", prefect_url="http://grade-prefect/api")


@pytest.mark.parametrize("seed", [2026, 245718])
def test_the_within_margin_batch_beats_the_champion_by_less_than_the_margin(lab, tmp_path, seed):
    loop_module, data = lab
    population = data.Population.from_seed(seed)
    champion = data.train_model(population.sample(1000, regime="after", stream=1004))  # the episode's challenger
    loop = offline_loop(loop_module, data, seed, tmp_path, model=lambda self, v: champion,
                        champion=lambda self: "2")
    loop.holdout = population.sample(2000, regime="later", stream=1010)
    frame, gain = loop.within_margin_batch()
    margin = loop_module.GRADE_SETTINGS["retrain"]["min_auc_gain"]
    measured = data.auc(data.train_model(frame), loop.holdout) - data.auc(champion, loop.holdout)
    assert measured == pytest.approx(gain)
    assert 0.25 * margin <= measured <= 0.75 * margin, f"seed {seed}: gain {measured:.4f} for margin {margin}"
    again, _ = loop.within_margin_batch()
    assert again.equals(frame), "the batch must be a pure function of the seed and the champion"


def test_versions_are_attributed_by_trigger_batch_not_by_when_they_appeared(lab, tmp_path):
    loop_module, data = lab
    Version, Scenario = loop_module.Version, loop_module.Scenario
    registry = [Version("2", {"trigger_batch": "batch-0003"}, 0.0),  # episode's, seen late during poisoned
                Version("3", {"trigger_batch": "batch-0006"}, 0.0),
                Version("4", {}, 0.0)]  # untagged: stays where it was seen
    loop = offline_loop(loop_module, data, 2026, tmp_path, versions=lambda self: registry)
    loop.scenarios = {"episode": Scenario("episode", batches=["batch-0003", "batch-0004"], seen=[]),
                      "poisoned": Scenario("poisoned", batches=["batch-0006"], seen=["2", "3", "4"])}
    loop.attribute()
    assert [v.number for v in loop.scenarios["episode"].versions] == ["2"]
    assert [v.number for v in loop.scenarios["poisoned"].versions] == ["3", "4"]


@pytest.mark.parametrize(("apart_s", "judged"), [(3.0, True), (25.0, False)])
def test_events_too_far_apart_make_the_scenario_unjudgeable(lab, tmp_path, monkeypatch, apart_s, judged):
    loop_module, data = lab
    start = 1_800_000_000.0
    events = [{"event": "churn.drift.detected", "occurred": loop_module._iso(start + 30 + i * apart_s)}
              for i in range(3)]
    monkeypatch.setattr(loop_module, "_post_json", lambda url, body: {"events": events})
    loop = offline_loop(loop_module, data, 2026, tmp_path)
    # The monitors themselves ran long (a loaded machine): only the events' own times count.
    scenario = loop_module.Scenario("episode", monitor_spans=[(start + i * 2, start + 40 + i * 2) for i in range(3)])
    loop.check_spread(scenario)
    assert (scenario.spread_problem == "") is judged, scenario.spread_problem


class _Process:
    def __init__(self, alive: bool = True) -> None:
        self._alive = alive

    def alive(self) -> bool:
        return self._alive

    def output(self) -> str:
        return "importing prefect..."


def test_a_start_up_that_runs_out_on_a_loaded_machine_is_not_the_candidates_fail(lab):
    loop_module, _ = lab
    wait = loop_module._wait_for
    assert wait(lambda: True, _Process(), "worker", "registered nothing") == ("", False)
    crashed, loaded = wait(lambda: False, _Process(alive=False), "worker", "registered nothing")
    assert crashed.startswith("worker exited") and not loaded  # a crash is the candidate's, whatever the load
    idle, loaded = wait(lambda: False, _Process(), "worker", "registered nothing", timeout_s=0, loaded=lambda: False)
    assert "registered nothing within" in idle and not loaded  # a hang on an idle machine: fail
    busy, loaded = wait(lambda: False, _Process(), "worker", "registered nothing", timeout_s=0,
                        loaded_timeout_s=1.5, loaded=lambda: True)
    assert loaded and "on a loaded machine" in busy and "not judged" in busy


def test_the_checks_turn_a_loaded_start_up_into_error_and_a_crash_into_a_fail(lab, tmp_path):
    from labkit.grading import InfraError

    loop_module, data = lab
    loop = offline_loop(loop_module, data, 3, tmp_path)
    loop.require_started()  # started: nothing to say
    loop.startup_problem, loop.startup_loaded = "worker registered nothing within 300 s on a loaded machine", True
    with pytest.raises(InfraError):
        loop.require_started()
    loop.startup_problem, loop.startup_loaded = "worker exited: Traceback", False
    with pytest.raises(pytest.fail.Exception, match="worker exited"):
        loop.require_started()


def test_a_hidden_grade_draws_other_rows_from_the_same_concepts(lab) -> None:
    _, data = lab
    visible, hidden = data.Population.from_seed(2026), data.Population.from_seed(2026, draw_seed=99)
    assert hidden.tilt == visible.tilt, "the concepts (and so the right answers) stay those of the lab seed"
    assert data.Population.from_seed(2026, draw_seed=2026) == visible, "a visible grade draws from the lab seed"
    rows = visible.sample(200, regime="after", stream=3)
    assert not hidden.sample(200, regime="after", stream=3).equals(rows)
    assert hidden.sample(200, regime="after", stream=3).equals(
        data.Population.from_seed(2026, draw_seed=99).sample(200, regime="after", stream=3))
