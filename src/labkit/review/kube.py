"""`labkit review --backend k8s`: each submission reviewed by one Kubernetes Job.

The Job runs the same worker (labkit.review.worker) as the local backend, inside a
grader image that carries the full lab sources, under the limits of grader/sandbox.yaml.

* **In**: the archive travels in Secrets (no registry, no shared disk: works on kind and
  on any cluster the reviewer can create objects in), split into parts of at most
  ``PART_BYTES`` (a Secret holds 1 MiB), mounted read-only through one projected volume
  with the job description; over ``MAX_PARTS`` parts is an error row that names the limit.
  The Secrets are owned by their Job, so Kubernetes deletes them with it.
* **Out**: the pod's entry (labkit.review.kube_entry) prints the result record as the
  last lines of its log, gzipped and base64-encoded between markers; nothing needs a
  volume the reviewer's machine can read. The reports are written here from the record,
  exactly as the local backend writes them.
* **Failures**: a Job that fails (the pod crashed, was OOM-killed, or hit
  ``activeDeadlineSeconds``) or whose pod cannot start (image missing) becomes an error
  row with the reason from the Job's and the pod's status and the log's tail.

The manifest and result functions are pure (tests/unit/test_review_kube.py); the
:class:`JobRunner` talks to the cluster.
"""

from __future__ import annotations

import base64
import gzip
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit.sandbox.limits import SandboxPolicy

NAMESPACE = "labkit-review"
PART_BYTES = 960 * 1024  # a Secret's data is limited to 1 MiB; the job description shares part 0
MAX_PARTS = 8  # ~7.5 MiB of archive; beyond it, review with the local backend
TTL_AFTER_FINISHED_S = 3600
SUBMISSION_MOUNT = "/submission"
REVIEW_MOUNT = "/review"
RESULT_BEGIN = "=== labkit-review-result v1"
RESULT_END = "=== end labkit-review-result ==="
_B64_LINE = 4000  # well under the 16 KiB at which container runtimes split log lines
LOG_LINES = 5000
FATAL_WAITING = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull",
                 "CreateContainerConfigError", "CreateContainerError")
PART_OF = {"app.kubernetes.io/part-of": "labkit", "app.kubernetes.io/component": "review"}


def job_name(sha: str) -> str:
    return f"labkit-review-{sha[:12]}"


def part_key(index: int) -> str:
    return f"archive.part-{index:03d}"


def split_archive(data: bytes, *, part_bytes: int = PART_BYTES, max_parts: int | None = None) -> list[bytes]:
    """The archive in Secret-sized parts; ValueError (with the limit) when it needs too many."""
    max_parts = max_parts or MAX_PARTS
    parts = [data[i:i + part_bytes] for i in range(0, len(data), part_bytes)] or [b""]
    if len(parts) > max_parts:
        limit = part_bytes * max_parts
        raise ValueError(f"{len(data) / 2**20:.1f} MB is over the {limit / 2**20:.1f} MB the Kubernetes backend "
                         f"carries in Secrets ({max_parts} x {part_bytes // 1024} KiB); review it with the local "
                         f"backend (labkit review without --backend k8s)")
    return parts


def _quantity_cpu(cpus: float) -> str:
    return f"{round(cpus * 1000)}m"


def _quantity_bytes(n: int) -> str:
    return f"{n // 2**20}Mi" if n % 2**20 == 0 else str(n)


def _tmpfs_size(options: str) -> str | None:
    """`size=512m` (docker's --tmpfs options) as an emptyDir sizeLimit."""
    from labkit.sandbox.limits import parse_size

    for option in options.split(","):
        if option.strip().startswith("size="):
            return _quantity_bytes(parse_size(option.split("=", 1)[1]))
    return None


def _user(policy: SandboxPolicy) -> tuple[int, int]:
    uid, _, gid = policy.user.partition(":")
    return int(uid), int(gid or uid)


def namespace_manifests(namespace: str = NAMESPACE) -> list[dict[str, Any]]:
    """The reviews' namespace: the restricted Pod Security profile enforced, and a default-deny
    NetworkPolicy for ingress and egress (enforced only by a CNI that implements it)."""
    return [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": namespace, "labels": {**PART_OF,
                                                    "pod-security.kubernetes.io/enforce": "restricted",
                                                    "pod-security.kubernetes.io/enforce-version": "latest"}}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
         "metadata": {"name": "labkit-review-deny-all", "namespace": namespace, "labels": PART_OF},
         "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}},
    ]


