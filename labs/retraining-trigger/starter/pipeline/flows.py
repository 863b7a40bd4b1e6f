"""The retraining flow: train a new model on recent batches and put it in production."""

from __future__ import annotations

import mlflow
import pandas as pd
from prefect import flow, get_run_logger

from pipeline import config, training


@flow(name="retrain-churn-model")
def retrain(batch_id: str = "") -> str:
    cfg = config.load()
    log = get_run_logger()
    frame = pd.concat([pd.read_csv(path) for path in sorted(cfg.batches.glob("batch-*.csv"))])
    model = training.train(frame)
    mlflow.set_experiment(cfg.experiment)
    with mlflow.start_run(run_name="retrain"):
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name=cfg.model_name)
    version = str(info.registered_model_version)
    mlflow.MlflowClient().set_registered_model_alias(cfg.model_name, "champion", version)
    log.info("version %s of %s is the champion", version, cfg.model_name)
    return version
