"""The pool of planted faults, and which ones a seed gets.

Every variant breaks three layers — the pod cannot run or stay up, its configuration
cannot load the model, traffic cannot reach it — with one fault each, plus, for some
seeds, a fourth from anywhere else in the pool. Faults are edits to the reference
manifests, so each is exactly one plausible mistake.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Manifests = dict[str, list[dict[str, Any]]]  # file name -> its YAML documents


def _deployment(m: Manifests) -> dict[str, Any]:
    return next(d for d in m["30-deployment.yaml"] if d["kind"] == "Deployment")


def _container(m: Manifests) -> dict[str, Any]:
    return _deployment(m)["spec"]["template"]["spec"]["containers"][0]


def _service(m: Manifests) -> dict[str, Any]:
    return m["40-service.yaml"][0]


def _config(m: Manifests) -> dict[str, str]:
    return m["10-config.yaml"][0]["data"]


def _env(m: Manifests, name: str) -> dict[str, Any]:
    return next(e for e in _container(m)["env"] if e["name"] == name)


def image_tag_missing(m: Manifests) -> None:
    _container(m)["image"] = "churn-api:1.0.1"


def latest_always(m: Manifests) -> None:
    _container(m).update(image="churn-api:latest", imagePullPolicy="Always")


def wrong_command(m: Manifests) -> None:
    _container(m)["command"] = ["bentoml", "serve", "service:ChurnService", "--port", "3000"]


def memory_too_low(m: Manifests) -> None:
    _container(m)["resources"] = {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "96Mi"}}


def liveness_too_early(m: Manifests) -> None:
    _container(m)["livenessProbe"] = {"httpGet": {"path": "/readyz", "port": "http"},
                                      "periodSeconds": 2, "failureThreshold": 1}


def readiness_wrong_path(m: Manifests) -> None:
    _container(m)["readinessProbe"]["httpGet"]["path"] = "/ready"


def model_uri_typo(m: Manifests) -> None:
    _config(m)["MODEL_URI"] = "models:/churn-clasifier@champion"


def tracking_uri_wrong(m: Manifests) -> None:
    _config(m)["MLFLOW_TRACKING_URI"] = "http://mlflow.labkit.svc.cluster.local:5001"


def config_key_typo(m: Manifests) -> None:
    _env(m, "MODEL_URI")["valueFrom"]["configMapKeyRef"]["key"] = "MODEL_URL"


def secret_not_referenced(m: Manifests) -> None:
    container = _container(m)
    container["env"] = [e for e in container["env"] if e["name"] != "PREDICT_TOKEN"]


def secret_wrong_key(m: Manifests) -> None:
    _env(m, "PREDICT_TOKEN")["valueFrom"]["secretKeyRef"]["key"] = "token"


def target_port_mismatch(m: Manifests) -> None:
    _service(m)["spec"]["ports"][0]["targetPort"] = 8080


def selector_mismatch(m: Manifests) -> None:
    _service(m)["spec"]["selector"] = {"app.kubernetes.io/name": "churn-api-server"}


@dataclass(frozen=True)
class Fault:
    id: str
    layer: str  # pod | config | traffic
    apply: Callable[[Manifests], None]


POOL = [
    Fault("image-tag-missing", "pod", image_tag_missing),
    Fault("latest-always", "pod", latest_always),
    Fault("wrong-command", "pod", wrong_command),
    Fault("memory-too-low", "pod", memory_too_low),
    Fault("liveness-too-early", "pod", liveness_too_early),
    Fault("readiness-wrong-path", "pod", readiness_wrong_path),
    Fault("model-uri-typo", "config", model_uri_typo),
    Fault("tracking-uri-wrong", "config", tracking_uri_wrong),
    Fault("config-key-typo", "config", config_key_typo),
    Fault("secret-not-referenced", "config", secret_not_referenced),
    Fault("secret-wrong-key", "config", secret_wrong_key),
    Fault("target-port-mismatch", "traffic", target_port_mismatch),
    Fault("selector-mismatch", "traffic", selector_mismatch),
]
# Pairs that touch the same field: one would silently undo the other.
CLASHES = {frozenset({"image-tag-missing", "latest-always"}), frozenset({"secret-not-referenced", "secret-wrong-key"}),
           frozenset({"target-port-mismatch", "selector-mismatch"}),
           frozenset({"memory-too-low", "liveness-too-early"})}


def choose(seed: int) -> list[Fault]:
    rng = random.Random(f"broken-deployment:{seed}")
    chosen = [rng.choice([f for f in POOL if f.layer == layer]) for layer in ("pod", "config", "traffic")]
    if rng.random() < 0.5:
        ids = {f.id for f in chosen}
        extra = [f for f in POOL if f.id not in ids and not any(frozenset({f.id, i}) in CLASHES for i in ids)]
        chosen.append(rng.choice(extra))
    return chosen


def plant(manifests: Manifests, faults: list[Fault]) -> Manifests:
    for fault in faults:
        fault.apply(manifests)
    return manifests
