"""The reviewers' batches: fresh data drawn at grade time from the lab seed and the review key.

Each kind is a situation an on-call engineer meets. The hidden seed (the lab seed under
the reviewer's key, labkit's ``hidden_seed`` fixture) decides which feature or category
moves, by how much, and every row, so a candidate who has the seed and this lab's
support code still cannot regenerate the batches. Every change stays far from the
boundary between "drift" and "noise" (measured over many seeds), so a sound monitor
passes every time. What a batch keeps unchanged is drawn typical
(support.data.typical_sample), so sampling luck never decides a check.

Severities are graded: clear shifts (covariate, categorical, ...), a subtle but real
one (a quarter of a standard deviation, which BRIEF.md says the team wants to hear
about), and a replay of the October campaign's first days. The missing-value rule is
met at both ends: a feed that stops entirely, and a feature as often missing in the
batch as in its reference (no rise, no drift). No batch carries a tell of
its kind: every batch, whatever its kind, has a row count drawn from one range, the
same columns in the same order and the same day in its timestamps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from support import data

ROWS_RANGE = (1400, 2200)  # every hidden batch's row count is drawn from here, whatever its kind
# The threshold check runs the one-feature batch (1/8 of the features drift) with a monitor.yaml
# whose alert_threshold is one of these (no alert), and again with --threshold THRESHOLD_OVERRIDE
# (an alert): a threshold written into the code gets one of them wrong. The override is 1/8
# itself, the boundary BRIEF.md puts on the alert's side (share >= threshold); a power of two,
# so every way of computing the share lands on it exactly.
CONFIG_THRESHOLDS = (0.3, 0.35)
THRESHOLD_OVERRIDE = 0.125
_STREAM = 100  # hidden draws use streams 100+ (support.data uses 0-3)
# The campaign replay: the day it must already alert on, and a later day when it is in full swing.
CAMPAIGN_ALERT_DAY = 2
CAMPAIGN_LATE_DAYS = (7, 8, 9)
CAMPAIGN_FEATURES = ("tenure_months", "plan")
# Subtle shifts: how far (population standard deviations) and which features (support_calls
# is a small count: a quarter of its spread rounds away).
SUBTLE_SHIFT = (0.25, 0.3)
SUBTLE_FEATURES = ("tenure_months", "monthly_charges", "data_usage_gb", "balance_change", "age")


@dataclass(frozen=True)
class Batch:
    name: str
    frame: pd.DataFrame = field(repr=False)
    feature: str | None = None  # the feature this batch changed, if any
    detail: str = ""  # what changed, in words, for assertion messages
    # A run with a monitor.yaml of the grader's: its content (logs_dir aside), its daily logs
    # (file name -> frame) and the reference window it names (start, end, rows).
    config: dict[str, Any] | None = None
    logs: dict[str, pd.DataFrame] | None = field(default=None, repr=False)
    window: dict[str, Any] | None = None
    threshold: float | None = None  # the one-feature batch: alert_threshold of its monitor.yaml


def hidden_batches(
    population: data.Population, predict: data.Predict, reference: pd.DataFrame, hidden_seed: int,
    names: set[str] | None = None,
) -> dict[str, Batch]:
    """The hidden batches of one seed and key (only ``names``, when given), keyed by name;
    reference is the baseline window's logs. Each kind has its own random streams, so
    drawing some kinds and not others changes none of them."""
    batches = {}
    for name, (index, build) in BUILDERS.items():
        if names is not None and name not in names:
            continue
        rng = data.rng_for(hidden_seed, _STREAM, index)
        choose = data.rng_for(hidden_seed, _STREAM, index, 0)
        n = int(choose.integers(ROWS_RANGE[0], ROWS_RANGE[1] + 1))
        batches[name] = build(population, predict, reference, rng, choose, n)
    return batches


def clean(population, predict, reference, rng, choose, n) -> Batch:
    """Drawn like the healthy baseline days (also the quiet day of the campaign replay)."""
    return Batch("clean", _log(data.typical_sample(population, n, rng, reference, predict), predict, rng))


def noisy(population, predict, reference, rng, choose, n) -> Batch:
    """The baseline as a different client records it: jitter, coarser rounding, a few outliers.

    None of it is drift: together they move no feature's distribution by more than about
    0.03. The extreme balance changes sit on the side the batch's mean already leans, so
    its mean moves for sure; with a mean near zero, a relative change of it means nothing.
    """
    frame = data.typical_sample(population, n, rng, reference, predict)
    for feature in ("monthly_charges", "data_usage_gb", "balance_change"):
        jitter = rng.normal(0.0, 0.01 * population.std(feature), n)
        frame[feature] = data.finish(feature, frame[feature] + jitter)
    frame["monthly_charges"] = frame["monthly_charges"].round(0)
    frame["data_usage_gb"] = frame["data_usage_gb"].round(1)
    outliers = rng.choice(n, size=n // 200, replace=False)
    half = len(outliers) // 2
    lean = 1.0 if frame["balance_change"].mean() >= reference["balance_change"].mean() else -1.0
    extreme = population.balance_mean + lean * 6 * population.std("balance_change")
    frame.loc[outliers[:half], "balance_change"] = round(extreme, 2)
    frame.loc[outliers[half:], "data_usage_gb"] *= 3
    return Batch("noisy", _log(frame, predict, rng), detail="measurement jitter, rounding and a few outliers")


def covariate_shift(population, predict, reference, rng, choose, n) -> Batch:
    """One numeric feature moves by 0.5-0.8 standard deviations; nothing else changes."""
    feature = str(choose.choice(data.NUMERIC_FEATURES))
    n_std = float(choose.uniform(0.5, 0.8) * choose.choice([-1, 1]))
    background = data.typical_sample(population, n, rng, reference, predict)
    frame = data.shift_numeric(population, background, feature, n_std)
    return Batch("covariate", _log(frame, predict, rng), feature, f"{feature} moved by {n_std:+.2f} std")


def categorical_shift(population, predict, reference, rng, choose, n) -> Batch:
    """One category gains 45-55% of the mass of a categorical feature (a new sales channel)."""
    feature = str(choose.choice(data.CATEGORICAL_FEATURES))
    categories, probs = (
        (data.PLANS, population.plan_probs) if feature == "plan" else (data.REGIONS, population.region_probs)
    )
    target = int(choose.integers(len(categories)))
    weight = float(choose.uniform(0.45, 0.55))
    shifted = (1 - weight) * np.asarray(probs) + weight * np.eye(len(categories))[target]
    frame = data.typical_sample(population, n, rng, reference, predict)
    frame[feature] = rng.choice(categories, size=n, p=shifted)
    detail = f"share of {feature}={categories[target]} went from {probs[target]:.0%} to {shifted[target]:.0%}"
    return Batch("categorical", _log(frame, predict, rng), feature, detail)


def prediction_shift(population, predict, reference, rng, choose, n) -> Batch:
    """A prior shift: the same kinds of customers, but far more of those the model calls churners."""
    pool = population.sample(5 * n, rng)
    positive = predict(pool)[0] == 1
    before = float(positive.mean())
    after = min(0.8, before + float(choose.uniform(0.22, 0.3)))
    n_positive = round(after * n)
    rows = np.concatenate(
        [
            rng.choice(np.flatnonzero(positive), size=n_positive, replace=n_positive > positive.sum()),
            rng.choice(np.flatnonzero(~positive), size=n - n_positive, replace=False),
        ]
    )
    frame = pool.iloc[rng.permutation(rows)].reset_index(drop=True)
    detail = f"share of positive predictions went from {before:.0%} to {after:.0%}"
    return Batch("prediction", _log(frame, predict, rng), detail=detail)


def missing_spike(population, predict, reference, rng, choose, n) -> Batch:
    """An upstream feed breaks: a quarter to 40% of one numeric feature arrives empty."""
    feature = str(choose.choice(data.NUMERIC_FEATURES))
    share = float(choose.uniform(0.25, 0.4))
    frame = data.typical_sample(population, n, rng, reference, predict)
    frame.loc[rng.random(n) < share, feature] = np.nan
    return Batch("missing", _log(frame, predict, rng), feature, f"{share:.0%} of {feature} missing")


def neutral_shift(population, predict, reference, rng, choose, n) -> Batch:
    """A clear shift of one feature the churn label ignores: drift in the inputs, none in the answers.

    The champion learnt small weights for such features from noise, so a draw is kept only
    when the shift leaves its scores typical.
    """
    feature = str(choose.choice(data.NEUTRAL_FEATURES))
    n_std = float(choose.uniform(0.5, 0.7) * choose.choice([-1, 1]))
    threshold = float(choose.choice(CONFIG_THRESHOLDS))
    for _ in range(100):
        background = data.typical_sample(population, n, rng, reference, predict)
        frame = data.shift_numeric(population, background, feature, n_std)
        if data.is_typical(frame, reference, predict, columns=()):
            return Batch("one-feature", _log(frame, predict, rng), feature, f"{feature} moved by {n_std:+.2f} std",
                         threshold=threshold)
    raise RuntimeError(f"no shift of {feature} that leaves the scores typical (seed {population.seed})")


def subtle_shift(population, predict, reference, rng, choose, n) -> Batch:
    """One feature moves by a quarter of a standard deviation or a little more: small, real,
    and what BRIEF.md says the team wants to hear about. A draw is kept when the feature's
    distance to the baseline is clearly above noise (0.2) yet still small (at most 0.35),
    and the rest stays typical."""
    feature = str(choose.choice(SUBTLE_FEATURES))
    n_std = float(choose.uniform(*SUBTLE_SHIFT) * choose.choice([-1, 1]))
    others = [name for name in data.FEATURES if name != feature]
    for _ in range(100):
        frame = data.shift_numeric(population, population.sample(n, rng), feature, n_std)
        clear = 0.2 <= data.distance(reference[feature], frame[feature]) <= 0.35
        if clear and _typical_columns(frame, reference, others):
            return Batch("subtle", _log(frame, predict, rng), feature, f"{feature} moved by {n_std:+.2f} std")
    raise RuntimeError(f"no clear subtle shift of {feature} in 100 draws (seed {population.seed})")


def campaign_alert_day(population, predict, reference, rng, choose, n) -> Batch:
    """The campaign's second day, as production logged it: 12% of the traffic is brand-new
    accounts, mostly on the premium plan. A timely monitor alerts now, naming tenure_months.
    A draw is kept when tenure_months sits clearly past noise and the rest stays typical."""
    return _campaign(population, predict, reference, rng, n, CAMPAIGN_ALERT_DAY, {"tenure_months": 0.13})


def campaign_late_day(population, predict, reference, rng, choose, n) -> Batch:
    """A day a week into the campaign (about half the traffic): both features that moved are
    clear, and so is the flood of "will churn" answers."""
    day = int(choose.choice(CAMPAIGN_LATE_DAYS))
    return _campaign(population, predict, reference, rng, n, day, {"tenure_months": 0.3, "plan": 0.13, "score": 0.25})


def _campaign(population, predict, reference, rng, n, days_in: int, floors: dict[str, float]) -> Batch:
    share = data.campaign_share(data.CAMPAIGN_START + timedelta(days=days_in - 1))
    others = [name for name in data.FEATURES if name not in CAMPAIGN_FEATURES]
    for _ in range(100):
        features = population.sample(n, rng, campaign_share=share)
        if not _typical_columns(features, reference, others, scores=False):
            continue
        frame = _log(features, predict, rng)
        if all(data.distance(reference[name], frame[name]) >= floor for name, floor in floors.items()):
            name = "campaign-alert-day" if days_in == CAMPAIGN_ALERT_DAY else "campaign-late-day"
            return Batch(name, frame, detail=f"day {days_in} of the campaign ({share:.0%} of the traffic new accounts)")
    raise RuntimeError(f"no clear day {days_in} of the campaign in 100 draws (seed {population.seed})")


def configured(population, predict, reference, rng, choose, n) -> Batch:
    """A monitor.yaml of the grader's: another logs folder, reference window and threshold.

    The team agreed on a new baseline after a planned change (one feature moved for good),
    kept in its own folder. That folder also holds the days of the old window (1-7 October)
    with another change in them, which must be left out. The batch, drawn like the new
    baseline, moves one feature the label ignores: one feature of eight drifts, which the
    configured threshold (above 1/8) does not alert on. A monitor that reads the window,
    the folder or the threshold from its own code, not the config, says otherwise.
    """
    moved = str(choose.choice(["tenure_months", "monthly_charges", "balance_change"]))  # the new normal
    moved_std = float(choose.uniform(0.6, 0.9) * choose.choice([-1, 1]))
    decoy = str(choose.choice(data.CATEGORICAL_FEATURES))  # what changed in the old window's days
    feature = str(choose.choice(data.NEUTRAL_FEATURES))  # what drifts in the batch
    n_std = float(choose.uniform(0.5, 0.7) * choose.choice([-1, 1]))
    threshold = float(choose.choice(CONFIG_THRESHOLDS))
    days = _november_window(choose)

    def new_normal(rows: int) -> pd.DataFrame:
        return data.shift_numeric(population, population.sample(rows, rng), moved, moved_std)

    logs, window_frame = _own_logs(days, new_normal, lambda rows: _categorical_shift(population, decoy, 0.5, rows, rng),
                                   predict, rng)
    others = [name for name in data.FEATURES if name != feature]
    for _ in range(100):
        frame = data.shift_numeric(population, new_normal(n), feature, n_std)
        if (_typical_columns(frame, window_frame, others, scores=True, predict=predict)
                and data.distance(window_frame[feature], frame[feature]) >= 0.35):
            break
    else:
        raise RuntimeError(f"no typical batch against the configured window in 100 draws (seed {population.seed})")
    detail = (f"a monitor.yaml with logs_dir of its own, reference_window {days[0]}..{days[-1]} and "
              f"alert_threshold {threshold}; only {feature} drifted (by {n_std:+.2f} std)")
    return _own_config_batch("configured", _log(frame, predict, rng), feature, detail, days, threshold, logs,
                             window_frame)


def stopped_feed(population, predict, reference, rng, choose, n) -> Batch:
    """An upstream feed stops: one feature, any of the eight, arrives empty in every row (the
    model scores those requests on its imputed value). No distribution is left to compare,
    and Evidently refuses an empty column: this is the missing-value rule at its extreme,
    a drifted feature and an alert, never a crash."""
    feature = str(choose.choice(data.FEATURES))
    frame = data.typical_sample(population, n, rng, reference, predict)
    frame[feature] = np.nan
    return Batch("stopped-feed", _log(frame, predict, rng), feature, f"every value of {feature} missing")


def steady_missing(population, predict, reference, rng, choose, n) -> Batch:
    """A monitor.yaml of the grader's whose baseline has a feature that is often empty on
    healthy days too (an optional field): 12-18% of its values are missing in the
    reference window and in the batch alike. The rule is a rise of the missing share over
    the reference; a steady share is no rise, so no drift. A monitor that judges the
    batch's missing share on its own flags the feature every day.

    Its monitor.yaml and logs folder look like the configured batch's (a November window
    of 4-6 days beside the old window's days, a threshold from CONFIG_THRESHOLDS), so the
    config tells neither batch from the other."""
    feature = str(choose.choice(data.NUMERIC_FEATURES))
    rate = float(choose.uniform(0.12, 0.18))
    threshold = float(choose.choice(CONFIG_THRESHOLDS))
    days = _november_window(choose)

    def often_missing(rows: int) -> pd.DataFrame:
        frame = population.sample(rows, rng)
        frame.loc[rng.random(rows) < rate, feature] = np.nan
        return frame

    logs, window_frame = _own_logs(days, often_missing, lambda rows: population.sample(rows, rng), predict, rng)
    baseline_share = float(window_frame[feature].isna().mean())
    for _ in range(100):
        frame = often_missing(n)
        steady = abs(float(frame[feature].isna().mean()) - baseline_share) <= 0.015
        if steady and _typical_columns(frame, window_frame, data.FEATURES, scores=True, predict=predict):
            break
    else:
        raise RuntimeError(f"no typical batch against the often-missing window in 100 draws (seed {population.seed})")
    share = float(frame[feature].isna().mean())
    detail = (f"a monitor.yaml whose reference window {days[0]}..{days[-1]} has {baseline_share:.0%} of "
              f"{feature} missing, as the batch has ({share:.0%})")
    return _own_config_batch("steady-missing", _log(frame, predict, rng), feature, detail, days, threshold, logs,
                             window_frame)


def _november_window(choose) -> list[date]:
    """The reference window of a monitor.yaml of the grader's: 4-6 days early in November."""
    start = date(2026, 11, 1) + timedelta(days=int(choose.integers(0, 10)))
    return [start + timedelta(days=i) for i in range(int(choose.integers(4, 7)))]


