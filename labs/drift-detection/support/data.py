"""The churn scenario's data: one seeded Population, and every frame drawn from it.

Provisioning (training set, production logs) and the checks (fresh batches at grade
time) draw from the same Population, so "healthy" in a check means exactly what the
agreed baseline days of the logs mean. Each draw has its own random stream
``(seed, stream)``: adding a draw never changes the bytes of another, and the same
seed always gives byte-identical files.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Callable, Iterable

import numpy as np
import pandas as pd

NUMERIC_FEATURES = (
    "tenure_months",
    "monthly_charges",
    "support_calls",
    "data_usage_gb",
    "balance_change",
    "age",
)
CATEGORICAL_FEATURES = ("plan", "region")
FEATURES = NUMERIC_FEATURES + CATEGORICAL_FEATURES
# Features the churn label does not depend on (the champion learns only small, noisy weights for them).
NEUTRAL_FEATURES = ("data_usage_gb", "age")
PLANS = ("basic", "standard", "premium")
REGIONS = ("north", "south", "east", "west")
LABEL = "churned"
LOG_COLUMNS = ("request_id", "timestamp", *FEATURES, "prediction", "score")

FIRST_LOG_DAY = date(2026, 10, 1)
LOG_DAYS = 30
BASELINE_DAYS = (date(2026, 10, 1), date(2026, 10, 7))
CAMPAIGN_START = date(2026, 10, 22)
# A one-day upstream outage: the usage feed failed for part of the traffic.
USAGE_OUTAGE_DAY = date(2026, 10, 15)
# The day fresh batches (visible samples, hidden checks) pretend to come from.
BATCH_DAY = date(2026, 10, 31)

TRAINING_ROWS = 5000
VISIBLE_ROWS = 2000
VISIBLE_SHIFT = ("monthly_charges", 0.7)  # feature, shift in population standard deviations
# How far (normed Wasserstein / Jensen-Shannon distance) a typical draw may sit from the
# baseline on any feature; drift tests commonly alert at 0.1.
TYPICAL_DISTANCE = 0.05

# Random streams: one per kind of draw. Hidden checks use ids from 100 upwards.
STREAM_POPULATION = 0
STREAM_TRAINING = 1
STREAM_LOGS = 2
STREAM_VISIBLE = 3

# Integer-valued features (written without a decimal point, missing as an empty cell).
_INTEGER_FEATURES = ("tenure_months", "support_calls", "age")
_BOUNDS = {
    "tenure_months": (1, 120),
    "monthly_charges": (15.0, 200.0),
    "support_calls": (0, 30),
    "data_usage_gb": (0.0, None),
    "balance_change": (None, None),
    "age": (18, 90),
}
_USAGE_SIGMA = 0.55  # log-scale spread of data usage
_TENURE_SHAPE = 1.5  # gamma shape of tenure: many young accounts, a long loyal tail

Predict = Callable[[pd.DataFrame], tuple[np.ndarray, np.ndarray]]
"""A model's view of a feature frame: (prediction 0/1, score = P(churn))."""


def rng_for(seed: int, stream: int, *extra: int) -> np.random.Generator:
    """An independent, reproducible random stream for one kind of draw."""
    return np.random.default_rng([seed, stream, *extra])


