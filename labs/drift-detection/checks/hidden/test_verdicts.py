"""Reviewer checks: the monitor's verdicts on fresh batches, one situation per check."""

from __future__ import annotations

import pytest

from checks.hidden.batches import CAMPAIGN_FEATURES, THRESHOLD_OVERRIDE
from support.data import BASELINE_DAYS, FEATURES
from labkit.grading import expect
from support.contract import missing_share_problems
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


def _expect_missing_feature_flagged(batch, run) -> None:
    """A batch whose one feature lost values (everything else healthy): that feature alone is
    drifted, the alert is raised, and its missing_share is what the batch holds."""
    verdict = run.verdict()
    flagged = _flagged(verdict)
    expect(
        flagged == [batch.feature],
        f"on a batch with {batch.detail} (everything else healthy), drifted_features is {flagged}",
    )
    expect(_alerted(run, verdict), f"no alert on a batch with {batch.detail}: " + _outcome(run, verdict))
    _expect_missing_share(run, verdict, batch)


def _expect_missing_share(run, verdict, batch) -> None:
    problems = missing_share_problems(verdict, batch.frame, [batch.feature])
    expect(not problems, f"on {run.label}: " + "; ".join(problems))


def _flagged(verdict) -> list[str]:
    """The model features among drifted_features (anything else listed there is ignored)."""
    return [name for name in verdict.get("drifted_features", []) if name in FEATURES]


@pytest.mark.check(
    points=3,
    title="No false alarm on a healthy batch",
    feedback="Compare against the agreed baseline; a batch like it must not page anyone.",
)
@pytest.mark.scenarios("clean")
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
@pytest.mark.scenarios("noisy")
def test_no_false_alarm_on_noisy_batch(hidden):
    batch, run = hidden["noisy"]
    verdict = run.verdict()
    expect(_quiet(run, verdict), f"alerted on a healthy batch with {batch.detail}: " + _outcome(run, verdict))


@pytest.mark.check(
    points=3,
    title="A covariate shift flags exactly the shifted feature",
    feedback="When one input moves, the alert should name that input and no other.",
)
@pytest.mark.scenarios("covariate")
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
@pytest.mark.scenarios("categorical")
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
@pytest.mark.scenarios("prediction")
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
@pytest.mark.scenarios("missing")
def test_missing_value_spike_flagged(hidden):
    _expect_missing_feature_flagged(*hidden["missing"])


@pytest.mark.check(
    points=2,
    title="A feed that stopped entirely is flagged, not a crash",
    feedback="A feature with no values left has no distribution to test, but its missing share rose: "
    "BRIEF.md says that is drift.",
)
@pytest.mark.scenarios("stopped-feed")
def test_stopped_feed_flagged(hidden):
    _expect_missing_feature_flagged(*hidden["stopped-feed"])


@pytest.mark.check(
    points=2,
    title="Missing values count as drift by their rise, not their share",
    feedback="BRIEF.md: a rise of the missing share by 0.10 or more over the reference is drift; "
    "a share the reference already had is no rise.",
)
@pytest.mark.scenarios("steady-missing")
def test_steady_missing_share_not_flagged(hidden):
    batch, run = hidden["steady-missing"]
    verdict = run.verdict()
    flagged = _flagged(verdict)
    expect(not flagged, f"given {batch.detail}, drifted_features is {flagged}")
    expect(_quiet(run, verdict), f"alerted given {batch.detail}: " + _outcome(run, verdict))
    _expect_missing_share(run, verdict, batch)


