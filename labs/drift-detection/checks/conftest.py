"""Fixtures of the drift-detection checks, on top of the ones labkit provides.

The champion comes from the MLflow registry, as in production: the batches the checks
generate carry the predictions the served model would have logged for them.
"""

from __future__ import annotations

import pandas as pd
import pytest

from labkit.grading import InfraError
from support import data
from support.provision import CHAMPION_ALIAS, MODEL_NAME, predictor
from support.runs import MonitorRunner


@pytest.fixture(scope="session")
def population(seed: int) -> data.Population:
    return data.Population.from_seed(seed)


@pytest.fixture(scope="session")
def champion(mlflow_tracking_uri: str) -> data.Predict:
    """The registered champion's predict function. Failing to load it is the platform's
    fault (provisioning or the tracking server), never the candidate's."""
    import mlflow

    uri = f"models:/{MODEL_NAME}@{CHAMPION_ALIAS}"
    mlflow.set_tracking_uri(mlflow_tracking_uri)
    try:
        model = mlflow.sklearn.load_model(uri)
    except Exception as exc:  # any failure here is infrastructure: report it as such
        raise InfraError(f"cannot load {uri} from {mlflow_tracking_uri}: {exc}") from exc
    return predictor(model)


@pytest.fixture(scope="session")
def baseline(population: data.Population, champion: data.Predict) -> pd.DataFrame:
    """The reference window's logs, regenerated: the rows the candidate's monitor reads."""
    return data.baseline_reference(population, champion)


@pytest.fixture(scope="session")
def monitor(run_in_workspace, tmp_path_factory) -> MonitorRunner:
    """The candidate's monitor; batches and outputs live outside the workspace."""
    return MonitorRunner(run_in_workspace, tmp_path_factory.mktemp("drift-monitor"))
