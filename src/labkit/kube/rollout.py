"""Is a Deployment rolled out, and if not, why not — named by pod, container and reason.

The status rules are kubectl's (`kubectl rollout status`): the controller has seen the
latest spec, every replica is updated, no old replica is left, every updated replica is
available. The diagnosis reads what a person on call would read — container states,
last terminations, pod conditions and Warning events — so that "timed out" is never
the whole answer. Everything here works on plain dicts (the API's JSON), so it is
tested without a cluster; `wait_rollout` is the only part that talks to one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from labkit.errors import ServiceError

# A container waiting for one of these will not get better by waiting.
FATAL_WAITING = {
    "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull",
    "CreateContainerConfigError", "CreateContainerError", "RunContainerError", "CrashLoopBackOff",
}
# Warning events worth quoting, newest last.
EVENT_REASONS = {
    "Failed", "FailedScheduling", "Unhealthy", "BackOff", "FailedMount", "FailedCreatePodSandBox",
    "FailedCreate", "Evicted", "OOMKilling", "ProbeWarning",
}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one pod (or with the Deployment, when pod is empty)."""

    pod: str
    container: str
    reason: str
    message: str
    fatal: bool = False

    def __str__(self) -> str:
        where = f"pod {self.pod}" if self.pod else "deployment"
        if self.container:
            where += f", container {self.container}"
        return f"{where}: {self.reason}" + (f" — {self.message}" if self.message else "")


@dataclass(frozen=True)
class RolloutState:
    done: bool
    message: str
    failed: bool = False  # the controller itself gave up (progress deadline)


class RolloutFailed(ServiceError):
    """A Deployment did not roll out; `problems` says why, pod by pod."""

    def __init__(self, name: str, state: RolloutState, problems: list[Problem], *, timed_out: bool) -> None:
        self.name = name
        self.state = state
        self.problems = problems
        self.timed_out = timed_out
        lines = "\n".join(f"  - {p}" for p in problems) or "  (no pod reported a problem)"
        why = "did not become ready in time" if timed_out else "cannot become ready"
        super().__init__(
            f"deployment {name} {why}: {state.message}\n{lines}",
            hint=f"look closer with: kubectl describe deployment {name}; kubectl get pods; kubectl logs <pod>",
        )


def rollout_state(deployment: dict[str, Any]) -> RolloutState:
    meta, spec, status = deployment.get("metadata", {}), deployment.get("spec", {}), deployment.get("status") or {}
    if (meta.get("generation") or 0) > (status.get("observedGeneration") or 0):
        return RolloutState(False, "waiting for the deployment spec update to be observed")
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return RolloutState(False, "exceeded its progress deadline", failed=True)
    wanted = spec.get("replicas", 1)
    updated = status.get("updatedReplicas") or 0
    replicas = status.get("replicas") or 0
    available = status.get("availableReplicas") or 0
    if updated < wanted:
        return RolloutState(False, f"{updated} out of {wanted} new replicas have been updated")
    if replicas > updated:
        return RolloutState(False, f"{replicas - updated} old replicas are pending termination")
    if available < updated:
        return RolloutState(False, f"{available} of {updated} updated replicas are available")
    return RolloutState(True, "successfully rolled out")


def deployment_problems(deployment: dict[str, Any]) -> list[Problem]:
    """Conditions the controller sets when it cannot even create pods (quota, bad spec)."""
    out = []
    for cond in (deployment.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "ReplicaFailure" and cond.get("status") == "True":
            out.append(Problem("", "", cond.get("reason") or "ReplicaFailure", cond.get("message") or "", fatal=True))
    return out


def pod_problems(pod: dict[str, Any], events: Iterable[dict[str, Any]] = ()) -> list[Problem]:
    """What is wrong with one pod: container states first, then what its events add."""
    name = pod.get("metadata", {}).get("name", "?")
    status = pod.get("status") or {}
    problems: list[Problem] = []
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            problems.append(Problem(name, "", cond.get("reason") or "Unschedulable", cond.get("message") or ""))
    if status.get("reason") == "Evicted":
        problems.append(Problem(name, "", "Evicted", status.get("message") or "", fatal=True))
    statuses = (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])
    for cs in statuses:
        problems.extend(_container_problems(name, cs))
    quoted = {p.reason for p in problems}
    for event in _warnings(events):
        reason = event.get("reason") or ""
        message = " ".join((event.get("message") or "").split())
        container = _event_container(event)
        if reason == "Failed" and any(p.fatal and p.container == container for p in problems):
            continue  # the kubelet's "Failed" repeats the waiting reason's message
        if reason == "Unhealthy" or (reason not in quoted and reason != "BackOff"):
            count = event.get("count") or 1
            suffix = f" (x{count})" if count > 1 else ""
            problems.append(Problem(name, container, reason, message + suffix))
            quoted.add(reason)
    return problems