@pytest.mark.check(
    points=2,
    title="The alert threshold is configurable",
    feedback="The default comes from monitor.yaml (the file given with --config) and --threshold overrides it.",
)
@pytest.mark.scenarios("one-feature")
def test_threshold_is_configurable(hidden):
    """Only the threshold rule: which threshold a run used, and that its alert follows from
    it. Whether the features or the predictions were judged right is other checks' business,
    so a false alarm on the predictions, say, costs nothing here."""
    batch, config_run = hidden["one-feature"]
    _, override_run = hidden[("one-feature", THRESHOLD_OVERRIDE)]
    from_config, overridden = config_run.verdict(), override_run.verdict()
    runs = (
        (config_run, from_config, batch.threshold, f"alert_threshold of the monitor.yaml given is {batch.threshold}"),
        (override_run, overridden, THRESHOLD_OVERRIDE, f"--threshold was {THRESHOLD_OVERRIDE}"),
    )
    for run, verdict, threshold, source in runs:
        expect(
            verdict.get("threshold") == pytest.approx(threshold),
            f"on {run.label}, drift.json reports threshold={verdict.get('threshold')}, but {source}",
        )
        share = verdict.get("share_drifted_features")
        expected = (isinstance(share, (int, float)) and share >= threshold) or verdict.get("prediction_drift") is True
        expect(
            _alerted(run, verdict) if expected else _quiet(run, verdict),
            f"on {run.label} (threshold {threshold}, share_drifted_features={share}, "
            f"prediction_drift={verdict.get('prediction_drift')}) the alert should be "
            f"{'raised' if expected else 'quiet'}: " + _outcome(run, verdict),
        )
    expect(
        _flagged(overridden) == _flagged(from_config),
        f"--threshold {THRESHOLD_OVERRIDE} changed which features are drifted ({_flagged(from_config)} without it, "
        f"{_flagged(overridden)} with it); it only decides whether their share alerts",
    )


@pytest.mark.check(
    points=3,
    title="The reference window and logs folder come from the config",
    feedback="Read logs_dir and reference_window from the monitor.yaml given with --config, not from the code.",
)
@pytest.mark.scenarios("configured")
def test_reference_window_and_logs_dir_come_from_the_config(hidden):
    batch, run = hidden["configured"]
    verdict = run.verdict()
    reference = {key: verdict.get("reference", {}).get(key) for key in batch.window}
    expect(
        reference == batch.window,
        f"given {batch.detail}, drift.json's reference is {reference}; the configured window holds {batch.window}",
    )
    flagged = _flagged(verdict)
    expect(
        flagged == [batch.feature],
        f"given {batch.detail}, drifted_features is {flagged}: the comparison was not with the configured window",
    )


@pytest.mark.check(
    points=3,
    title="A subtle but real shift is flagged",
    feedback="A shift of a quarter of a standard deviation is small but real: BRIEF.md says the team wants it flagged.",
)
@pytest.mark.scenarios("subtle")
def test_subtle_shift_flagged(hidden):
    batch, run = hidden["subtle"]
    verdict = run.verdict()
    flagged = _flagged(verdict)
    expect(batch.feature in flagged, f"on a batch where {batch.detail}, drifted_features is {flagged}")
    expect(_alerted(run, verdict), f"no alert on a batch where {batch.detail}: " + _outcome(run, verdict))


@pytest.mark.check(
    points=3,
    title="The October campaign is caught within two days, and named",
    feedback="Replay the campaign's days: quiet before it, an alert by its second day naming what moved, "
    "and its flood of churn predictions seen.",
)
@pytest.mark.scenarios("clean", "campaign-alert-day", "campaign-late-day")
def test_campaign_caught_in_time(hidden):
    """A timely alert means nothing from a monitor that names the campaign's features on
    every day, so the quiet day counts here only for naming them when nothing moved."""
    _, quiet_run = hidden["clean"]
    quiet = quiet_run.verdict()
    named = [name for name in CAMPAIGN_FEATURES if name in _flagged(quiet)]
    expect(not named, f"on a healthy day before the campaign, drifted_features already names {named}")
    early, early_run = hidden["campaign-alert-day"]
    verdict = early_run.verdict()
    flagged = _flagged(verdict)
    expect(
        _alerted(early_run, verdict) and "tenure_months" in flagged,
        f"no alert naming tenure_months on {early.detail}: " + _outcome(early_run, verdict),
    )
    expect(
        set(flagged) <= set(CAMPAIGN_FEATURES),
        f"on {early.detail}, drifted_features is {flagged}; only {list(CAMPAIGN_FEATURES)} moved",
    )
    late, late_run = hidden["campaign-late-day"]
    verdict = late_run.verdict()
    flagged = _flagged(verdict)
    expect(
        sorted(flagged) == sorted(CAMPAIGN_FEATURES),
        f"on {late.detail}, drifted_features is {flagged}; {list(CAMPAIGN_FEATURES)} moved",
    )
    expect(
        verdict.get("prediction_drift") is True,
        f"on {late.detail}, when far more customers are predicted to churn, prediction_drift is "
        f"{verdict.get('prediction_drift')}",
    )