@dataclass(frozen=True)
class Population:
    """The customer base of one lab seed: feature distributions and how churn depends on them.

    The seed moves means, category mixes and label coefficients modestly, so two seeds
    give different labs with the same story.
    """

    seed: int
    tenure_mean: float
    charges_mean: float
    charges_sd: float
    calls_rate: float
    usage_log_mean: float
    balance_mean: float
    balance_sd: float
    age_mean: float
    age_sd: float
    plan_probs: tuple[float, ...]
    region_probs: tuple[float, ...]
    missing_rates: tuple[tuple[str, float], ...]
    coefficients: tuple[tuple[str, float], ...]  # per standardised numeric feature
    plan_effects: tuple[float, ...]
    region_effects: tuple[float, ...]
    intercept: float

    @classmethod
    def from_seed(cls, seed: int) -> Population:
        rng = rng_for(seed, STREAM_POPULATION)
        u = rng.uniform
        return cls(
            seed=seed,
            tenure_mean=u(26, 36),
            charges_mean=u(58, 74),
            charges_sd=u(18, 24),
            calls_rate=u(1.3, 2.2),
            usage_log_mean=u(2.3, 2.8),
            # Balance changes net out to about zero across customers; the spread is large.
            balance_mean=u(-1.0, 1.0),
            balance_sd=u(200, 300),
            age_mean=u(40, 48),
            age_sd=u(12, 15),
            plan_probs=_mix(rng, (0.45, 0.35, 0.20)),
            region_probs=_mix(rng, (0.30, 0.25, 0.25, 0.20)),
            missing_rates=(("data_usage_gb", u(0.01, 0.02)), ("age", u(0.005, 0.012))),
            coefficients=(
                ("tenure_months", -u(0.9, 1.2)),
                ("monthly_charges", u(0.4, 0.6)),
                ("support_calls", u(0.6, 0.9)),
                ("balance_change", -u(0.2, 0.4)),
            ),
            plan_effects=(0.0, -u(0.1, 0.3), u(0.2, 0.4)),
            region_effects=tuple(float(v) for v in rng.uniform(-0.15, 0.15, size=len(REGIONS))),
            intercept=u(-1.5, -1.2),
        )

    def std(self, feature: str) -> float:
        """The population standard deviation of a numeric feature (before rounding and clipping)."""
        usage_mean = np.exp(self.usage_log_mean + _USAGE_SIGMA**2 / 2)
        return float(
            {
                "tenure_months": self.tenure_mean / np.sqrt(_TENURE_SHAPE),
                "monthly_charges": self.charges_sd,
                "support_calls": np.sqrt(self.calls_rate),
                "data_usage_gb": usage_mean * np.sqrt(np.exp(_USAGE_SIGMA**2) - 1),
                "balance_change": self.balance_sd,
                "age": self.age_sd,
            }[feature]
        )

    def mean(self, feature: str) -> float:
        return float(
            {
                "tenure_months": self.tenure_mean,
                "monthly_charges": self.charges_mean,
                "support_calls": self.calls_rate,
                "data_usage_gb": np.exp(self.usage_log_mean + _USAGE_SIGMA**2 / 2),
                "balance_change": self.balance_mean,
                "age": self.age_mean,
            }[feature]
        )

    def sample(self, n: int, rng: np.random.Generator, *, campaign_share: float = 0.0) -> pd.DataFrame:
        """n customers' features, with the baseline's occasional missing values.

        ``campaign_share`` of them come from the October acquisition campaign: brand-new
        accounts, mostly sold the premium plan.
        """
        raw = {
            "tenure_months": rng.gamma(_TENURE_SHAPE, self.tenure_mean / _TENURE_SHAPE, n),
            "monthly_charges": rng.normal(self.charges_mean, self.charges_sd, n),
            "support_calls": rng.poisson(self.calls_rate, n).astype(float),
            "data_usage_gb": rng.lognormal(self.usage_log_mean, _USAGE_SIGMA, n),
            "balance_change": rng.normal(self.balance_mean, self.balance_sd, n),
            "age": rng.normal(self.age_mean, self.age_sd, n),
        }
        frame = pd.DataFrame({name: finish(name, values) for name, values in raw.items()})
        frame["plan"] = rng.choice(PLANS, size=n, p=self.plan_probs)
        frame["region"] = rng.choice(REGIONS, size=n, p=self.region_probs)

        campaign = rng.random(n) < campaign_share
        k = int(campaign.sum())
        frame.loc[campaign, "tenure_months"] = rng.integers(1, 4, k).astype(float)
        frame.loc[campaign, "plan"] = rng.choice(PLANS, size=k, p=(0.1, 0.3, 0.6))

        for feature, rate in self.missing_rates:
            frame.loc[rng.random(n) < rate, feature] = np.nan
        return frame

    def churn_probability(self, features: pd.DataFrame) -> np.ndarray:
        """P(churn | features): a logistic function of standardised features (missing = average)."""
        logit = np.full(len(features), self.intercept)
        for feature, coefficient in self.coefficients:
            z = (features[feature] - self.mean(feature)) / self.std(feature)
            logit += coefficient * z.fillna(0.0).to_numpy()
        logit += features["plan"].map(dict(zip(PLANS, self.plan_effects))).to_numpy(dtype=float)
        logit += features["region"].map(dict(zip(REGIONS, self.region_effects))).to_numpy(dtype=float)
        return 1.0 / (1.0 + np.exp(-logit))


def finish(feature: str, values: np.ndarray | pd.Series) -> np.ndarray:
    """Round and clip raw values the way the product records them (missing stays missing)."""
    values = np.asarray(values, dtype=float)
    low, high = _BOUNDS[feature]
    if low is not None or high is not None:
        values = np.clip(values, low, high)
    return np.round(values, 0 if feature in _INTEGER_FEATURES else 2)


def shift_numeric(population: Population, frame: pd.DataFrame, feature: str, n_std: float) -> pd.DataFrame:
    """A copy of frame whose numeric feature moved by n_std population standard deviations."""
    shifted = frame.copy()
    moved = shifted[feature] + n_std * population.std(feature)
    shifted[feature] = np.where(shifted[feature].isna(), np.nan, finish(feature, moved))
    return shifted


def training_set(population: Population) -> pd.DataFrame:
    """The labelled history the champion was trained on: healthy customers, like the baseline days."""
    rng = rng_for(population.seed, STREAM_TRAINING)
    features = population.sample(TRAINING_ROWS, rng)
    labels = rng.random(TRAINING_ROWS) < population.churn_probability(features)
    return features.assign(**{LABEL: labels.astype(int)})


def campaign_share(day: date) -> float:
    """The share of a day's traffic from the acquisition campaign: a ramp from CAMPAIGN_START."""
    days_in = (day - CAMPAIGN_START).days + 1
    return 0.0 if days_in <= 0 else min(0.5, 0.06 * days_in)


def log_days() -> list[date]:
    return [FIRST_LOG_DAY + timedelta(days=i) for i in range(LOG_DAYS)]


