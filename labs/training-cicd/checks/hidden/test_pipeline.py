"""Reviewer checks: changes pushed through the candidate's pipeline, and what it did with them."""

from __future__ import annotations

import math
import re

import pytest

from labkit.grading import expect
from support.ci import PipelineRun
from support.static import CHAIN, ORDER, STAGES

# Metrics that measure the clock, not the model: allowed to differ between two runs.
_TIMING = re.compile(r"(time|duration|seconds|latency|_s$)", re.I)


def _pushed(run: PipelineRun) -> str:
    how = "a pull request with" if run.event == "pull_request" else "a push of"
    return f"on {how} {run.change.detail} (commit {run.sha[:8]})"


def _registry_untouched(run: PipelineRun, what: str) -> None:
    expect(
        run.champion_after == run.champion_before,
        f"{_pushed(run)}, @champion moved from version {run.champion_before} to {run.champion_after}: {what}",
    )
    expect(not run.new_versions, f"{_pushed(run)}, model versions {run.new_versions} were registered: {what}")


@pytest.mark.check(
    points=3,
    title="A good change is trained, registered and promoted",
    feedback="A healthy commit on main (a data-only push) should end with a new model version serving as @champion.",
)
def test_good_change_is_registered_and_promoted(pushes):
    run = pushes["good"]
    expect(not run.problem, run.problem)
    stopped = [s for s in STAGES if not (run.stage(s) and run.stage(s).passed)]
    expect(not stopped, f"{_pushed(run)}, the pipeline did not go through: {run.summary()}{run.failure_output()}")
    expect(run.new_versions, f"{_pushed(run)}, every stage passed but no new model version was registered")
    expect(
        run.champion_after in run.new_versions,
        f"{_pushed(run)}, version(s) {run.new_versions} were registered but @champion is version "
        f"{run.champion_after} (was {run.champion_before})",
    )


def _stopped_before_training(run: PipelineRun, gate: str, what: str) -> None:
    """The gate stage ran and failed, training never ran, the registry did not change."""
    expect(not run.problem, run.problem)
    stage = run.stage(gate)
    expect(stage is not None, f"{_pushed(run)}, no stage ran `python -m pipeline {gate}`: {run.summary()}")
    expect(not stage.passed, f"{_pushed(run)}, the {gate} stage passed: {run.summary()}")
    expect(not run.ran("train"), f"{_pushed(run)}, the training stage ran anyway: {run.summary()}")
    _registry_untouched(run, what)


def _order_problems(run: PipelineRun) -> list[str]:
    """Every call of a stage started after a call of each stage before it had passed."""
    problems = []
    for before, after in ORDER:
        for call in (s for s in run.stages if s.stage == after):
            if not any(s.stage == before and s.passed and s.end_ms <= call.start_ms for s in run.stages):
                problems.append(f"`{after}` ran without waiting for `{before}` to pass ({_pushed(run)})")
    return problems


@pytest.mark.check(
    points=2,
    title="Stages wait for the ones before them",
    feedback="Nothing may train before the tests and the data check passed, nor register or deploy before the gate.",
)
def test_stages_run_in_order(pushes):
    problems = []
    for name in ("good", "regressed"):
        run = pushes[name]
        expect(not run.problem, run.problem)
        expect(run.ran("train"), f"{_pushed(run)}, no stage trained: {run.summary()}{run.failure_output()}")
        problems += _order_problems(run)
    expect(not problems, f"the order {CHAIN} is not enforced: " + "; ".join(dict.fromkeys(problems)))


@pytest.mark.check(
    points=2,
    title="A failing unit test stops the pipeline before training",
    feedback="A commit whose tests fail must not be trained, registered or deployed.",
)
def test_failing_unit_test_stops_training(pushes):
    _stopped_before_training(pushes["failing-test"], "test", "the commit's tests fail")


@pytest.mark.check(
    points=2,
    title="Data that breaks its schema fails validation, before training",
    feedback="Data that does not match data/schema.yaml must be rejected by validation, and never trained on.",
)
def test_schema_violation_fails_validation(pushes):
    for name in pushes.schema_violations:
        _stopped_before_training(pushes[name], "validate", "the data breaks its schema")


