"""Reviewer checks: the monitor's verdicts on fresh batches, one situation per check."""

from __future__ import annotations

import pytest

from checks.hidden.batches import THRESHOLD_OVERRIDE
from support.data import BASELINE_DAYS, FEATURES
from labkit.grading import expect
from support.runs import EXIT_ALERT, EXIT_NO_ALERT


def _outcome(run, verdict) -> str:
    return (
        f"exit status {run.returncode}, drift_detected={verdict.get('drift_detected')}, "
        f"drifted_features={verdict.get('drifted_features')}, prediction_drift={verdict.get('prediction_drift')}"
    )


def _alerted(run, verdict) -> bool:
    return run.returncode == EXIT_ALERT and verdict.get("drift_detected") is True


def _quiet(run, verdict) -> bool:
    return run.returncode == EXIT_NO_ALERT and verdict.get("drift_detected") is False


def _flagged(verdict) -> list[str]:
    """The model features among drifted_features (anything else listed there is ignored)."""
    return [name for name in verdict.get("drifted_features", []) if name in FEATURES]


@pytest.mark.check(
    points=3,
    title="No false alarm on a healthy batch",
    feedback="Compare against the agreed baseline; a batch like it must not page anyone.",
)
def test_no_false_alarm_on_clean_batch(hidden):
    _, run = hidden["clean"]
    verdict = run.verdict()
    expect(
        _quiet(run, verdict) and not verdict.get("drifted_features"),
        f"reported drift on a batch drawn like the baseline days {BASELINE_DAYS[0]}..{BASELINE_DAYS[1]}: "
        + _outcome(run, verdict),
    )


@pytest.mark.check(
    points=3,
    title="No false alarm on noisy but healthy data",
    feedback="Measurement noise, rounding and rare extreme values are not drift.",
)
def test_no_false_alarm_on_noisy_batch(hidden):
    batch, run = hidden["noisy"]
    verdict = run.verdict()
    expect(_quiet(run, verdict), f"alerted on a healthy batch with {batch.detail}: " + _outcome(run, verdict))


@pytest.mark.check(
    points=3,
    title="A covariate shift flags exactly the shifted feature",
    feedback="When one input moves, the alert should name that input and no other.",
)
def test_covariate_shift_flags_the_feature(hidden):
    batch, run = hidden["covariate"]
    verdict = run.verdict()
    flagged = _flagged(verdict)
    expect(flagged == [batch.feature], f"on a batch where only {batch.detail}, drifted_features is {flagged}")
    expect(_alerted(run, verdict), f"no alert on a batch where {batch.detail}: " + _outcome(run, verdict))


@pytest.mark.check(
    points=3,
    title="A shift of a categorical feature is flagged",
    feedback="Categorical inputs drift too; a change in their mix should be caught, and named.",
)
def test_categorical_shift_flagged(hidden):
    batch, run = hidden["categorical"]
    verdict = run.verdict()
    flagged = _flagged(verdict)
    expect(
        flagged == [batch.feature],
        f"on a batch where only the {batch.detail}, drifted_features is {flagged}",
    )
    expect(_alerted(run, verdict), f"no alert although the {batch.detail}: " + _outcome(run, verdict))


@pytest.mark.check(
    points=3,
    title="Prediction drift is detected",
    feedback="Without labels, the model's own outputs are the earliest signal; watch them too.",
)
def test_prediction_drift_detected(hidden):
    batch, run = hidden["prediction"]
    verdict = run.verdict()
    expect(
        verdict.get("prediction_drift") is True,
        f"prediction_drift is {verdict.get('prediction_drift')} although the {batch.detail}",
    )
    expect(_alerted(run, verdict), f"no alert although the {batch.detail}: " + _outcome(run, verdict))


@pytest.mark.check(
    points=3,
    title="A missing-value spike is flagged",
    feedback="An upstream feed that starts sending empty values is a data problem the monitor must report.",
)
def test_missing_value_spike_flagged(hidden):
    batch, run = hidden["missing"]
    verdict = run.verdict()
    flagged = _flagged(verdict)
    expect(
        flagged == [batch.feature],
        f"on a batch where only {batch.detail} (everything else healthy), drifted_features is {flagged}",
    )
    expect(_alerted(run, verdict), f"no alert on a batch with {batch.detail}: " + _outcome(run, verdict))


@pytest.mark.check(
    points=2,
    title="The alert threshold is configurable",
    feedback="The default comes from monitor.yaml and --threshold overrides it.",
)
def test_threshold_is_configurable(hidden):
    batch, default_run = hidden["one-feature"]
    _, override_run = hidden[("one-feature", THRESHOLD_OVERRIDE)]
    default, override = default_run.verdict(), override_run.verdict()
    expect(
        _alerted(default_run, default),
        f"with the configured threshold, no alert on a batch where {batch.detail}: " + _outcome(default_run, default),
    )
    expect(
        _quiet(override_run, override),
        f"--threshold {THRESHOLD_OVERRIDE} still alerted when one feature of {len(FEATURES)} drifted: "
        + _outcome(override_run, override),
    )
    expect(
        override.get("threshold") == pytest.approx(THRESHOLD_OVERRIDE),
        f"--threshold {THRESHOLD_OVERRIDE} reported threshold={override.get('threshold')} in drift.json",
    )
    expect(
        batch.feature in override.get("drifted_features", []),
        f"with --threshold {THRESHOLD_OVERRIDE}, {batch.feature} was no longer listed as drifted "
        f"although {batch.detail}",
    )
