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

from labkit.kube.nodes import pod_memory, quantity
from support import data
from support.api_client import call, wait_answering
from support.outage import Outage, play, restarts
from support.provision import NAMESPACE

WINDOW_S = 20
MAX_MEMORY_LIMIT = 2 * 1024**3
MIN_CPU_REQUEST = 0.05  # cores
MIN_REQUEST_SHARE = 0.5  # of what a ready replica holds
LARGE_BATCH = 50_000
LOAD_CLIENTS = 4
RESTARTS = 2


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
        count, last = restarts(pod)
        if count:
            restarted.append(f"{pod['metadata']['name']} ({count}x, last: {last or 'restarted'})")
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
def test_predictions_match_the_champion(deployed, token, hidden_seed, champion, mlflow_client):
    import pandas as pd

    deployed.require()
    rows = data.hidden_requests(hidden_seed)
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


@pytest.fixture(scope="session")
def outage(deployed, kube_cluster, mlflow_client, token, hidden_seed, state_dir) -> Outage:
    """The registry outage (support.outage), played once for the checks that judge it."""
    if deployed.error:
        return Outage(error=f"cannot check this while the deployment does not roll out: {deployed.error}")
    return play(kube_cluster=kube_cluster, list_pods=lambda: pods(kube_cluster), mlflow_client=mlflow_client,
                model_name=data.MODEL_NAME, namespace=NAMESPACE, deployment=live_deployment(kube_cluster),
                token=token, requests=[data.hidden_requests(hidden_seed + 2, 1), data.hidden_requests(hidden_seed)],
                state_dir=state_dir)


def _require(outage: Outage) -> None:
    if outage.error:
        pytest.fail(outage.error, pytrace=False)


@pytest.mark.check(points=2, title="a replica whose model cannot load is never Ready",
                   feedback="Readiness should mean 'can answer', not 'the process is up'.")
def test_unready_while_the_model_cannot_load(outage):
    _require(outage)
    assert outage.ready_after_s is None, (
        f"with the model registry unable to give it the champion, replica {outage.replacement} was marked Ready "
        f"{outage.ready_after_s}s after it started: traffic would be sent to it")


@pytest.mark.check(points=1, title="a replica without its model answers no prediction, even when asked directly",
                   feedback="Without the model there is no answer to give.")
def test_no_prediction_without_the_model(outage):
    _require(outage)
    assert outage.predictions, f"replica {outage.replacement} never ran, so it could not be asked"
    answered = [a for a in outage.predictions if a.status == 200]
    assert not answered, (
        f"replica {outage.replacement}, which could not load the model, answered /predict with 200 when asked "
        f"directly: {answered[0].body[:200]}")


@pytest.mark.check(points=1, title="a registry outage restarts nothing: the waiting replica is left to wait, "
                                   "the serving ones keep serving",
                   feedback="Restarting a replica does not bring the registry back.")
def test_a_registry_outage_restarts_nothing(outage):
    _require(outage)
    problems = list(outage.others)
    if outage.restarts:
        problems.append(f"replica {outage.replacement}, waiting for the registry, was restarted {outage.restarts}x "
                        f"within {outage.watched_s:.0f}s (last: {outage.last_exit or 'killed'})")
    if outage.liveness is not None and not 200 <= outage.liveness.status < 400:
        problems.append(f"its liveness probe's {outage.liveness_path} answers "
                        f"{outage.liveness.status or outage.liveness.error} while it only waits for its model: "
                        "the kubelet restarts it, again and again while the registry is down")
    assert not problems, "; ".join(problems)


@pytest.mark.check(points=2, title="requests and limits are set and cover what a replica uses",
                   feedback="The scheduler and the node both need to know what a replica costs.")
def test_resources_are_sane(deployed, kube_cluster):
    """The settings are read from the applied Deployment (whether or not it rolled out);
    what a replica uses is measured on its node."""
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
    limit, request = quantity(limits["memory"]), quantity(requests["memory"])
    assert limit <= MAX_MEMORY_LIMIT, (
        f"a memory limit of {limits['memory']} is far above what this service uses: it no longer protects the node")
    assert request <= limit, "the memory request is above the memory limit"
    assert quantity(requests["cpu"]) >= MIN_CPU_REQUEST, (
        f"a CPU request of {requests['cpu']} reserves next to nothing: on a busy node the replica is starved")
    deployed.require()
    used = max(pod_memory(p).usage_bytes for p in pods(kube_cluster))
    assert request >= MIN_REQUEST_SHARE * used, (
        f"a memory request of {requests['memory']} is well below the {used / 2**20:.0f}Mi a ready replica holds: "
        "the scheduler would place replicas on a node that cannot hold them")


