"""The reviewers' batches: fresh data drawn at grade time from the lab seed.

Each kind is a situation an on-call engineer meets. The seed decides which feature or
category moves and by how much, so outputs cannot be hard-coded, while every change
stays far from the boundary between "drift" and "noise" (measured over many seeds), so
a sound monitor passes every time. What a batch keeps unchanged is drawn typical
(support.data.typical_sample), so sampling luck never decides a check.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from support import data

ROWS = 2000
# The --threshold the threshold check passes: a one-feature shift (1/8) must not alert with it.
THRESHOLD_OVERRIDE = 0.9
_STREAM = 100  # hidden draws use streams 100+ (support.data uses 0-3)


@dataclass(frozen=True)
class Batch:
    name: str
    frame: pd.DataFrame = field(repr=False)
    feature: str | None = None  # the feature this batch changed, if any
    detail: str = ""  # what changed, in words, for assertion messages


def hidden_batches(population: data.Population, predict: data.Predict, reference: pd.DataFrame) -> dict[str, Batch]:
    """Every hidden batch of one seed, keyed by name; reference is the baseline window's logs."""
    choose = data.rng_for(population.seed, _STREAM)
    builders = [clean, noisy, covariate_shift, categorical_shift, prediction_shift, missing_spike, neutral_shift]
    batches = {}
    for index, build in enumerate(builders, start=1):
        rng = data.rng_for(population.seed, _STREAM, index)
        batch = build(population, predict, reference, rng, choose)
        batches[batch.name] = batch
    return batches


def clean(population, predict, reference, rng, choose) -> Batch:
    """Drawn like the healthy baseline days."""
    return Batch("clean", _log(data.typical_sample(population, ROWS, rng, reference, predict), predict, rng))


def noisy(population, predict, reference, rng, choose) -> Batch:
    """The baseline as a different client records it: jitter, coarser rounding, a few outliers.

    None of it is drift: together they move no feature's distribution by more than about
    0.03. The extreme balance changes sit on the side the batch's mean already leans, so
    its mean moves for sure; with a mean near zero, a relative change of it means nothing.
    """
    frame = data.typical_sample(population, ROWS, rng, reference, predict)
    for feature in ("monthly_charges", "data_usage_gb", "balance_change"):
        jitter = rng.normal(0.0, 0.01 * population.std(feature), ROWS)
        frame[feature] = data.finish(feature, frame[feature] + jitter)
    frame["monthly_charges"] = frame["monthly_charges"].round(0)
    frame["data_usage_gb"] = frame["data_usage_gb"].round(1)
    outliers = rng.choice(ROWS, size=ROWS // 200, replace=False)
    half = len(outliers) // 2
    lean = 1.0 if frame["balance_change"].mean() >= reference["balance_change"].mean() else -1.0
    extreme = population.balance_mean + lean * 6 * population.std("balance_change")
    frame.loc[outliers[:half], "balance_change"] = round(extreme, 2)
    frame.loc[outliers[half:], "data_usage_gb"] *= 3
    return Batch("noisy", _log(frame, predict, rng), detail="measurement jitter, rounding and a few outliers")


def covariate_shift(population, predict, reference, rng, choose) -> Batch:
    """One numeric feature moves by 0.5-0.8 standard deviations; nothing else changes."""
    feature = str(choose.choice(data.NUMERIC_FEATURES))
    n_std = float(choose.uniform(0.5, 0.8) * choose.choice([-1, 1]))
    background = data.typical_sample(population, ROWS, rng, reference, predict)
    frame = data.shift_numeric(population, background, feature, n_std)
    return Batch("covariate", _log(frame, predict, rng), feature, f"{feature} moved by {n_std:+.2f} std")


def categorical_shift(population, predict, reference, rng, choose) -> Batch:
    """One category gains 45-55% of the mass of a categorical feature (a new sales channel)."""
    feature = str(choose.choice(data.CATEGORICAL_FEATURES))
    categories, probs = (
        (data.PLANS, population.plan_probs) if feature == "plan" else (data.REGIONS, population.region_probs)
    )
    target = int(choose.integers(len(categories)))
    weight = float(choose.uniform(0.45, 0.55))
    shifted = (1 - weight) * np.asarray(probs) + weight * np.eye(len(categories))[target]
    frame = data.typical_sample(population, ROWS, rng, reference, predict)
    frame[feature] = rng.choice(categories, size=ROWS, p=shifted)
    detail = f"share of {feature}={categories[target]} went from {probs[target]:.0%} to {shifted[target]:.0%}"
    return Batch("categorical", _log(frame, predict, rng), feature, detail)


def prediction_shift(population, predict, reference, rng, choose) -> Batch:
    """A prior shift: the same kinds of customers, but far more of those the model calls churners."""
    pool = population.sample(5 * ROWS, rng)
    positive = predict(pool)[0] == 1
    before = float(positive.mean())
    after = min(0.8, before + float(choose.uniform(0.22, 0.3)))
    n_positive = round(after * ROWS)
    rows = np.concatenate(
        [
            rng.choice(np.flatnonzero(positive), size=n_positive, replace=n_positive > positive.sum()),
            rng.choice(np.flatnonzero(~positive), size=ROWS - n_positive, replace=False),
        ]
    )
    frame = pool.iloc[rng.permutation(rows)].reset_index(drop=True)
    detail = f"share of positive predictions went from {before:.0%} to {after:.0%}"
    return Batch("prediction", _log(frame, predict, rng), detail=detail)


def missing_spike(population, predict, reference, rng, choose) -> Batch:
    """An upstream feed breaks: a quarter to 40% of one numeric feature arrives empty."""
    feature = str(choose.choice(data.NUMERIC_FEATURES))
    share = float(choose.uniform(0.25, 0.4))
    frame = data.typical_sample(population, ROWS, rng, reference, predict)
    frame.loc[rng.random(ROWS) < share, feature] = np.nan
    return Batch("missing", _log(frame, predict, rng), feature, f"{share:.0%} of {feature} missing")


def neutral_shift(population, predict, reference, rng, choose) -> Batch:
    """A clear shift of one feature the churn label ignores: drift in the inputs, none in the answers.

    The champion learnt small weights for such features from noise, so a draw is kept only
    when the shift leaves its scores typical.
    """
    feature = str(choose.choice(data.NEUTRAL_FEATURES))
    n_std = float(choose.uniform(0.5, 0.7) * choose.choice([-1, 1]))
    for _ in range(100):
        background = data.typical_sample(population, ROWS, rng, reference, predict)
        frame = data.shift_numeric(population, background, feature, n_std)
        if data.is_typical(frame, reference, predict, columns=()):
            return Batch("one-feature", _log(frame, predict, rng), feature, f"{feature} moved by {n_std:+.2f} std")
    raise RuntimeError(f"no shift of {feature} that leaves the scores typical (seed {population.seed})")


def _log(features: pd.DataFrame, predict: data.Predict, rng: np.random.Generator) -> pd.DataFrame:
    return data.as_log(features, predict, data.BATCH_DAY, rng)
