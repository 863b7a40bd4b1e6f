"""retrain.yaml, read once per process. Paths in it are relative to the workspace."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

CONFIG_FILE = Path("retrain.yaml")


@dataclass(frozen=True)
class Config:
    model_name: str
    experiment: str
    reference: Path
    holdout: Path
    batches: Path
    p_value: float
    drift_share: float
    window_batches: int
    cooldown_seconds: float
    min_auc_gain: float
    reload_seconds: float


def load(path: Path = CONFIG_FILE) -> Config:
    raw = yaml.safe_load(path.read_text())
    root = path.resolve().parent
    return Config(
        model_name=raw["model_name"],
        experiment=raw["experiment"],
        reference=root / raw["reference"],
        holdout=root / raw["holdout"],
        batches=root / raw["batches"],
        p_value=float(raw["drift"]["p_value"]),
        drift_share=float(raw["drift"]["share"]),
        window_batches=int(raw["retrain"]["window_batches"]),
        cooldown_seconds=float(raw["retrain"]["cooldown_seconds"]),
        min_auc_gain=float(raw["retrain"]["min_auc_gain"]),
        reload_seconds=float(raw["serving"]["reload_seconds"]),
    )
