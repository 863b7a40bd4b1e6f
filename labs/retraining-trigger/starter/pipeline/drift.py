"""Drift of a batch against the reference window: a two-sample KS test per feature."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from scipy.stats import ks_2samp

from pipeline.training import FEATURES


@dataclass(frozen=True)
class DriftResult:
    share: float  # share of features whose KS p-value is below p_value
    drifted: bool  # share >= the configured share
    p_values: dict[str, float]
    p_value: float

    @property
    def drifted_features(self) -> list[str]:
        return [name for name, p in self.p_values.items() if p < self.p_value]


def measure(reference: pd.DataFrame, batch: pd.DataFrame, *, p_value: float, share: float) -> DriftResult:
    p_values = {name: float(ks_2samp(reference[name], batch[name]).pvalue) for name in FEATURES}
    drifted_share = sum(p < p_value for p in p_values.values()) / len(FEATURES)
    return DriftResult(share=drifted_share, drifted=drifted_share >= share, p_values=p_values, p_value=p_value)