def secret_manifests(sha: str, parts: list[bytes], job: dict[str, Any], *, namespace: str = NAMESPACE,
                     owner: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """One Secret per part; part 0 also carries job.json. `owner`: the Job's uid, so they go with it."""
    secrets = []
    for i, part in enumerate(parts):
        data = {part_key(i): base64.b64encode(part).decode()}
        if i == 0:
            data["job.json"] = base64.b64encode(json.dumps(job, sort_keys=True).encode()).decode()
        metadata: dict[str, Any] = {"name": f"{job_name(sha)}-{i}", "namespace": namespace,
                                    "labels": {**PART_OF, "labkit/submission": sha[:12]}}
        if owner is not None:
            metadata["ownerReferences"] = [{"apiVersion": "batch/v1", "kind": "Job", "name": job_name(sha),
                                            "uid": owner["uid"], "blockOwnerDeletion": False}]
        secrets.append({"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": metadata, "data": data})
    return secrets


def job_manifest(sha: str, *, parts: int, image: str, policy: SandboxPolicy, batch: str, hidden: bool,
                 namespace: str = NAMESPACE) -> dict[str, Any]:
    """The Job reviewing one submission (docs/review.md: "Reviews as Kubernetes Jobs")."""
    uid, gid = _user(policy)
    labels = {**PART_OF, "labkit/batch": batch, "labkit/submission": sha[:12]}
    limits = {"cpu": _quantity_cpu(policy.cpus), "memory": _quantity_bytes(policy.memory_bytes)}
    requests = {"cpu": _quantity_cpu(policy.request_cpus if policy.request_cpus is not None else policy.cpus),
                "memory": _quantity_bytes(policy.request_memory_bytes if policy.request_memory_bytes is not None
                                          else policy.memory_bytes)}
    volumes: list[dict[str, Any]] = [
        {"name": "submission", "projected": {"defaultMode": 0o444, "sources": [
            {"secret": {"name": f"{job_name(sha)}-{i}"}} for i in range(parts)]}},
        {"name": "review", "emptyDir": {"sizeLimit": "2Gi"}},
    ]
    mounts = [{"name": "submission", "mountPath": SUBMISSION_MOUNT, "readOnly": True},
              {"name": "review", "mountPath": REVIEW_MOUNT}]
    for i, (target, options) in enumerate(sorted(policy.tmpfs.items())):
        size = _tmpfs_size(options)
        volumes.append({"name": f"scratch-{i}", "emptyDir": {"sizeLimit": size} if size else {}})
        mounts.append({"name": f"scratch-{i}", "mountPath": target})
    container = {
        "name": "review", "image": image, "imagePullPolicy": "IfNotPresent",
        "command": ["python", "-m", "labkit.review.kube_entry", SUBMISSION_MOUNT, REVIEW_MOUNT],
        "env": [{"name": "LABKIT_HOME", "value": f"{REVIEW_MOUNT}/home"}, {"name": "HOME", "value": "/tmp"},
                {"name": "PYTHONUNBUFFERED", "value": "1"}, {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"}],
        "resources": {"requests": requests, "limits": limits},
        "securityContext": {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": gid,
                            "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": policy.read_only_rootfs,
                            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
        "volumeMounts": mounts,
    }
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": job_name(sha), "namespace": namespace, "labels": labels,
                     "annotations": {"labkit/submission-sha256": sha, "labkit/hidden": str(hidden).lower()}},
        "spec": {
            "backoffLimit": 1,  # one infrastructure retry; a rejected submission is a result, not a failure
            "activeDeadlineSeconds": int(policy.total_timeout_s),
            "ttlSecondsAfterFinished": TTL_AFTER_FINISHED_S,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": gid, "fsGroup": gid,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


# ---- results through the log ----------------------------------------------------------------


def encode_result(record: dict[str, Any], sha: str) -> str:
    """The record as the log's last lines: gzipped JSON, base64, between markers."""
    blob = base64.b64encode(gzip.compress(json.dumps(record).encode(), mtime=0)).decode()
    lines = [blob[i:i + _B64_LINE] for i in range(0, len(blob), _B64_LINE)]
    return "\n".join([f"{RESULT_BEGIN} {sha[:12]} {len(lines)} ===", *lines, RESULT_END]) + "\n"


def decode_result(log: str, sha: str) -> tuple[dict[str, Any] | None, str]:
    """(the record the pod printed, or None; the log without it)."""
    lines = log.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(RESULT_BEGIN)]
    if not starts:
        return None, log
    start = starts[-1]
    header = lines[start][len(RESULT_BEGIN):].split()
    try:
        end = lines.index(RESULT_END, start)
        if header[0] != sha[:12] or int(header[1]) != end - start - 1:
            return None, log
        record = json.loads(gzip.decompress(base64.b64decode("".join(lines[start + 1:end]))))
    except (ValueError, IndexError, OSError):
        return None, log
    if not isinstance(record, dict):
        return None, log
    return record, "\n".join(lines[:start] + lines[end + 1:]) + "\n"


def failure_reason(job: dict[str, Any], pods: list[dict[str, Any]], log_tail: str) -> str:
    """Why a Job gave no result, from its conditions, its last pod's status and its log."""
    from labkit.kube.rollout import pod_problems

    why = []
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") in ("Failed", "FailureTarget") and cond.get("status") == "True":
            why.append(f"{cond.get('reason') or 'Failed'}: {cond.get('message') or ''}".strip(": "))
            break
    pod = _latest(pods)
    if pod is not None:
        why += [str(p) for p in pod_problems(pod)]
    if not why:
        why.append("the pod ended without printing a result")
    tail = "\n".join(log_tail.strip().splitlines()[-8:])
    return "the review Job failed: " + "; ".join(dict.fromkeys(why)) + (f"\n{tail}" if tail else "")


def job_outcome(job: dict[str, Any]) -> str:
    """running | complete | failed, from the Job's conditions."""
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("status") != "True":
            continue
        if cond.get("type") == "Complete":
            return "complete"
        if cond.get("type") == "Failed":
            return "failed"
    return "running"


def stuck_reason(pods: list[dict[str, Any]]) -> str | None:
    """A pod that will never start by itself (its image cannot be had, its config is wrong)."""
    for pod in pods:
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            waiting = (cs.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in FATAL_WAITING:
                return f"the review pod cannot start: {waiting['reason']}: {waiting.get('message') or ''}".strip(": ")
    return None


# ---- the cluster side -------------------------------------------------------------------------


@dataclass(frozen=True)
class KubeOptions:
    """Where the Jobs run and what they run: no kubeconfig or context means the lab's kind
    cluster (LABKIT_KIND_CLUSTER, created if missing)."""

    kubeconfig: Path | None = None
    context: str | None = None
    grader_image: str | None = None  # used as is: it must hold labkit and the full lab sources
    grader_base: str | None = None  # what the review image is built from (default: the policy's image)
    namespace: str = NAMESPACE


@dataclass
class Submission:
    """One submission on its way through a Job."""

    archive: Path
    job_dir: Path
    sha: str
    job: dict[str, Any]  # the worker's job description, as the pod sees it
    created: float = 0.0
    started: float | None = None
    extra_dirs: list[tuple[Path, Path]] = field(default_factory=list)  # (archive, job folder): same bytes

    @property
    def name(self) -> str:
        return job_name(self.sha)


class JobRunner:
    """Creates Jobs (at most `parallel` at a time), waits for them, returns their records."""

    def __init__(self, cluster: Any, *, image: str, policy: SandboxPolicy, hidden: bool, batch: str,
                 namespace: str = NAMESPACE, parallel: int = 1, poll_s: float = 2.0,
                 progress: Callable[[str], None] = lambda message: None) -> None:
        self.cluster, self.image, self.policy, self.hidden = cluster, image, policy, hidden
        self.batch, self.namespace, self.parallel, self.poll_s, self.progress = (
            batch, namespace, parallel, poll_s, progress)

    @property
    def client(self) -> Any:
        return self.cluster.client

    def prepare(self) -> None:
        """The namespace and its default-deny NetworkPolicy (server-side apply: idempotent)."""
        self.cluster.apply(_objects(namespace_manifests(self.namespace)))

    def run(self, items: list[Submission], done: Callable[[Submission, dict[str, Any]], None]) -> None:
        """Review every item; `done(item, record-or-error)` is called as each finishes."""
        queue, inflight = list(items), {}
        while queue or inflight:
            while queue and len(inflight) < self.parallel:
                item = queue.pop(0)
                try:
                    self._submit(item)
                except Exception as exc:  # noqa: BLE001 - one submission's trouble must not stop the batch
                    done(item, {"error": f"could not create the review Job: {exc}"})
                    continue
                inflight[item.name] = item
            time.sleep(self.poll_s)
            for name, item in list(inflight.items()):
                try:
                    outcome = self._poll(item)
                except Exception as exc:  # noqa: BLE001 - the API server hiccuped: ask again next time
                    outcome = None
                    if time.monotonic() - item.created > self.policy.total_timeout_s + 120:
                        outcome = {"error": f"the cluster did not answer about the review Job: {exc}"}
                if outcome is not None:
                    del inflight[name]
                    self._delete_job(name, wait=False)
                    done(item, outcome)

    # -- one Job ---------------------------------------------------------------------------------

    def _submit(self, item: Submission) -> None:
        from lightkube import codecs

        existing = self._get_job(item.name)
        if existing is not None:
            annotations = existing.get("metadata", {}).get("annotations") or {}
            same = (annotations.get("labkit/submission-sha256") == item.sha
                    and annotations.get("labkit/hidden") == str(self.hidden).lower())
            if same and job_outcome(existing) != "failed":  # an interrupted run's Job: collect it
                self.progress(f"{item.name}: created by an earlier run; collecting its result")
                item.created = time.monotonic()
                return
            self._delete_job(item.name, wait=True)
        parts = split_archive((item.job_dir / Path(item.job["archive"]).name).read_bytes())
        manifest = job_manifest(item.sha, parts=len(parts), image=self.image, policy=self.policy, batch=self.batch,
                                hidden=self.hidden, namespace=self.namespace)
        created = self.client.create(codecs.from_dict(manifest))
        owner = {"uid": created.metadata.uid}
        # applied, not created: a Secret of an earlier run may still wait for the garbage collector
        self.cluster.apply(_objects(secret_manifests(item.sha, parts, item.job, namespace=self.namespace,
                                                     owner=owner)))
        item.created = time.monotonic()

    def _poll(self, item: Submission) -> dict[str, Any] | None:
        job = self._get_job(item.name)
        if job is None:
            return {"error": "the review Job disappeared before it finished (deleted by someone?)"}
        pods = self._pods(item.name)
        if item.started is None and any((p.get("status") or {}).get("phase") == "Running" for p in pods):
            item.started = time.monotonic()
        outcome = job_outcome(job)
        if outcome == "running":
            stuck = stuck_reason(pods)
            if stuck:
                return {"error": stuck, "log": ""}
            if time.monotonic() - item.created > self.policy.total_timeout_s + 120:
                return {"error": f"the review Job gave no outcome within {self.policy.total_timeout_s + 120:g}s"}
            return None
        pod = _latest(pods)
        log = self._log(pod) if pod else ""
        record, rest = decode_result(log, item.sha)
        timing = {"job": item.name, "namespace": self.namespace, "pod": (pod or {}).get("metadata", {}).get("name"),
                  "node": ((pod or {}).get("spec") or {}).get("nodeName"), "outcome": outcome,
                  "created_to_result_s": round(time.monotonic() - item.created, 1),
                  "running_to_result_s": round(time.monotonic() - item.started, 1) if item.started else None}
        if record is not None:
            return {"record": record, "log": rest, "kube": timing}
        return {"error": failure_reason(job, pods, log), "log": log, "kube": timing}

    def _get_job(self, name: str) -> dict[str, Any] | None:
        from lightkube import ApiError
        from lightkube.resources.batch_v1 import Job

        try:
            return self.client.get(Job, name, namespace=self.namespace).to_dict()
        except ApiError as exc:
            if exc.status.code == 404:
                return None
            raise

    def _pods(self, name: str) -> list[dict[str, Any]]:
        from lightkube.resources.core_v1 import Pod

        return [p.to_dict() for p in self.client.list(Pod, namespace=self.namespace, labels={"job-name": name})]

    def _log(self, pod: dict[str, Any]) -> str:
        from lightkube import ApiError

        try:
            return "\n".join(self.client.log(pod["metadata"]["name"], namespace=self.namespace,
                                             container="review", tail_lines=LOG_LINES, newlines=False))
        except ApiError as exc:
            return f"(no logs: {exc.status.message})"

    def _delete_job(self, name: str, *, wait: bool) -> None:
        from lightkube import ApiError
        from lightkube.resources.batch_v1 import Job
        from lightkube.types import CascadeType

        try:
            self.client.delete(Job, name, namespace=self.namespace, cascade=CascadeType.BACKGROUND)
        except ApiError as exc:
            if exc.status.code != 404:
                raise
        deadline = time.monotonic() + 120
        while wait and self._get_job(name) is not None and time.monotonic() < deadline:
            time.sleep(1)


def _latest(pods: list[dict[str, Any]]) -> dict[str, Any] | None:
    return max(pods, key=lambda p: str(p.get("metadata", {}).get("creationTimestamp") or ""), default=None)


def _objects(manifests: list[dict[str, Any]]) -> list[Any]:
    from lightkube import codecs

    return [codecs.from_dict(m) for m in manifests]
