"""Train the late-delivery model and put it in production.

Run by hand after each weekly data drop:  python train.py
"""

import mlflow
import pandas as pd
import yaml
from mlflow import MlflowClient
from sklearn.metrics import roc_auc_score

from features import LABEL, PIP_REQUIREMENTS, SKOPS_TRUSTED_TYPES, add_features, build_model, late_probability

with open("pipeline.yaml") as handle:
    config = yaml.safe_load(handle)

frame = pd.read_csv(config["data"]["train"])
train = frame.sample(frac=0.8)
valid = frame.drop(train.index)

model = build_model().fit(add_features(train), train[LABEL])
auc = roc_auc_score(valid[LABEL], late_probability(model, valid))

mlflow.set_experiment(config["experiment"])
with mlflow.start_run():
    mlflow.log_metric("val_roc_auc", auc)
    info = mlflow.sklearn.log_model(
        model,
        name="model",
        registered_model_name=config["model_name"],
        skops_trusted_types=SKOPS_TRUSTED_TYPES,
        pip_requirements=PIP_REQUIREMENTS,
    )

MlflowClient().set_registered_model_alias(config["model_name"], "champion", info.registered_model_version)
print(f"deployed {config['model_name']} version {info.registered_model_version} (val AUC {auc:.3f})")