def production_log(population: Population, day: date, predict: Predict) -> pd.DataFrame:
    """One day of inference logs: ~1500 requests, their features and the champion's answers.

    Days this size keep the sampling noise of a distance test (about 0.035 reference
    standard deviations) well under the usual 0.1 threshold, so a healthy day looks healthy.
    """
    rng = rng_for(population.seed, STREAM_LOGS, day.toordinal())
    n = int(rng.integers(1400, 1601))
    features = population.sample(n, rng, campaign_share=campaign_share(day))
    if day == USAGE_OUTAGE_DAY:
        features.loc[rng.random(n) < 0.35, "data_usage_gb"] = np.nan
    return as_log(features, predict, day, rng)


def baseline_reference(population: Population, predict: Predict) -> pd.DataFrame:
    """The logs of the agreed baseline days: the same rows the provisioned files hold."""
    start, end = BASELINE_DAYS
    days = [day for day in log_days() if start <= day <= end]
    return pd.concat([production_log(population, day, predict) for day in days], ignore_index=True)


def typical_sample(
    population: Population, n: int, rng: np.random.Generator, reference: pd.DataFrame, predict: Predict
) -> pd.DataFrame:
    """n healthy customers whose features, and the model's scores for them, all sit within
    TYPICAL_DISTANCE of the reference.

    Sampling noise alone pushes about one healthy batch in a few hundred past a 0.1 drift
    threshold on some column. Checks built on such a draw would fail a sound monitor by
    bad luck, so unlucky draws are redrawn (most draws are kept).
    """
    for _ in range(100):
        frame = population.sample(n, rng)
        if is_typical(frame, reference, predict, FEATURES):
            return frame
    raise RuntimeError(f"no typical sample of {n} rows in 100 draws (seed {population.seed})")


def is_typical(features: pd.DataFrame, reference: pd.DataFrame, predict: Predict, columns: Iterable[str]) -> bool:
    """Whether the model's scores, and the given feature columns, sit within TYPICAL_DISTANCE of the reference."""
    scores = pd.Series(predict(features.loc[:, list(FEATURES)])[1])
    return distance(reference["score"], scores) <= TYPICAL_DISTANCE and all(
        distance(reference[name], features[name]) <= TYPICAL_DISTANCE for name in columns
    )


def visible_samples(population: Population, predict: Predict, reference: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The self-check batches: a healthy one, and one with a clear shift of VISIBLE_SHIFT."""
    rng = rng_for(population.seed, STREAM_VISIBLE)
    clean = typical_sample(population, VISIBLE_ROWS, rng, reference, predict)
    feature, n_std = VISIBLE_SHIFT
    background = typical_sample(population, VISIBLE_ROWS, rng, reference, predict)
    shifted = shift_numeric(population, background, feature, n_std)
    return {
        "clean": as_log(clean, predict, BATCH_DAY, rng),
        "shifted": as_log(shifted, predict, BATCH_DAY, rng),
    }


def as_log(features: pd.DataFrame, predict: Predict, day: date, rng: np.random.Generator) -> pd.DataFrame:
    """Dress a feature frame as logged inference requests of one day, in LOG_COLUMNS order."""
    n = len(features)
    seconds = np.sort(rng.integers(0, 24 * 3600, n))
    stamp = pd.Timestamp(day) + pd.to_timedelta(seconds, unit="s")
    prediction, score = predict(features.loc[:, list(FEATURES)])
    frame = features.reset_index(drop=True).assign(
        request_id=[f"{day:%Y%m%d}-{i:05d}" for i in range(n)],
        timestamp=stamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
        prediction=np.asarray(prediction, dtype=int),
        score=np.round(np.asarray(score, dtype=float), 4),
    )
    return frame.loc[:, list(LOG_COLUMNS)]


def write_csv(frame: pd.DataFrame, path) -> None:
    """Write a frame the way every lab file is written: integers without '.0', missing as empty."""
    out = frame.copy()
    for feature in _INTEGER_FEATURES:
        if feature in out:
            out[feature] = out[feature].astype("Int64")
    out.to_csv(path, index=False, lineterminator="\n")


def distance(reference: pd.Series, current: pd.Series) -> float:
    """Distance of two samples of one feature, as drift tests measure it: Wasserstein in
    reference standard deviations for numbers, Jensen-Shannon for categories."""
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import wasserstein_distance

    reference, current = reference.dropna(), current.dropna()
    if reference.dtype == object:
        categories = sorted(set(reference) | set(current))
        ref_freq = reference.value_counts(normalize=True).reindex(categories, fill_value=0)
        cur_freq = current.value_counts(normalize=True).reindex(categories, fill_value=0)
        return float(jensenshannon(ref_freq, cur_freq))
    return float(wasserstein_distance(reference, current) / reference.std())


def _mix(rng: np.random.Generator, centre: tuple[float, ...]) -> tuple[float, ...]:
    """Category probabilities near centre (a Dirichlet draw concentrated around it)."""
    return tuple(float(p) for p in rng.dirichlet(np.asarray(centre) * 60))
