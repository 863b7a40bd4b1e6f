"""Self-check: your loop starts; clean batches start no retrain and a drift episode starts one.

The grader's copy of your workspace gets its own data and settings (see BRIEF.md), so
these pass only if everything is read from retrain.yaml. The reviewers' checks play more
scenarios and judge more closely.
"""

from __future__ import annotations

import pytest

from labkit.grading import InfraError, expect


@pytest.mark.check(
    points=1,
    title="The worker registers a deployment and the API answers",
    feedback="`python -m pipeline.worker` and `python -m pipeline.serve --socket PATH` must start from a copy "
             "of your workspace and keep running.",
)
def test_loop_starts(loop):
    loop.require_started()


@pytest.mark.check(
    points=1,
    title="Clean batches start no retrain; drifted ones do",
    feedback="The monitor must tell the platform about drift (and only drift), and something on the Prefect "
             "server must start the retraining flow, which registers a version.",
)
def test_retrains_on_drift_only(scenarios):
    loop = scenarios["episode"]
    loop.require_started()
    clean, episode = loop.scenarios["clean"], loop.scenarios["episode"]
    for scenario in (clean, episode):
        if scenario.timing_problem:
            raise InfraError(scenario.timing_problem)
    expect(not clean.monitor_failures + episode.monitor_failures,
           "; ".join(clean.monitor_failures + episode.monitor_failures))
    expect(not clean.versions, f"after clean batches {', '.join(clean.batches)}: {len(clean.versions)} retrain(s): "
                               f"{clean.describe_versions()}")
    expect(bool(episode.versions), f"after drifted batches {', '.join(episode.batches)}: no model version was "
                                   f"registered within the wait")
