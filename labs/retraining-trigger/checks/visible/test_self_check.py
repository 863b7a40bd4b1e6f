"""Self-check: your loop starts, and a drift episode after a clean batch leads to a retrain.

The grader's copy of your workspace gets its own data and settings (see BRIEF.md), so
these pass only if everything is read from retrain.yaml. The reviewers' checks play more
scenarios and judge more closely.
"""

from __future__ import annotations

import pytest

from support.checking import expect


@pytest.mark.check(
    points=1,
    title="The worker registers a deployment and the API answers",
    feedback="`python -m pipeline.worker` and `python -m pipeline.serve --socket PATH` must start from a copy "
             "of your workspace and keep running.",
)
def test_loop_starts(loop):
    expect(not loop.startup_problem, loop.startup_problem)


@pytest.mark.check(
    points=1,
    title="A drifted batch leads to a new model version",
    feedback="The monitor must tell the platform about drift, and something on the Prefect server must start "
             "the retraining flow, which registers a version.",
)
def test_drift_leads_to_a_retrain(scenarios):
    loop = scenarios["episode"]
    expect(not loop.startup_problem, loop.startup_problem)
    episode = loop.scenarios["episode"]
    expect(not episode.monitor_failures, "; ".join(episode.monitor_failures))
    expect(bool(episode.versions), f"after drifted batches {', '.join(episode.batches)}: no model version was "
                                   f"registered within the wait")
