"""The registry outage the grader plays on the candidate's own Deployment.

The champion's alias is taken away in MLflow and one replica is deleted, so its
replacement, built from the candidate's own template with its own name and labels, cannot
load the model. Nothing the pod can read tells it that this is a test. The replacement is
watched for as long as the submitted probes need to act (a readiness that waits 50 s, or
a liveness that would restart it after 40 s, is seen), asked directly from its node
whether it answers predictions, and the replicas that were ready are watched too: a
registry incident must not take down pods that already hold the model.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from labkit.kube.nodes import PodAnswer, pod_request
from support.api_client import API

MIN_WATCH_S = 45.0
MAX_WATCH_S = 150.0
SLACK_S = 15.0
# While a check holds the champion's alias, its version is kept in this file of the lab's
# state folder (on the grader's side): a tag in MLflow would be a tell the pods could read.
RESTORE_FILE = "alias-taken-by-a-check.json"


@dataclass
class Outage:
    error: str = ""  # the scenario could not be played: every check on it fails with this
    watched_s: float = 0.0
    replacement: str = ""
    ready_after_s: float | None = None  # when the replacement went Ready, if it did
    restarts: int = 0
    last_exit: str = ""
    predictions: list[PodAnswer] = field(default_factory=list)  # /predict asked straight at the replacement
    liveness: PodAnswer | None = None  # its httpGet liveness path asked the same way, if it has one
    liveness_path: str = ""
    others: list[str] = field(default_factory=list)  # what happened to the replicas that were ready


def _n(probe: dict[str, Any], key: str, default: float) -> float:
    value = probe.get(key)
    return float(value) if isinstance(value, (int, float)) else default


def watch_window(container: dict[str, Any]) -> float:
    """Long enough for the submitted probes to act on a replica that never loads its model:
    the first moment readiness could pass, and the moment liveness (or a startup probe)
    would restart it, each with slack; at least MIN_WATCH_S, at most MAX_WATCH_S."""
    startup, readiness, liveness = (container.get(n) for n in ("startupProbe", "readinessProbe", "livenessProbe"))
    started = 0.0
    moments = [0.0]
    if startup:
        started = _n(startup, "initialDelaySeconds", 0) + _n(startup, "periodSeconds", 10) * _n(
            startup, "successThreshold", 1)
        moments.append(_n(startup, "initialDelaySeconds", 0) + (_n(startup, "periodSeconds", 10) + _n(
            startup, "timeoutSeconds", 1)) * _n(startup, "failureThreshold", 3))
    if readiness:
        moments.append(started + _n(readiness, "initialDelaySeconds", 0) + _n(readiness, "periodSeconds", 10) * _n(
            readiness, "successThreshold", 1))
    if liveness:
        moments.append(started + _n(liveness, "initialDelaySeconds", 0) + (_n(liveness, "periodSeconds", 10) + _n(
            liveness, "timeoutSeconds", 1)) * _n(liveness, "failureThreshold", 3))
    return min(MAX_WATCH_S, max(MIN_WATCH_S, max(moments) + SLACK_S))


def container_port(container: dict[str, Any], port: Any, default: int = 3000) -> int:
    """A probe's port (a number or the name of one of the container's ports) as a number."""
    if isinstance(port, int):
        return port
    if isinstance(port, str) and port.isdigit():
        return int(port)
    for declared in container.get("ports") or []:
        if declared.get("name") == port:
            return int(declared["containerPort"])
    return default


def serving_port(container: dict[str, Any]) -> int:
    declared = container.get("ports") or []
    return int(declared[0]["containerPort"]) if declared else 3000


def ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def running(pod: dict[str, Any]) -> bool:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return any((cs.get("state") or {}).get("running") for cs in statuses)


def restarts(pod: dict[str, Any]) -> tuple[int, str]:
    count, last = 0, ""
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        count += int(cs.get("restartCount") or 0)
        term = (cs.get("lastState") or {}).get("terminated") or {}
        if term:
            last = f"{term.get('reason', 'exited')} (exit {term.get('exitCode')})"
    return count, last


def play(*, kube_cluster, list_pods, mlflow_client, model_name: str, namespace: str, deployment: dict[str, Any],
         token: str, requests: list[list[dict]], state_dir: Path, runner=None) -> Outage:
    """The outage, start to end; the registry and the Deployment are put back afterwards."""
    from lightkube.resources.core_v1 import Pod

    container = deployment["spec"]["template"]["spec"]["containers"][0]
    window = watch_window(container)
    before = {p["metadata"]["name"]: p for p in list_pods() if ready(p)}
    if not before:
        return Outage(error="no replica was Ready before the outage, so none could be watched through it")
    version = mlflow_client.get_model_version_by_alias(model_name, "champion").version
    marker = state_dir / RESTORE_FILE
    marker.write_text(json.dumps({"model": model_name, "version": str(version)}))
    mlflow_client.delete_registered_model_alias(model_name, "champion")
    outage = Outage()
    try:
        victim = sorted(before)[0]
        kube_cluster.client.delete(Pod, victim, namespace=namespace)
        replacement = _wait_for_replacement(list_pods, set(before), timeout_s=60)
        if replacement is None:
            return Outage(error=f"no replacement pod appeared within 60 s of deleting {victim}")
        outage.replacement = replacement
        _watch(outage, kube_cluster, list_pods, before, victim, container, window, token, requests, runner)
    finally:
        mlflow_client.set_registered_model_alias(model_name, "champion", str(version))
        marker.unlink(missing_ok=True)
    _recover(kube_cluster, list_pods, namespace, deployment)
    return outage


def restore_alias(mlflow_client, state_dir: Path) -> bool:
    """Put back an alias a check took and could not return (the grader was killed mid-way)."""
    marker = state_dir / RESTORE_FILE
    if not marker.is_file():
        return False
    taken = json.loads(marker.read_text())
    mlflow_client.set_registered_model_alias(taken["model"], "champion", taken["version"])
    marker.unlink()
    return True


def _wait_for_replacement(list_pods, known: set[str], *, timeout_s: float) -> str | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        fresh = sorted(p["metadata"]["name"] for p in list_pods() if p["metadata"]["name"] not in known)
        if fresh:
            return fresh[0]
        time.sleep(1)
    return None


def _watch(outage: Outage, kube_cluster, list_pods, before, victim, container, window, token, requests,
           runner) -> None:
    """``requests``: the rows of each /predict asked straight at the replacement, spread over
    the window (sized like the checks' own calls through the Service)."""
    port = serving_port(container)
    liveness = (container.get("livenessProbe") or {}).get("httpGet")
    # The Host a client of the Service sends: a pod cannot tell the grader's direct request by it.
    headers = {"Host": urlsplit(API).netloc, "Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    kwargs = {"runner": runner} if runner is not None else {}
    started = None
    bodies = [json.dumps({"rows": rows}) for rows in requests]
    asked_at = [0.35 + 0.55 * i / max(len(bodies) - 1, 1) for i in range(len(bodies))]  # early to late
    begin = time.monotonic()
    hard_end = begin + window + 90  # the replacement may take a while to be scheduled and started
    while time.monotonic() < hard_end:
        pods = {p["metadata"]["name"]: p for p in list_pods()}
        pod = pods.get(outage.replacement)
        if pod is None:
            outage.others.append(f"the replacement {outage.replacement} disappeared during the outage")
            break
        now = time.monotonic()
        if started is None and (running(pod) or restarts(pod)[0]):
            started = now
        elapsed = now - started if started is not None else 0.0
        outage.restarts, outage.last_exit = restarts(pod)
        if ready(pod) and outage.ready_after_s is None:
            outage.ready_after_s = round(elapsed, 1)
        if started is not None and asked_at and elapsed >= asked_at[0] * window:
            asked_at.pop(0)
            outage.predictions.append(pod_request(pod, port, "/predict", method="POST", body=bodies.pop(0),
                                                  headers=headers, timeout_s=10, **kwargs))
        for name, old in before.items():
            if name == victim:
                continue
            now_pod = pods.get(name)
            if now_pod is None:
                _note(outage, f"{name}, which was serving, was deleted")
            elif restarts(now_pod)[0] > restarts(old)[0]:
                _note(outage, f"{name}, which was serving, restarted: {restarts(now_pod)[1]}")
            elif not ready(now_pod):
                _note(outage, f"{name}, which was serving with its model loaded, went unready")
        if started is not None and elapsed >= window:
            break
        time.sleep(2)
    outage.watched_s = round(time.monotonic() - started, 1) if started is not None else 0.0
    pod = {p["metadata"]["name"]: p for p in list_pods()}.get(outage.replacement)
    if liveness and pod is not None:
        outage.liveness_path = str(liveness.get("path") or "/")
        probe_headers = {"User-Agent": kubelet_agent(kube_cluster, pod), "Accept": "*/*",
                         **{h["name"]: h["value"] for h in liveness.get("httpHeaders") or [] if "name" in h}}
        outage.liveness = pod_request(pod, container_port(container, liveness.get("port")), outage.liveness_path,
                                      headers=probe_headers, timeout_s=10, **kwargs)


def kubelet_agent(kube_cluster, pod: dict[str, Any]) -> str:
    """The User-Agent the kubelet's own probes send (kube-probe/<minor>): the liveness path is
    asked as the kubelet would ask it."""
    from lightkube.resources.core_v1 import Node

    try:
        version = kube_cluster.client.get(Node, pod["spec"]["nodeName"]).status.nodeInfo.kubeletVersion
    except Exception:  # noqa: BLE001 - the node cannot be read: the probe agent of kind's Kubernetes
        version = "v1.34"
    major, minor = version.lstrip("v").split(".")[:2]
    return f"kube-probe/{major}.{minor}"


def _note(outage: Outage, line: str) -> None:
    if line not in outage.others:
        outage.others.append(line)


def _recover(kube_cluster, list_pods, namespace: str, deployment: dict[str, Any]) -> None:
    """With the alias back, a replica that still cannot serve is replaced, so the checks
    after this one find the Deployment as the candidate left it."""
    from lightkube.resources.core_v1 import Pod

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(ready(p) for p in list_pods()):
        time.sleep(2)
    for pod in list_pods():
        if not ready(pod):
            kube_cluster.client.delete(Pod, pod["metadata"]["name"], namespace=namespace)
    try:
        kube_cluster.wait_rollout(namespace, deployment["metadata"]["name"], timeout_s=180)
    except Exception:  # noqa: BLE001 - the checks after this one report what they find
        pass
