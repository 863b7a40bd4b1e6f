"""Provision the drift-detection lab: training data, a registered champion, 30 days of logs.

Order matters: the champion is trained and registered first, because the production
logs carry its predictions. Everything is a pure function of the seed, so the same
seed always gives byte-identical data files and the same model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Protocol

import numpy as np
import pandas as pd

from support import data

MODEL_NAME = "churn-classifier"
CHAMPION_ALIAS = "champion"
TRAINING_EXPERIMENT = "churn-training"


class Context(Protocol):
    workspace: Path
    seed: int
    lab_dir: Path
    state_dir: Path
    mlflow_tracking_uri: str
    log: Callable[[str], None]


def provision(ctx: Context) -> None:
    population = data.Population.from_seed(ctx.seed)
    data_dir = ctx.workspace / "data"
    logs_dir = data_dir / "production"
    logs_dir.mkdir(parents=True, exist_ok=True)

    training = data.training_set(population)
    data.write_csv(training, data_dir / "training.csv")
    ctx.log(f"wrote data/training.csv ({len(training)} labelled rows)")

    model = train(training, seed=ctx.seed)
    version = register_champion(model, training, ctx.mlflow_tracking_uri)
    ctx.log(f"registered {MODEL_NAME} version {version} as @{CHAMPION_ALIAS}")

    predict = predictor(model)
    for day in data.log_days():
        data.write_csv(data.production_log(population, day, predict), logs_dir / f"{day:%Y-%m-%d}.csv")
    ctx.log(f"wrote {data.LOG_DAYS} days of production logs to data/production/")


def train(training: pd.DataFrame, *, seed: int):
    """The churn classifier: imputation and one-hot encoding inside the pipeline, so the
    served model accepts raw rows with missing values and unseen categories."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    categorical = Pipeline(
        [
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("encode", OneHotEncoder(handle_unknown="ignore")),
        ]
    )
    model = Pipeline(
        [
            (
                "features",
                ColumnTransformer(
                    [
                        ("numeric", numeric, list(data.NUMERIC_FEATURES)),
                        ("categorical", categorical, list(data.CATEGORICAL_FEATURES)),
                    ]
                ),
            ),
            ("classifier", LogisticRegression(max_iter=1000, random_state=seed)),
        ]
    )
    return model.fit(model_input(training), training[data.LABEL])


def model_input(frame: pd.DataFrame) -> pd.DataFrame:
    """The model's input schema: numeric features as float (missing allowed), categories as str."""
    features = frame.loc[:, list(data.FEATURES)].copy()
    features[list(data.NUMERIC_FEATURES)] = features[list(data.NUMERIC_FEATURES)].astype(float)
    return features


def predictor(model) -> data.Predict:
    def predict(features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        score = model.predict_proba(model_input(features))[:, 1]
        return (score >= 0.5).astype(int), score

    return predict


def register_champion(model, training: pd.DataFrame, tracking_uri: str) -> str:
    """Log the model to MLflow, register it and point the champion alias at the new version."""
    from importlib.metadata import version

    import mlflow
    from mlflow.models import infer_signature
    from sklearn.metrics import roc_auc_score

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(TRAINING_EXPERIMENT)
    features = model_input(training)
    example = features.dropna().head(5)
    with mlflow.start_run(run_name="churn-classifier-training"):
        mlflow.log_params({"classifier": "LogisticRegression", "rows": len(training)})
        mlflow.log_metric("train_auc", roc_auc_score(training[data.LABEL], model.predict_proba(features)[:, 1]))
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            input_example=example,
            signature=infer_signature(example, model.predict(example)),
            registered_model_name=MODEL_NAME,
            # Named, not inferred: inference re-imports the model in a subprocess (~10 s).
            pip_requirements=[f"{name}=={version(name)}" for name in ("mlflow", "scikit-learn", "skops")],
            # The one-hot encoder stores its output dtype; skops refuses numpy.dtype unless trusted.
            skops_trusted_types=["numpy.dtype"],
        )
    version = str(info.registered_model_version)
    mlflow.MlflowClient().set_registered_model_alias(MODEL_NAME, CHAMPION_ALIAS, version)
    return version
