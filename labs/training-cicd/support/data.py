"""The delivery scenario's data: one seeded Shipments population and every file drawn from it.

Provisioning (training data, the frozen holdout) and the checks (the changes a commit
brings at grade time) draw from the same population. Each draw has its own random
stream ``(seed, stream)``, so adding a draw never changes another, and the same seed
always gives byte-identical files.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

NUMERIC = ("distance_km", "parcels", "weight_kg", "pickup_hour", "weekend")
CATEGORICAL = ("warehouse", "carrier")
FEATURES = NUMERIC + CATEGORICAL
LABEL = "late"
COLUMNS = ("shipment_id", *FEATURES, LABEL)
WAREHOUSES = ("north", "south", "east", "west")
CARRIERS = ("swift", "parcelco", "budget")
# The feature the label depends on most: the regressed change breaks it.
KEY_FEATURE = "distance_km"

TRAIN_ROWS = 2000
HOLDOUT_ROWS = 1500
NEW_ROWS = 800  # a week of fresh shipments, the "good change"
WEIGHT_MISSING = 0.02  # the scale at some depots is flaky: weight_kg may be missing

STREAM_POPULATION = 0
STREAM_TRAIN = 1
STREAM_HOLDOUT = 2
# Grade-time changes use streams from 100 upwards.
STREAM_NEW_ROWS = 100
STREAM_REGRESSION = 101
STREAM_VIOLATION = 102


def rng_for(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream])


@dataclass(frozen=True)
class Shipments:
    """How shipments look and when they arrive late, for one lab seed."""

    seed: int
    log_distance_mean: float
    warehouse_probs: tuple[float, ...]
    carrier_probs: tuple[float, ...]
    distance_coef: float
    weight_coef: float
    evening_coef: float
    weekend_coef: float
    carrier_effects: tuple[float, ...]
    warehouse_effects: tuple[float, ...]
    intercept: float
    # The seed of the grade-time draws (new rows, breaks, the regression): the lab seed in a
    # visible grade; in a hidden one the seed under the review key (labkit's hidden_seed), so
    # a candidate, who has the lab seed and this code, cannot regenerate the hidden pushes.
    draw_seed: int | None = None

    @property
    def draws(self) -> int:
        return self.seed if self.draw_seed is None else self.draw_seed

    def hidden(self, draw_seed: int) -> Shipments:
        """The same population, with the grade-time changes drawn from ``draw_seed``."""
        return replace(self, draw_seed=draw_seed)

    @classmethod
    def from_seed(cls, seed: int) -> Shipments:
        rng = rng_for(seed, STREAM_POPULATION)
        u = rng.uniform
        return cls(
            seed=seed,
            log_distance_mean=u(3.6, 4.2),
            warehouse_probs=tuple(float(p) for p in rng.dirichlet([30, 25, 25, 20])),
            carrier_probs=tuple(float(p) for p in rng.dirichlet([40, 35, 25])),
            distance_coef=u(1.3, 1.7),
            weight_coef=u(0.3, 0.5),
            evening_coef=u(0.5, 0.8),
            weekend_coef=u(0.3, 0.6),
            carrier_effects=(u(-0.6, -0.3), 0.0, u(0.6, 0.9)),
            warehouse_effects=tuple(float(x) for x in rng.uniform(-0.3, 0.3, 4)),
            intercept=u(-1.3, -1.0),
        )

    def draw(self, rng: np.random.Generator, n: int, first_id: int) -> pd.DataFrame:
        log_distance = rng.normal(self.log_distance_mean, 0.8, n)
        distance = np.clip(np.exp(log_distance), 0.5, 1500.0)
        parcels = np.clip(rng.poisson(1.5, n) + 1, 1, 50)
        weight = np.clip(parcels * rng.gamma(2.0, 1.6, n), 0.05, 100.0)
        hour = rng.integers(6, 22, n)
        weekend = (rng.random(n) < 2 / 7).astype(int)
        warehouse = rng.choice(len(WAREHOUSES), n, p=self.warehouse_probs)
        carrier = rng.choice(len(CARRIERS), n, p=self.carrier_probs)
        logit = (
            self.intercept
            + self.distance_coef * (np.log(distance) - self.log_distance_mean) / 0.8
            + self.weight_coef * (np.log(weight) - 1.5)
            + self.evening_coef * (hour >= 16)
            + self.weekend_coef * weekend
            + np.asarray(self.carrier_effects)[carrier]
            + np.asarray(self.warehouse_effects)[warehouse]
        )
        late = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
        weight = np.where(rng.random(n) < WEIGHT_MISSING, np.nan, np.round(weight, 2))
        return pd.DataFrame({
            "shipment_id": [f"S{first_id + i:07d}" for i in range(n)],
            "distance_km": np.round(distance, 1),
            "parcels": parcels,
            "weight_kg": weight,
            "pickup_hour": hour,
            "weekend": weekend,
            "warehouse": np.asarray(WAREHOUSES)[warehouse],
            "carrier": np.asarray(CARRIERS)[carrier],
            LABEL: late,
        })


def training_set(shipments: Shipments) -> pd.DataFrame:
    return shipments.draw(rng_for(shipments.seed, STREAM_TRAIN), TRAIN_ROWS, first_id=1)


def holdout_set(shipments: Shipments) -> pd.DataFrame:
    return shipments.draw(rng_for(shipments.seed, STREAM_HOLDOUT), HOLDOUT_ROWS, first_id=5_000_000)


def new_rows(shipments: Shipments) -> pd.DataFrame:
    """Another week of shipments, drawn like the training data: the good change."""
    return shipments.draw(rng_for(shipments.draws, STREAM_NEW_ROWS), NEW_ROWS, first_id=100_000)


def to_csv(frame: pd.DataFrame) -> str:
    """Every lab file is written this way: integers without '.0', missing values as empty cells."""
    out = frame.copy()
    for name in ("parcels", "pickup_hour", "weekend", LABEL):
        if name in out and pd.api.types.is_numeric_dtype(out[name]):
            out[name] = out[name].astype("Int64")
    buffer = io.StringIO()
    out.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue()
