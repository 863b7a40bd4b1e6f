"""Rollout status and fault diagnosis on API-shaped dicts (the real cluster tests are in tests/cluster)."""

from __future__ import annotations

import pytest

from labkit.kube.rollout import (
    RolloutFailed,
    RolloutReader,
    pod_problems,
    rollout_state,
    wait_rollout,
)


def deployment(*, generation=2, observed=2, replicas=2, updated=2, total=2, available=2, conditions=()):
    return {
        "metadata": {"name": "web", "generation": generation},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}}},
        "status": {"observedGeneration": observed, "replicas": total, "updatedReplicas": updated,
                   "availableReplicas": available, "conditions": list(conditions)},
    }


def pod(name="web-1", *, statuses=(), conditions=(), deleting=False):
    meta = {"name": name}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "status": {"containerStatuses": list(statuses), "conditions": list(conditions)}}


def container(*, waiting=None, last=None, running=False, ready=False, restarts=0, name="app"):
    state = {"waiting": waiting} if waiting else ({"running": {"startedAt": "x"}} if running else {})
    return {"name": name, "state": state, "lastState": {"terminated": last} if last else {},
            "ready": ready, "restartCount": restarts}


@pytest.mark.parametrize(
    ("kwargs", "done", "text"),
    [
        ({}, True, "successfully rolled out"),
        ({"generation": 3}, False, "spec update to be observed"),
        ({"updated": 1}, False, "1 out of 2 new replicas"),
        ({"total": 3}, False, "1 old replicas are pending termination"),
        ({"available": 1}, False, "1 of 2 updated replicas are available"),
    ],
)
def test_rollout_state_follows_kubectl(kwargs, done, text):
    state = rollout_state(deployment(**kwargs))
    assert state.done is done and text in state.message


def test_progress_deadline_is_a_failure():
    cond = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
    state = rollout_state(deployment(available=0, conditions=[cond]))
    assert state.failed and not state.done


def test_image_pull_failure_is_named_and_fatal():
    p = pod(statuses=[container(waiting={"reason": "ImagePullBackOff",
                                         "message": 'Back-off pulling image "shop/model:v9"'})])
    [problem] = pod_problems(p)
    assert (problem.pod, problem.container, problem.reason, problem.fatal) == ("web-1", "app", "ImagePullBackOff", True)
    assert "shop/model:v9" in str(problem)


def test_crash_loop_quotes_the_exit_and_is_fatal_from_the_second_restart():
    last = {"reason": "Error", "exitCode": 3, "message": "ModuleNotFoundError: no module named srv"}
    once = pod_problems(pod(statuses=[container(waiting={"reason": "CrashLoopBackOff"}, last=last, restarts=1)]))
    twice = pod_problems(pod(statuses=[container(waiting={"reason": "CrashLoopBackOff"}, last=last, restarts=2)]))
    assert not once[0].fatal and twice[0].fatal
    assert "exit code 3" in twice[0].message and "restarted 2 times" in twice[0].message


def test_oom_killed_is_reported_even_while_the_container_runs_again():
    last = {"reason": "OOMKilled", "exitCode": 137}
    [problem] = pod_problems(pod(statuses=[container(running=True, last=last, restarts=2)]))
    assert problem.reason == "OOMKilled" and problem.fatal and "137" in problem.message


def test_readiness_failure_quotes_the_probe_event():
    event = {"type": "Warning", "reason": "Unhealthy", "count": 7, "lastTimestamp": "2026-01-01T00:00:09Z",
             "message": "Readiness probe failed: HTTP probe failed with statuscode: 404",
             "involvedObject": {"fieldPath": "spec.containers{app}"}}
    problems = pod_problems(pod(statuses=[container(running=True)]), [event])
    reasons = {p.reason: p for p in problems}
    assert "Unhealthy" in reasons and "statuscode: 404" in reasons["Unhealthy"].message
    assert reasons["Unhealthy"].container == "app" and "(x7)" in reasons["Unhealthy"].message
    assert not any(p.fatal for p in problems)  # a probe can still pass: keep waiting


