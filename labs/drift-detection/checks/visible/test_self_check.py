"""Self-check: the monitor on two fixed samples of the lab's seed.

A healthy sample drawn like the baseline days, and the same kind of sample with a clear
shift of monthly_charges. Passing these means the monitor honours the contract on easy
cases; the reviewers' checks go further, on fresh data.
"""

from __future__ import annotations

import pytest

from support import data
from support.contract import drift_json_problems, html_report_problems
from labkit.grading import expect
from support.runs import EXIT_ALERT, EXIT_NO_ALERT


@pytest.fixture(scope="module")
def runs(monitor, population, champion, baseline):
    samples = data.visible_samples(population, champion, baseline)
    ran = monitor.run_all([(f"sample-{name}", frame, None) for name, frame in samples.items()])
    return {batch.removeprefix("sample-"): run for (batch, *_), run in ran.items()}


@pytest.mark.check(
    points=1,
    title="Writes drift.json and an Evidently HTML report",
    feedback="Run the monitor as in BRIEF.md and compare drift.json and drift_report.html with the contract.",
)
def test_outputs_follow_the_contract(runs):
    run = runs["clean"]
    problems = drift_json_problems(run.verdict()) + html_report_problems(run.html())
    expect(not problems, "on the clean sample: " + "; ".join(problems))


@pytest.mark.check(
    points=1,
    title="No alert on a healthy sample",
    feedback="A batch that looks like the agreed baseline should not page anyone.",
)
def test_clean_sample_raises_no_alert(runs):
    run = runs["clean"]
    verdict = run.verdict()
    quiet = verdict.get("drift_detected") is False and run.returncode == EXIT_NO_ALERT
    expect(
        quiet and not verdict.get("drifted_features"),
        f"reported drift on a healthy sample: exit status {run.returncode}, "
        f"drifted_features={verdict.get('drifted_features')}, prediction_drift={verdict.get('prediction_drift')}",
    )


@pytest.mark.check(
    points=1,
    title="Alerts on a shifted feature and names it",
    feedback="A clear shift of one feature should raise an alert that names the feature.",
)
def test_shifted_sample_names_the_feature(runs):
    feature = data.VISIBLE_SHIFT[0]
    run = runs["shifted"]
    verdict = run.verdict()
    moved = f"{feature} moved by {data.VISIBLE_SHIFT[1]} standard deviations"
    expect(
        run.returncode == EXIT_ALERT and verdict.get("drift_detected") is True,
        f"no alert on a sample where {moved} (exit status {run.returncode})",
    )
    expect(
        feature in verdict.get("drifted_features", []),
        f"{moved}, but drifted_features is {verdict.get('drifted_features')}",
    )