def _own_logs(days, window_day, old_day, predict, rng) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """A logs folder of the grader's, one layout for every batch that has one (so the folder
    tells none of them apart): the window's days from ``window_day(rows)`` beside the old
    window's seven days (1-7 October) from ``old_day(rows)``. Returns the files (name ->
    frame) and the window's rows as one frame."""
    def logged(make, day):
        return _log(make(int(rng.integers(1400, 1601))), predict, rng, day)

    window = {f"{day:%Y-%m-%d}.csv": logged(window_day, day) for day in days}
    old_days = (data.BASELINE_DAYS[0] + timedelta(days=i) for i in range(7))
    old = {f"{day:%Y-%m-%d}.csv": logged(old_day, day) for day in old_days}
    return {**old, **window}, pd.concat(window.values(), ignore_index=True)


def _own_config_batch(name, frame, feature, detail, days, threshold, logs, window_frame) -> Batch:
    """A batch run with a monitor.yaml of the grader's, whose logs_dir the runner sets."""
    window = {"start": days[0].isoformat(), "end": days[-1].isoformat()}
    return Batch(name, frame, feature, detail,
                 config={"reference_window": window, "alert_threshold": threshold, "experiment": "drift-monitoring"},
                 logs=logs, window={**window, "rows": len(window_frame)})


