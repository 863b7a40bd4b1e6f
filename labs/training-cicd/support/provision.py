"""Provision the training-cicd lab: the data files and the champion in the MLflow registry.

The champion is what the hand-run job last put in production: the starter's model,
trained on data/train.csv and registered as version 1 with the alias `champion`.
Everything is a pure function of the seed.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

from labkit.provisioning import ProvisionContext
from support import data

MODEL_NAME = "late-delivery"
CHAMPION_ALIAS = "champion"
EXPERIMENT = "late-delivery-training"
# The credential the starter workflow leaked (rotated since; the checks look for it).
LEAKED_TOKEN = "mlf-ci-4f9d2c7e1b8a60357c21"
# The data contract agreed with the data team (the same for every seed).
SCHEMA = Path(__file__).with_name("schema.yaml")


def provision(ctx: ProvisionContext) -> None:
    shipments = data.Shipments.from_seed(ctx.seed)
    training, holdout = data.training_set(shipments), data.holdout_set(shipments)
    data_dir = ctx.workspace / "data"
    data_dir.mkdir(exist_ok=True)
    (data_dir / "train.csv").write_text(data.to_csv(training))
    (data_dir / "holdout.csv").write_text(data.to_csv(holdout))
    shutil.copyfile(SCHEMA, data_dir / "schema.yaml")
    ctx.log(f"wrote data/train.csv ({len(training)} shipments), data/holdout.csv ({len(holdout)}), data/schema.yaml")
    version = register_champion(ctx.workspace, training, holdout, seed=ctx.seed, tracking_uri=ctx.mlflow_tracking_uri)
    ctx.log(f"registered {MODEL_NAME} version {version} as @{CHAMPION_ALIAS}")


def register_champion(workspace: Path, training, holdout, *, seed: int, tracking_uri: str) -> str:
    """Train the starter's model (seeded, so the lab is reproducible) and make it the champion."""
    import mlflow
    from sklearn.metrics import roc_auc_score

    features = _starter_features(workspace)
    model = features.build_model(random_state=seed).fit(features.add_features(training), training[data.LABEL])
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(EXPERIMENT)
    with mlflow.start_run(run_name="hand-run"):
        mlflow.set_tags({"trained_by": "alex (by hand)", "source": "train.py"})
        mlflow.log_metric("holdout_roc_auc", roc_auc_score(holdout[data.LABEL], features.late_probability(model, holdout)))
        info = mlflow.sklearn.log_model(
            model, name="model", registered_model_name=MODEL_NAME,
            skops_trusted_types=features.SKOPS_TRUSTED_TYPES, pip_requirements=features.PIP_REQUIREMENTS,
        )
    version = str(info.registered_model_version)
    mlflow.MlflowClient().set_registered_model_alias(MODEL_NAME, CHAMPION_ALIAS, version)
    return version


def _starter_features(workspace: Path):
    """The workspace's features.py as rendered from the starter (the model the team runs today)."""
    spec = importlib.util.spec_from_file_location("features", workspace / "features.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["features"] = module
    spec.loader.exec_module(module)
    return module
