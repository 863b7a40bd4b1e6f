"""Provision the retraining-trigger lab: the data files and the champion in the MLflow registry.

The workspace gets the champion's training window, a verified holdout, and five days of
batches: three clean ones, then two from after the shift (the candidate can replay them).
The champion is trained on the reference window and registered as version 1.
Everything is a pure function of the seed.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from labkit.provisioning import ProvisionContext
from support import data

MODEL_NAME = "churn-model"
EXPERIMENT = "churn-retraining"
CHAMPION_ALIAS = "champion"
REFERENCE_ROWS, HOLDOUT_ROWS, BATCH_ROWS = 5000, 2000, 1000
# The workspace's days: (regime, labels); stream numbers keep them apart from the grader's.
WORKSPACE_BATCHES = [("before", "true"), ("before", "true"), ("before", "true"), ("after", "true"), ("after", "true")]


def provision(ctx: ProvisionContext) -> None:
    population = data.Population.from_seed(ctx.seed)
    data_dir = ctx.workspace / "data"
    batches = data_dir / "batches"
    batches.mkdir(parents=True, exist_ok=True)
    reference = population.sample(REFERENCE_ROWS, regime="before", stream=1)
    (data_dir / "reference.csv").write_text(data.to_csv(reference))
    (data_dir / "holdout.csv").write_text(data.to_csv(population.sample(HOLDOUT_ROWS, regime="before", stream=2)))
    for day, (regime, labels) in enumerate(WORKSPACE_BATCHES, start=1):
        frame = population.sample(BATCH_ROWS, regime=regime, stream=10 + day, labels=labels)
        (batches / f"batch-{day:04d}.csv").write_text(data.to_csv(frame))
    ctx.log(f"wrote data/reference.csv ({REFERENCE_ROWS} rows), data/holdout.csv ({HOLDOUT_ROWS}), "
            f"data/batches/ ({len(WORKSPACE_BATCHES)} days)")
    version = register_champion(reference, tracking_uri=ctx.mlflow_tracking_uri, model_name=MODEL_NAME,
                                experiment=EXPERIMENT)
    ctx.log(f"registered {MODEL_NAME} version {version} as @{CHAMPION_ALIAS}")


def register_champion(reference: pd.DataFrame, *, tracking_uri: str, model_name: str, experiment: str) -> str:
    """Train the team's model on the reference window and make it the champion."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name="initial-champion"):
        mlflow.set_tags({"trigger": "initial", "data_window": "reference"})
        info = mlflow.sklearn.log_model(data.train_model(reference), name="model", registered_model_name=model_name,
                                        pip_requirements=["scikit-learn", "pandas", "skops"])
    version = str(info.registered_model_version)
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    client.set_registered_model_alias(model_name, CHAMPION_ALIAS, version)
    return version
