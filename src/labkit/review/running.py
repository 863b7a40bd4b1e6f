"""A review never touches a lab it did not start.

A review provisions the submission's lab afresh and tears it down when the grade ends.
On the local runtime that is harmless: each worker has its own LABKIT_HOME (session,
services' data), takes free ports, and gets none of the reviewer's service variables
(labkit.review.backends.local). A kind lab cannot be kept apart like that: there is one
kind cluster per machine (its name and node ports are fixed by infra/kind/cluster.yaml),
the worker's `labkit start` would reuse it, and its `labkit stop` would delete labkit's
namespaces in it — the running lab's MLflow and workloads with them. So a review of a
kind lab starts only when no labkit namespace is in that cluster and the reviewer has no
kind lab running; otherwise it is refused (exit 12) with the lab that runs and what to do.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from labkit.errors import LabkitError, LabRunning
from labkit.proc import DEFAULT_RUNNER, ProcessRunner

RERUN = "then run the same `labkit review` again (finished reviews are skipped)"


def reviewer_lab() -> dict[str, Any] | None:
    """The lab running in this process's LABKIT_HOME (the reviewer's, where the batch starts)."""
    from labkit.paths import labkit_home
    from labkit.session import load_session

    try:
        session = load_session()
    except LabkitError:  # a corrupt session: nothing we can name; the cluster check still runs
        return None
    if session is None:
        return None
    cluster = (session.runtime_info or {}).get("cluster") or {}
    return {"lab": session.lab_id, "runtime": session.runtime, "workspace": session.workspace,
            "home": str(labkit_home()), "cluster": cluster.get("name", "")}


def guard_kind_review(lab_id: str, *, running_lab: dict[str, Any] | None, runner: ProcessRunner = DEFAULT_RUNNER,
                      list_namespaces: Callable[[str], list[str]] | None = None) -> None:
    """Raise LabRunning when a review of the kind lab `lab_id` would share the cluster of a
    running lab (the reviewer's, or any labkit namespace in the machine's kind cluster)."""
    from labkit.kube import tools

    name = tools.cluster_name()
    if running_lab and running_lab.get("runtime") == "kind":
        raise _refusal(running_lab, 
            f"not reviewed: {lab_id} runs on the kind cluster {running_lab.get('cluster') or name!r}, where your lab "
            f"{running_lab['lab']} is running (workspace {running_lab['workspace']}); the review would reuse that "
            "cluster and tear it down when done",
            hint=f"stop your lab first (`labkit stop`: its workspace is kept), {RERUN}",
        )
    kind = tools.find_tool("kind")
    if kind is None:
        return  # no kind here: the review's own start says so
    clusters = runner.run([kind, "get", "clusters"], timeout=60, check=False)
    if name not in clusters.stdout.split():
        return  # the review creates the cluster, owns it, and deletes it when done
    namespaces = (list_namespaces or _labkit_namespaces)(name)
    if namespaces:
        raise _refusal({"cluster": name, "namespaces": sorted(namespaces)}, 
            f"not reviewed: {lab_id} runs on the kind cluster {name!r}, which holds labkit's namespace(s) "
            f"{', '.join(sorted(namespaces))}: a lab (or reviews) started from another LABKIT_HOME or shell; "
            "the review would reuse that cluster and delete those namespaces when done",
            hint=f"stop that lab (`labkit stop` where it was started) or wait for those reviews, {RERUN}",
        )


def _refusal(holder: dict[str, Any], message: str, *, hint: str) -> LabRunning:
    error = LabRunning(message, hint=hint)
    error.holder = holder  # what holds the cluster: the review's row names it (blocked_by)
    return error


def _labkit_namespaces(name: str, runner: ProcessRunner = DEFAULT_RUNNER) -> list[str]:
    """labkit's namespaces in the kind cluster `name`, read with a kubeconfig of our own."""
    from labkit.kube import tools
    from labkit.kube.api import Cluster, ClusterInfo

    with tempfile.TemporaryDirectory(prefix="labkit-guard-") as tmp:
        kubeconfig = Path(tmp) / "kubeconfig"
        runner.run([tools.find_tool("kind") or "kind", "export", "kubeconfig", "--name", name,
                    "--kubeconfig", str(kubeconfig)], timeout=60)
        try:
            return Cluster(ClusterInfo(name, str(kubeconfig), f"kind-{name}"), runner).namespaces()
        except Exception as exc:  # noqa: BLE001 - unreadable: refuse rather than risk someone's lab
            raise _refusal({"cluster": name}, f"not reviewed: the kind cluster {name!r} exists and labkit could not "
                           f"tell whether a lab runs on it ({exc})", hint=f"check with `labkit status`, {RERUN}") from None