@pytest.mark.check(points=2, title="a 50,000-row request is answered in full, and no replica is killed for memory",
                   feedback="Size the replica for the requests its clients send, not for an idle process.")
def test_a_large_batch_is_answered(deployed, kube_cluster, token, hidden_seed):
    deployed.require()
    before = {p["metadata"]["uid"]: (p["metadata"]["name"], pod_memory(p).oom_kills) for p in pods(kube_cluster)}
    rows = data.hidden_requests(hidden_seed, LARGE_BATCH)
    status, body = call("/predict", {"rows": rows}, token=token, timeout=120)
    killed = []
    for pod in pods(kube_cluster):
        name, kills = before.get(pod["metadata"]["uid"], (pod["metadata"]["name"], 0))
        now = pod_memory(pod).oom_kills
        if now > kills:
            killed.append(f"{name}: {now - kills} process(es) killed by the kernel for memory")
    answered = status == 200 and isinstance(body, dict) and len(body.get("predictions") or []) == len(rows)
    assert answered and not killed, "; ".join(
        ([] if answered else [f"/predict with {len(rows)} rows answered {status or 'nothing'}: {str(body)[:200]}"])
        + killed)


@pytest.mark.check(points=1, title="the image is pinned and never pulled from a registry that has no copy",
                   feedback="Which build is running should never depend on when a pod started.")
def test_image_is_pinned(deployed, kube_cluster):
    """Judged on the applied Deployment (deployed), whether or not it rolled out."""
    from lightkube import ApiError

    try:
        container = live_deployment(kube_cluster)["spec"]["template"]["spec"]["containers"][0]
    except ApiError:
        pytest.fail("there is no churn-api Deployment to inspect", pytrace=False)
    image = container["image"]
    tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
    assert tag and tag != "latest" or "@sha256:" in image, f"image {image!r} floats: it names no fixed build"
    assert container.get("imagePullPolicy") != "Always", "imagePullPolicy Always pulls from a registry on every start"


@pytest.mark.check(points=3, title="no failed request during rolling restarts under steady load",
                   feedback="A deploy should be invisible to clients.")
def test_no_errors_during_a_rolling_restart(deployed, kube_cluster, token, hidden_seed):
    """Several clients, each sending its next request as soon as the last is answered,
    through two rolling restarts: a replica that stops listening before it has left the
    Service's endpoints drops requests on every restart, so one unlucky restart is not
    what decides the check."""
    from lightkube.resources.apps_v1 import Deployment

    deployed.require()
    assert wait_answering()[0] == 200, "the API does not answer before the restart"
    outcomes: Counter[str] = Counter()
    stop = threading.Event()
    rows = data.hidden_requests(hidden_seed + 1, 1)

    def load() -> None:
        while not stop.is_set():
            status, _ = call("/predict", {"rows": rows}, token=token, timeout=10)
            outcomes["ok" if status == 200 else (str(status) if status else "no answer")] += 1
            time.sleep(0.02)

    workers = [threading.Thread(target=load, daemon=True) for _ in range(LOAD_CLIENTS)]
    for worker in workers:
        worker.start()
    try:
        for restart in range(RESTARTS):
            time.sleep(2)
            stamp = f"{datetime.now(timezone.utc).isoformat()}-{restart}"
            kube_cluster.client.patch(Deployment, "churn-api", namespace=NAMESPACE, obj={
                "spec": {"template": {"metadata": {"annotations": {"labkit.dev/restarted-at": stamp}}}}})
            time.sleep(2)
            kube_cluster.wait_rollout(NAMESPACE, "churn-api", timeout_s=240)
        time.sleep(5)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=15)
    failed = {k: v for k, v in outcomes.items() if k != "ok"}
    total = sum(outcomes.values())
    assert total >= 50, f"only {total} requests could be sent during {RESTARTS} rolling restarts"
    assert not failed, (f"{sum(failed.values())} of {total} requests failed during {RESTARTS} rolling restarts: "
                        + ", ".join(f"{v}x {k}" for k, v in failed.items()))
