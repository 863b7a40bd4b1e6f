"""Feature engineering and the model of the late-delivery classifier."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

LABEL = "late"
RAW_NUMERIC = ["distance_km", "parcels", "weight_kg", "pickup_hour", "weekend"]
CATEGORICAL = ["warehouse", "carrier"]
DERIVED = ["weight_per_parcel", "evening_pickup"]
NUMERIC = RAW_NUMERIC + DERIVED
# Types skops must be told to trust when MLflow saves this model (the encoder's dtype, the trees).
SKOPS_TRUSTED_TYPES = ["numpy.dtype", "sklearn.tree._tree.Tree"]
# What serving needs to load the model. Named, because MLflow's inference of them re-imports
# the model in a subprocess and takes several seconds.
PIP_REQUIREMENTS = ["mlflow==3.17.2", "scikit-learn", "skops", "pandas<3"]


def add_features(frame: pd.DataFrame) -> pd.DataFrame:
    """The model's inputs: the raw columns plus the derived ones, in a fixed order."""
    out = frame.loc[:, RAW_NUMERIC + CATEGORICAL].copy()
    out[RAW_NUMERIC] = out[RAW_NUMERIC].astype(float)
    out["weight_per_parcel"] = out["weight_kg"] / out["parcels"].clip(lower=1)
    out["evening_pickup"] = (out["pickup_hour"] >= 16).astype(float)
    out[CATEGORICAL] = out[CATEGORICAL].astype(str)
    return out.loc[:, NUMERIC + CATEGORICAL]


def build_model(random_state: int | None = None) -> Pipeline:
    """Imputation and encoding live inside the model, so it scores raw feature frames."""
    prepare = ColumnTransformer([
        ("numeric", SimpleImputer(strategy="median"), NUMERIC),
        ("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
    ])
    forest = RandomForestClassifier(
        n_estimators=80, min_samples_leaf=5, max_features=0.5, n_jobs=1, random_state=random_state
    )
    return Pipeline([("prepare", prepare), ("forest", forest)])


def late_probability(model: Pipeline, frame: pd.DataFrame) -> np.ndarray:
    return model.predict_proba(add_features(frame))[:, 1]
