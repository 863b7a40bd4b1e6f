"""The churn model: features, training, evaluation."""

from __future__ import annotations

import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

FEATURES = ["tenure_months", "monthly_charges", "support_calls", "data_usage_gb"]
LABEL = "churned"


def train(frame: pd.DataFrame) -> Pipeline:
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(frame[FEATURES], frame[LABEL])


def auc(model, frame: pd.DataFrame) -> float:
    """ROC AUC of the model's churn probability on a labelled frame."""
    return float(roc_auc_score(frame[LABEL], model.predict_proba(frame[FEATURES])[:, 1]))