def _categorical_shift(population, feature: str, weight: float, rows: int, rng) -> pd.DataFrame:
    categories, probs = (
        (data.PLANS, population.plan_probs) if feature == "plan" else (data.REGIONS, population.region_probs)
    )
    frame = population.sample(rows, rng)
    target = int(np.argmin(probs))
    mix = (1 - weight) * np.asarray(probs) + weight * np.eye(len(probs))[target]
    frame[feature] = rng.choice(categories, size=rows, p=mix)
    return frame


def _typical_columns(frame, reference, columns, *, scores: bool = False, predict=None) -> bool:
    """Whether the given columns (and, with ``scores``, the model's scores) of a feature frame
    sit within TYPICAL_DISTANCE of the reference."""
    if scores and not data.is_typical(frame, reference, predict, columns=()):
        return False
    return all(data.distance(reference[name], frame[name]) <= data.TYPICAL_DISTANCE for name in columns)


def _log(
    features: pd.DataFrame, predict: data.Predict, rng: np.random.Generator, day: date = data.BATCH_DAY
) -> pd.DataFrame:
    return data.as_log(features, predict, day, rng)


# name -> (random stream index, builder). Indexes are fixed: a new kind takes a new index.
BUILDERS = {
    "clean": (1, clean),
    "noisy": (2, noisy),
    "covariate": (3, covariate_shift),
    "categorical": (4, categorical_shift),
    "prediction": (5, prediction_shift),
    "missing": (6, missing_spike),
    "one-feature": (7, neutral_shift),
    "subtle": (8, subtle_shift),
    "campaign-alert-day": (9, campaign_alert_day),
    "campaign-late-day": (10, campaign_late_day),
    "configured": (11, configured),
    "stopped-feed": (12, stopped_feed),
    "steady-missing": (13, steady_missing),
}
