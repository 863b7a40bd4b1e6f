"""The retraining flow: train a challenger on the recent window, promote it only if it is better.

Every retrain registers a model version, promoted or not, with its lineage: why it was
trained, on which batches, from which champion, and how both scored on the verified
holdout. A drift-triggered retrain inside the cooldown of the last one is skipped: the
trigger already deduplicates events, and this guard covers what slips through (two
events on either side of the trigger's window, or a manual run).
"""

from __future__ import annotations

import time
from pathlib import Path

import mlflow
import pandas as pd
from prefect import flow, get_run_logger

from pipeline import config, training

CHAMPION = "champion"
PIP_REQUIREMENTS = ["scikit-learn", "pandas", "skops"]


def window(batches: Path, batch_id: str, size: int) -> list[Path]:
    """The triggering batch and the ones before it: ``size`` batches in all, oldest first."""
    files = sorted(batches.glob("batch-*.csv"))
    names = [path.stem for path in files]
    end = names.index(batch_id) + 1 if batch_id in names else len(files)
    return files[max(0, end - size):end]


def recent_drift_retrain(client: mlflow.MlflowClient, model_name: str, cooldown_s: float) -> str | None:
    """The version of a drift-triggered retrain newer than the cooldown, if any."""
    cutoff_ms = (time.time() - cooldown_s) * 1000
    for version in client.search_model_versions(f"name='{model_name}'"):
        if version.tags.get("trigger") == "drift" and version.creation_timestamp >= cutoff_ms:
            return str(version.version)
    return None


@flow(name="retrain-churn-model")
def retrain(batch_id: str = "", trigger: str = "manual") -> str | None:
    cfg = config.load()
    log = get_run_logger()
    client = mlflow.MlflowClient()
    if trigger == "drift":
        recent = recent_drift_retrain(client, cfg.model_name, cfg.cooldown_seconds)
        if recent is not None:
            log.info("skipped: version %s was retrained on drift within the %ss cooldown", recent, cfg.cooldown_seconds)
            return None

    files = window(cfg.batches, batch_id, cfg.window_batches)
    if not files:
        raise ValueError(f"no batches in {cfg.batches}")
    frame = pd.concat([pd.read_csv(path) for path in files], ignore_index=True)
    holdout = pd.read_csv(cfg.holdout)
    parent = client.get_model_version_by_alias(cfg.model_name, CHAMPION)
    champion_auc = training.auc(mlflow.sklearn.load_model(f"models:/{cfg.model_name}/{parent.version}"), holdout)
    challenger = training.train(frame)
    challenger_auc = training.auc(challenger, holdout)
    promote = challenger_auc >= champion_auc + cfg.min_auc_gain

    lineage = {
        "trigger": trigger,
        "trigger_batch": batch_id,
        "data_window": ",".join(path.stem for path in files),
        "parent_version": str(parent.version),
        "challenger_auc": f"{challenger_auc:.6f}",
        "champion_auc": f"{champion_auc:.6f}",
        "promoted": str(promote).lower(),
    }
    mlflow.set_experiment(cfg.experiment)
    with mlflow.start_run(run_name=f"retrain-{batch_id or 'manual'}"):
        mlflow.set_tags(lineage)
        mlflow.log_params({"rows": len(frame), "window_batches": cfg.window_batches})
        mlflow.log_metrics({"challenger_auc": challenger_auc, "champion_auc": champion_auc})
        info = mlflow.sklearn.log_model(challenger, name="model", registered_model_name=cfg.model_name,
                                        pip_requirements=PIP_REQUIREMENTS)
    version = str(info.registered_model_version)
    for key, value in lineage.items():
        client.set_model_version_tag(cfg.model_name, version, key, value)
    if promote:
        client.set_registered_model_alias(cfg.model_name, CHAMPION, version)
    log.info("version %s: challenger AUC %.4f vs champion v%s %.4f -> %s", version, challenger_auc,
             parent.version, champion_auc, "promoted" if promote else "kept the champion")
    return version
