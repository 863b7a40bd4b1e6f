"""churn-api: the champion churn model behind an HTTP API (BentoML).

Endpoints: POST /predict {"rows": [{feature: value, ...}, ...]} with
`Authorization: Bearer $PREDICT_TOKEN`; GET /livez (the process is up) and GET /readyz
(the model is loaded and requests will be answered).

Configuration (environment): MLFLOW_TRACKING_URI, MODEL_URI (e.g. models:/name@champion),
PREDICT_TOKEN. The model loads in the background at start-up, so /livez answers at once
and /readyz only once the model is in memory; a model that cannot load (the registry is
down, the alias is missing) keeps the service alive but not ready, says why in its log
and is tried again every few seconds until it loads.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from http import HTTPStatus

import bentoml
from bentoml.exceptions import BentoMLException, ServiceUnavailable

log = logging.getLogger("churn-api")
RETRY_S = 5


@bentoml.service(http={"port": 3000}, workers=1, traffic={"timeout": 30})
class ChurnModel:
    def __init__(self) -> None:
        self.model = None
        self.model_version = ""
        self.token = os.environ.get("PREDICT_TOKEN", "")
        threading.Thread(target=self._load, name="model-loader", daemon=True).start()

    def _load(self) -> None:
        if not self.token:
            log.error("PREDICT_TOKEN is not set: refusing to serve without authentication; /readyz answers 503")
            return
        while self.model is None:
            try:
                self._load_once()
            except Exception:  # noqa: BLE001 - stay alive, not ready, say why, try again
                log.exception("the model could not be loaded; /readyz answers 503; trying again in %ss", RETRY_S)
                time.sleep(RETRY_S)

    def _load_once(self) -> None:
        import mlflow

        uri = os.environ["MODEL_URI"]
        mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
        model = mlflow.sklearn.load_model(uri)
        if uri.startswith("models:/") and "@" in uri:  # models:/<name>@<alias>: which version it is
            name, alias = uri[len("models:/"):].split("@", 1)
            self.model_version = mlflow.MlflowClient().get_model_version_by_alias(name, alias).version
        self.model = model
        log.warning("model %s (version %s) loaded", uri, self.model_version)

    def __is_ready__(self) -> bool:
        return self.model is not None

    @bentoml.api
    def predict(self, rows: list[dict], ctx: bentoml.Context) -> dict:
        if ctx.request.headers.get("authorization", "") != f"Bearer {self.token}":
            raise BentoMLException("missing or wrong bearer token", error_code=HTTPStatus.UNAUTHORIZED)
        if self.model is None:
            raise ServiceUnavailable("the model is not loaded yet")
        import pandas as pd

        frame = pd.DataFrame(rows)
        return {
            "predictions": [int(p) for p in self.model.predict(frame)],
            "probabilities": [float(p) for p in self.model.predict_proba(frame)[:, 1]],
            "model_version": self.model_version,
        }