def _container_problems(pod: str, cs: dict[str, Any]) -> list[Problem]:
    name = cs.get("name", "?")
    state, last = cs.get("state") or {}, cs.get("lastState") or {}
    restarts = cs.get("restartCount") or 0
    out = []
    waiting = state.get("waiting") or {}
    terminated_last = last.get("terminated") or {}
    if waiting.get("reason") and waiting["reason"] not in ("ContainerCreating", "PodInitializing"):
        message = waiting.get("message") or ""
        if waiting["reason"] == "CrashLoopBackOff" and terminated_last:
            message = _termination(terminated_last) + f", restarted {restarts} times"
        # One crash can be a slow dependency; a second one is a loop.
        fatal = waiting["reason"] in FATAL_WAITING and (waiting["reason"] != "CrashLoopBackOff" or restarts >= 2)
        out.append(Problem(pod, name, waiting["reason"], message, fatal=fatal))
    elif terminated_last.get("reason") == "OOMKilled":
        out.append(Problem(pod, name, "OOMKilled", _termination(terminated_last) + f", restarted {restarts} times",
                           fatal=restarts >= 2))
    elif restarts and terminated_last:
        out.append(Problem(pod, name, "Restarted", _termination(terminated_last) + f", restarted {restarts} times"))
    terminated = state.get("terminated") or {}
    if terminated and terminated.get("exitCode", 0) != 0:
        out.append(Problem(pod, name, terminated.get("reason") or "Error", _termination(terminated)))
    if state.get("running") and not cs.get("ready", False) and not out:
        out.append(Problem(pod, name, "NotReady", "running but its readiness probe has not passed"))
    return out


def _termination(term: dict[str, Any]) -> str:
    text = f"last run ended with {term.get('reason') or 'exit'} (exit code {term.get('exitCode', '?')})"
    msg = " ".join((term.get("message") or "").split())
    return text + (f": {msg[:300]}" if msg else "")


def _warnings(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    wanted = [e for e in events if e.get("type") == "Warning" and e.get("reason") in EVENT_REASONS]
    return sorted(wanted, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""), reverse=True)


def _event_container(event: dict[str, Any]) -> str:
    path = (event.get("involvedObject") or {}).get("fieldPath") or ""  # spec.containers{app}
    return path[path.find("{") + 1:-1] if "{" in path and path.endswith("}") else ""


# ---- talking to a cluster --------------------------------------------------------------------


@dataclass
class RolloutReader:
    """Reads a Deployment, its pods and their events (a fake in unit tests)."""

    deployment: Callable[[], dict[str, Any]]
    pods: Callable[[], list[dict[str, Any]]]
    events: Callable[[str], list[dict[str, Any]]]


def diagnose(reader: RolloutReader, deployment: dict[str, Any]) -> list[Problem]:
    problems = deployment_problems(deployment)
    for pod in reader.pods():
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            continue  # an old replica on its way out
        problems.extend(pod_problems(pod, reader.events(pod["metadata"]["name"])))
    return problems


def _restarts(pods: list[dict[str, Any]]) -> int:
    return sum(cs.get("restartCount") or 0 for p in pods for cs in (p.get("status") or {}).get("containerStatuses") or [])


def wait_rollout(
    reader: RolloutReader, name: str, *, timeout_s: float, poll_s: float = 1.0, settle_s: float = 3.0,
    progress: Callable[[str], None] | None = None, clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> RolloutState:
    """Wait until the Deployment is rolled out and stays so for settle_s with no container
    restarting; raise RolloutFailed as soon as waiting is futile.

    The settle window is what kubectl lacks: a container without a readiness probe counts
    as available the moment it runs, so one that crashes a second later would otherwise
    pass for rolled out.
    """
    deadline = clock() + timeout_s
    last_message = ""
    settled_since: float | None = None
    baseline = 0
    while True:
        deployment = reader.deployment()
        state = rollout_state(deployment)
        if state.done:
            restarts = _restarts(reader.pods())
            if settled_since is None or restarts > baseline:
                settled_since, baseline = clock(), restarts
            elif clock() - settled_since >= settle_s:
                return state
            if clock() >= deadline:
                raise RolloutFailed(name, RolloutState(False, "containers keep restarting"),
                                    diagnose(reader, deployment), timed_out=True)
            sleep(poll_s)
            continue
        settled_since = None
        if state.message != last_message and progress:
            progress(f"{name}: {state.message}")
            last_message = state.message
        problems = diagnose(reader, deployment)
        if state.failed or any(p.fatal for p in problems):
            raise RolloutFailed(name, state, problems, timed_out=False)
        if clock() >= deadline:
            raise RolloutFailed(name, state, problems, timed_out=True)
        sleep(poll_s)
