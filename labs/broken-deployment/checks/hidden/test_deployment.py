"""Hidden checks: the model API is up, stays up, serves the champion, and survives a restart.

Everything is observed on the running cluster — pods, endpoints, real requests — not
read from the YAML. Feedback names the symptom still there, never the fix.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import datetime, timezone

import pytest

from support import data
from support.api_client import call, wait_answering
from support.provision import NAMESPACE

WINDOW_S = 20
MAX_MEMORY_LIMIT = 2 * 1024**3


def live_deployment(kube_cluster):
    from lightkube.resources.apps_v1 import Deployment

    return kube_cluster.client.get(Deployment, "churn-api", namespace=NAMESPACE).to_dict()


def pods(kube_cluster, app: str = "churn-api"):
    from lightkube.resources.core_v1 import Pod

    found = kube_cluster.client.list(Pod, namespace=NAMESPACE, labels={"app.kubernetes.io/name": app})
    return [p.to_dict() for p in found if not p.metadata.deletionTimestamp]


@pytest.mark.check(points=3, title="the rollout completes: every replica of churn-api is Ready",
                   feedback="The page is about the API being down after a deploy.")
def test_rollout_completes(deployed):
    deployed.require()


@pytest.mark.check(points=2, title="no container restarts after the rollout",
                   feedback="A replica that restarts is a replica that drops requests.")
def test_no_restarts(deployed, kube_cluster):
    deployed.require()
    time.sleep(WINDOW_S)
    restarted = []
    for pod in pods(kube_cluster):
        for cs in pod["status"].get("containerStatuses") or []:
            if cs.get("restartCount"):
                reason = ((cs.get("lastState") or {}).get("terminated") or {}).get("reason", "restarted")
                restarted.append(f"{pod['metadata']['name']} ({cs['restartCount']}x, last: {reason})")
    assert not restarted, (f"{len(restarted)} container(s) restarted within {WINDOW_S}s of the rollout: "
                           + ", ".join(restarted))


@pytest.mark.check(points=1, title="the Service has ready endpoints",
                   feedback="A Service with no endpoints answers nobody.")
def test_service_has_endpoints(deployed, kube_cluster):
    from lightkube import ApiError
    from lightkube.resources.core_v1 import Endpoints

    deployed.require()
    try:
        endpoints = kube_cluster.client.get(Endpoints, "churn-api", namespace=NAMESPACE).to_dict()
    except ApiError:
        pytest.fail("there is no Service named churn-api in namespace churn-api", pytrace=False)
    ready = sum(len(s.get("addresses") or []) for s in endpoints.get("subsets") or [])
    assert ready > 0, "the churn-api Service has no ready endpoints: no pod is behind it"


@pytest.mark.check(points=2, title="the API answers through the Service (NodePort 30080)",
                   feedback="Clients reach the model through the Service, not the pod.")
def test_answers_through_the_service(deployed, token):
    deployed.require()
    status, body = wait_answering()
    assert status == 200, f"/readyz through the Service answered {status or 'nothing'}: {body}"
    status, body = call("/predict", {"rows": data.hidden_requests(1, 1)}, token=token)
    assert status == 200, f"an authenticated /predict through the Service answered {status or 'nothing'}: {body}"


@pytest.mark.check(points=4, title="/predict on hidden inputs returns exactly the champion's predictions",
                   feedback="The API must serve the registered champion, as it is.")
def test_predictions_match_the_champion(deployed, token, seed, champion, mlflow_client):
    import pandas as pd

    deployed.require()
    rows = data.hidden_requests(seed)
    status, body = call("/predict", {"rows": rows}, token=token, timeout=30)
    assert status == 200 and isinstance(body, dict), f"/predict answered {status or 'nothing'}: {body}"
    frame = pd.DataFrame(rows)[data.FEATURES]
    expected = [int(p) for p in champion.predict(frame)]
    got = body.get("predictions")
    assert isinstance(got, list) and len(got) == len(rows), f"{len(rows)} rows sent, got back: {str(got)[:200]}"
    wrong = sum(a != b for a, b in zip(got, expected))
    assert wrong == 0, f"{wrong} of {len(rows)} hidden requests got another answer than the champion's"
    probabilities = body.get("probabilities") or []
    far = sum(abs(a - b) > 1e-6 for a, b in zip(probabilities, champion.predict_proba(frame)[:, 1]))
    assert len(probabilities) == len(rows) and far == 0, f"{far} probabilities differ from the champion's"
    champion_version = mlflow_client.get_model_version_by_alias(data.MODEL_NAME, "champion").version
    assert str(body.get("model_version")) == str(champion_version), (
        f"the API reports model version {body.get('model_version')!r}; the champion is {champion_version}")


@pytest.mark.check(points=2, title="a replica whose model cannot load is never Ready",
                   feedback="Readiness should mean 'can answer', not 'the process is up'.")
def test_unready_while_the_model_cannot_load(deployed, kube_cluster):
    from lightkube import codecs
    from lightkube.resources.apps_v1 import Deployment

    deployed.require()
    spec = live_deployment(kube_cluster)["spec"]
    labels = {"app.kubernetes.io/name": "churn-api-probe-test"}
    spec["replicas"] = 1
    spec["selector"] = {"matchLabels": labels}
    spec["template"]["metadata"]["labels"] = labels
    container = spec["template"]["spec"]["containers"][0]
    container["env"] = [e for e in container.get("env") or [] if e["name"] != "MODEL_URI"] + [
        {"name": "MODEL_URI", "value": f"models:/{data.MODEL_NAME}-missing@champion"}]
    probe = codecs.from_dict({"apiVersion": "apps/v1", "kind": "Deployment", "spec": spec,
                              "metadata": {"name": "churn-api-probe-test", "namespace": NAMESPACE}})
    kube_cluster.client.apply(probe, force=True)
    try:
        ran = ready = False
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline and not ready:
            for pod in pods(kube_cluster, "churn-api-probe-test"):
                for cs in pod["status"].get("containerStatuses") or []:
                    ran = ran or bool((cs.get("state") or {}).get("running"))
                    ready = ready or bool(cs.get("ready"))
            time.sleep(2)
        assert ran, "a replica with an unloadable model never even started, so readiness could not be observed"
        assert not ready, "a replica whose model could not load was marked Ready: traffic would be sent to it"
    finally:
        kube_cluster.client.delete(Deployment, "churn-api-probe-test", namespace=NAMESPACE)


def _bytes(quantity: str) -> float:
    units = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
    for suffix in sorted(units, key=len, reverse=True):
        if str(quantity).endswith(suffix):
            return float(str(quantity)[: -len(suffix)]) * units[suffix]
    return float(quantity)


@pytest.mark.check(points=2, title="requests and limits are set and sane",
                   feedback="The scheduler and the node both need to know what a replica costs.")
def test_resources_are_sane(kube_cluster):
    from lightkube import ApiError

    try:
        container = live_deployment(kube_cluster)["spec"]["template"]["spec"]["containers"][0]
    except ApiError:
        pytest.fail("there is no churn-api Deployment to inspect", pytrace=False)
    resources = container.get("resources") or {}
    requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
    missing = [f"requests.{k}" for k in ("cpu", "memory") if k not in requests] + (
        ["limits.memory"] if "memory" not in limits else [])
    assert not missing, f"the server container has no {', '.join(missing)}"
    limit = _bytes(limits["memory"])
    assert limit <= MAX_MEMORY_LIMIT, (
        f"a memory limit of {limits['memory']} is far above what this service uses: it no longer protects the node")
    assert _bytes(requests["memory"]) <= limit, "the memory request is above the memory limit"


@pytest.mark.check(points=1, title="the image is pinned and never pulled from a registry that has no copy",
                   feedback="Which build is running should never depend on when a pod started.")
def test_image_is_pinned(kube_cluster):
    from lightkube import ApiError

    try:
        container = live_deployment(kube_cluster)["spec"]["template"]["spec"]["containers"][0]
    except ApiError:
        pytest.fail("there is no churn-api Deployment to inspect", pytrace=False)
    image = container["image"]
    tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
    assert tag and tag != "latest" or "@sha256:" in image, f"image {image!r} floats: it names no fixed build"
    assert container.get("imagePullPolicy") != "Always", "imagePullPolicy Always pulls from a registry on every start"


@pytest.mark.check(points=3, title="no failed request during a rolling restart under light load",
                   feedback="A deploy should be invisible to clients.")
def test_no_errors_during_a_rolling_restart(deployed, kube_cluster, token):
    from lightkube.resources.apps_v1 import Deployment

    deployed.require()
    assert wait_answering()[0] == 200, "the API does not answer before the restart"
    outcomes: Counter[str] = Counter()
    stop = threading.Event()
    rows = data.hidden_requests(2, 1)

    def load() -> None:
        while not stop.is_set():
            status, _ = call("/predict", {"rows": rows}, token=token, timeout=5)
            outcomes["ok" if status == 200 else (str(status) if status else "no answer")] += 1
            time.sleep(0.1)

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    try:
        time.sleep(2)
        stamp = datetime.now(timezone.utc).isoformat()
        kube_cluster.client.patch(Deployment, "churn-api", namespace=NAMESPACE, obj={
            "spec": {"template": {"metadata": {"annotations": {"labkit.dev/restarted-at": stamp}}}}})
        time.sleep(2)
        kube_cluster.wait_rollout(NAMESPACE, "churn-api", timeout_s=240)
        time.sleep(5)
    finally:
        stop.set()
        worker.join(timeout=10)
    failed = {k: v for k, v in outcomes.items() if k != "ok"}
    total = sum(outcomes.values())
    assert total >= 20, f"only {total} requests could be sent during the restart"
    assert not failed, (f"{sum(failed.values())} of {total} requests failed during a rolling restart: "
                        + ", ".join(f"{v}x {k}" for k, v in failed.items()))