@pytest.mark.check(
    points=3,
    title="A worse model is blocked by the gate; the champion stays",
    feedback="A challenger that scores worse than the champion on the holdout must not be promoted.",
)
def test_regressed_model_is_blocked(pushes):
    run = pushes["regressed"]
    expect(not run.problem, run.problem)
    train = run.stage("train")
    expect(
        train is not None and train.passed,
        f"{_pushed(run)}, the challenger was never trained (the data is schema-valid): "
        f"{run.summary()}{run.failure_output()}",
    )
    expect(
        run.champion_after == run.champion_before,
        f"{_pushed(run)}, the worse challenger was promoted: @champion moved from version "
        f"{run.champion_before} to {run.champion_after} ({run.summary()})",
    )
    expect(not run.new_versions, f"{_pushed(run)}, the worse challenger was registered as version(s) "
                                 f"{run.new_versions}: only a challenger that passed the gate may be registered")


@pytest.mark.check(
    points=2,
    title="A pull request never changes what serves",
    feedback="Pull requests should show whether their model would pass, without registering or deploying it.",
)
def test_pull_request_does_not_deploy(pushes):
    run = pushes["pull-request"]
    expect(not run.problem, run.problem)
    expect(run.ran("test"), f"{_pushed(run)}, the pipeline did not run: {run.summary()}")
    expect(
        run.champion_after == run.champion_before,
        f"{_pushed(run)}, @champion moved from version {run.champion_before} to {run.champion_after} "
        f"before anything was merged ({run.summary()})",
    )
    expect(not run.new_versions, f"{_pushed(run)}, model version(s) {run.new_versions} were registered before "
                                 "anything was merged: only what is pushed to main may be registered")


@pytest.mark.check(
    points=2,
    title="The same commit and data train the same model",
    feedback="Run twice on the same code and data (a re-run, or the pull request of a commit), training should "
             "log exactly the same metrics.",
)
def test_training_is_reproducible(pushes):
    first, second = pushes["good"], pushes["good-again"]
    metrics = []
    for run in (first, second):
        train = run.stage("train")
        expect(train is not None and train.passed, f"{_pushed(run)}, training did not pass: {run.summary()}")
        logged = [r.metrics for r in train.runs if r.metrics]
        expect(logged, f"{_pushed(run)}, the training stage logged no MLflow run with metrics")
        metrics.append(max(logged, key=len))
    expect(first.tree == second.tree, f"the grader built two different trees ({first.tree} vs {second.tree})")
    shared = sorted(k for k in set(metrics[0]) & set(metrics[1]) if not _TIMING.search(k))
    expect(shared, f"two trainings of commit {first.sha[:8]} logged no metric in common: "
                   f"{sorted(metrics[0])} vs {sorted(metrics[1])}")
    differ = [k for k in shared if not math.isclose(metrics[0][k], metrics[1][k], rel_tol=0, abs_tol=1e-9)]
    expect(
        not differ,
        f"the same commit {first.sha[:8]} and the same data, trained twice, gave different metrics: "
        + ", ".join(f"{k} {metrics[0][k]:.6f} vs {metrics[1][k]:.6f}" for k in differ[:4]),
    )


@pytest.mark.check(
    points=2,
    title="Training runs record the commit and the data they came from",
    feedback="From an MLflow run alone, one should find the exact commit and data file a model was trained on.",
)
def test_runs_record_git_sha_and_data_hash(pushes):
    run = pushes["good"]
    train = run.stage("train")
    expect(train is not None and train.passed, f"{_pushed(run)}, training did not pass: {run.summary()}")
    expect(train.runs, f"{_pushed(run)}, the training stage logged no MLflow run")
    shas = {r.logged.get("git_sha") for r in train.runs}
    hashes = {r.logged.get("data_sha256") for r in train.runs}
    expect(run.sha in shas, f"the training run of commit {run.sha} records git_sha={sorted(map(str, shas))}")
    expect(
        run.data_sha256 in hashes,
        f"the training run of commit {run.sha[:8]} records data_sha256={sorted(map(str, hashes))}, "
        f"but the sha256 of its data/train.csv is {run.data_sha256}",
    )