def test_unschedulable_pod_is_named():
    cond = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/1 nodes are available: 1 Insufficient memory."}
    [problem] = pod_problems(pod(conditions=[cond]))
    assert problem.reason == "Unschedulable" and "Insufficient memory" in problem.message


def test_a_healthy_ready_pod_has_no_problem():
    assert pod_problems(pod(statuses=[container(running=True, ready=True)])) == []


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def reader(deployments, pods, events=None):
    seq = iter(deployments)
    last = {}

    def next_deployment():
        last["d"] = next(seq, last.get("d"))
        return last["d"]

    return RolloutReader(next_deployment, lambda: pods, lambda name: (events or {}).get(name, []))


def test_wait_returns_once_rolled_out():
    clock = FakeClock()
    seen = []
    r = reader([deployment(available=0), deployment(available=1), deployment()], [])
    state = wait_rollout(r, "web", timeout_s=60, clock=clock, sleep=clock.sleep, progress=seen.append)
    assert state.done and seen == ["web: 0 of 2 updated replicas are available", "web: 1 of 2 updated replicas are available"]


def test_wait_stops_early_on_a_fatal_problem():
    clock = FakeClock()
    bad = pod(statuses=[container(waiting={"reason": "ErrImagePull", "message": "not found"})])
    with pytest.raises(RolloutFailed) as info:
        wait_rollout(reader([deployment(available=0)], [bad]), "web", timeout_s=600, clock=clock, sleep=clock.sleep)
    assert not info.value.timed_out and clock.now == 0
    assert "pod web-1, container app: ErrImagePull" in info.value.message


def test_wait_times_out_with_the_diagnosis_and_skips_terminating_pods():
    clock = FakeClock()
    old = pod("web-old", statuses=[container(waiting={"reason": "ErrImagePull"})], deleting=True)
    slow = pod("web-new", statuses=[container(running=True)])
    with pytest.raises(RolloutFailed) as info:
        wait_rollout(reader([deployment(available=1)], [old, slow]), "web", timeout_s=5, clock=clock,
                     sleep=clock.sleep)
    assert info.value.timed_out and clock.now >= 5
    assert "web-new" in info.value.message and "NotReady" in info.value.message
    assert "web-old" not in info.value.message


def test_a_rollout_that_crashes_right_after_it_looks_done_is_not_done():
    """No readiness probe: the pod counts as available while it runs, then it crashes."""
    clock = FakeClock()
    crashed = pod(statuses=[container(waiting={"reason": "CrashLoopBackOff"}, restarts=2,
                                      last={"reason": "Error", "exitCode": 3})])
    pods = [pod(statuses=[container(running=True, ready=True)])]
    deployments = iter([deployment(), deployment(), deployment(available=1)])
    current = {}

    def next_deployment():
        current["d"] = next(deployments, current.get("d"))
        if current["d"]["status"]["availableReplicas"] == 1:
            pods[:] = [crashed, pod("web-2", statuses=[container(running=True, ready=True)])]
        return current["d"]

    reader = RolloutReader(next_deployment, lambda: pods, lambda name: [])
    with pytest.raises(RolloutFailed) as info:
        wait_rollout(reader, "web", timeout_s=60, clock=clock, sleep=clock.sleep)
    assert "CrashLoopBackOff" in info.value.message and "exit code 3" in info.value.message


def test_restarts_during_the_settle_window_restart_it():
    clock = FakeClock()
    restarts = iter([0, 1, 1, 1, 1, 1, 1])

    def pods():
        return [pod(statuses=[container(running=True, ready=True, restarts=next(restarts, 1))])]

    reader = RolloutReader(lambda: deployment(), pods, lambda name: [])
    state = wait_rollout(reader, "web", timeout_s=60, settle_s=3, clock=clock, sleep=clock.sleep)
    assert state.done and clock.now >= 4  # the window began again after the restart
