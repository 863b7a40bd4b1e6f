"""`labkit review --backend k8s` without a cluster: the Job and Secret manifests, the
result carried through the pod's log, the reasons a failed Job gives, and the batch
(resume, error rows, duplicates) with a stand-in for the cluster that runs the pod's
own entry point in-process."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import tarfile
import uuid
from pathlib import Path

import pytest

from labkit import lifecycle
from labkit.bundles.submit import build_submission
from labkit.review import kube, kube_entry
from labkit.review.backends import k8s as kube_batch
from labkit.review.jobs import ReviewJob
from labkit.review.batch import review_submissions
from labkit.review.kube import (MAX_PARTS, PART_BYTES, Submission, decode_result, encode_result, failure_reason,
                                job_manifest, job_outcome, namespace_manifests, secret_manifests, split_archive,
                                stuck_reason)
from labkit.sandbox.limits import SandboxPolicy
from labkit.sandbox.spec import load_policy
from labkit.ui import UI
from tests.conftest import REPO

SHA = "ab" * 32
SUM = "import sys\nprint(int(sys.argv[1]) + int(sys.argv[2]))\n"


def _container(manifest):
    return manifest["spec"]["template"]["spec"]["containers"][0]


def test_the_job_manifest_says_what_docs_review_promises():
    policy = load_policy(REPO / "grader" / "sandbox.yaml")
    job = job_manifest(SHA, parts=2, image="labkit/review-grader:x", policy=policy, batch="b1", hidden=True)
    meta, spec, pod = job["metadata"], job["spec"], job["spec"]["template"]["spec"]
    assert meta["name"] == "labkit-review-" + SHA[:12] and meta["namespace"] == "labkit-review"
    assert meta["labels"]["labkit/batch"] == "b1" and meta["labels"]["labkit/submission"] == SHA[:12]
    assert meta["annotations"] == {"labkit/submission-sha256": SHA, "labkit/hidden": "true"}
    assert (spec["backoffLimit"], spec["activeDeadlineSeconds"], spec["ttlSecondsAfterFinished"]) == (1, 1800, 3600)
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] == 10001
    c = _container(job)
    assert c["securityContext"] == {
        "runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001, "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}
    assert c["resources"] == {"limits": {"cpu": "2000m", "memory": "3072Mi"},
                              "requests": {"cpu": "1000m", "memory": "1024Mi"}}  # sandbox.yaml's requests
    assert c["command"] == ["python", "-m", "labkit.review.kube_entry", "/submission", "/review"]
    assert c["imagePullPolicy"] == "IfNotPresent"  # kind-loaded: never pulled
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert mounts["/submission"]["readOnly"] is True
    assert [s["secret"]["name"] for s in volumes["submission"]["projected"]["sources"]] == [
        f"labkit-review-{SHA[:12]}-0", f"labkit-review-{SHA[:12]}-1"]
    assert volumes[mounts["/tmp"]["name"]]["emptyDir"] == {"sizeLimit": "512Mi"}  # sandbox.yaml's tmpfs
    assert "emptyDir" in volumes[mounts["/review"]["name"]]
    from lightkube import codecs  # the API's own models accept every field

    assert codecs.from_dict(job).spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem


def test_requests_default_to_the_limits():
    job = job_manifest(SHA, parts=1, image="i", policy=SandboxPolicy(cpus=0.5, memory_bytes=2**30), batch="b",
                       hidden=False)
    assert _container(job)["resources"]["requests"] == {"cpu": "500m", "memory": "1024Mi"}
    assert job["metadata"]["annotations"]["labkit/hidden"] == "false"


def test_the_namespace_enforces_restricted_pods_and_denies_all_traffic():
    ns, policy = namespace_manifests()
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert policy["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def test_archives_travel_in_secret_sized_parts_and_too_big_is_a_clear_error():
    data = bytes(range(256)) * 5000  # 1.2 MB: two parts
    parts = split_archive(data)
    assert len(parts) == 2 and b"".join(parts) == data and all(len(p) <= PART_BYTES for p in parts)
    secrets = secret_manifests(SHA, parts, {"id": "x"}, owner={"uid": "u-1"})
    for secret in secrets:
        raw = sum(len(base64.b64decode(v)) for v in secret["data"].values())
        assert raw <= 1024 * 1024  # the API server's limit on a Secret's data
        assert secret["metadata"]["ownerReferences"][0]["uid"] == "u-1"  # deleted with its Job
    assert json.loads(base64.b64decode(secrets[0]["data"]["job.json"])) == {"id": "x"}
    with pytest.raises(ValueError, match=r"over the 7\.5 MB .* local backend"):
        split_archive(b"x" * (PART_BYTES * MAX_PARTS + 1))


def test_the_result_comes_back_through_the_log_whatever_surrounds_it():
    record = {"status": "reviewed", "score": 6, "grade": {"checks": [{"output": "x" * 50_000}]}, "notes": ["é"]}
    log = "provisioning...\nwarning: noise\n" + encode_result(record, SHA) + "trailing line\n"
    got, rest = decode_result(log, SHA)
    assert got == record
    assert "provisioning..." in rest and "trailing line" in rest and "labkit-review-result" not in rest
    assert decode_result(log, "cd" * 32)[0] is None  # another submission's result is not taken
    cut = "\n".join(log.splitlines()[:-3])  # the block cut short (the pod died while printing)
    assert decode_result(cut, SHA)[0] is None
    assert decode_result("no result at all\n", SHA) == (None, "no result at all\n")


def test_a_failed_job_gives_its_reason_from_the_job_and_pod_status_and_the_log_tail():
    job = {"status": {"conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded",
                                      "message": "Job was active longer than specified deadline"}]}}
    pod = {"metadata": {"name": "labkit-review-x-abcde", "creationTimestamp": "2026-01-01T00:00:00Z"},
           "status": {"phase": "Failed", "containerStatuses": [{"name": "review", "state": {"terminated": {
               "reason": "OOMKilled", "exitCode": 137}}}]}}
    assert job_outcome(job) == "failed" and job_outcome({"status": {}}) == "running"
    assert job_outcome({"status": {"conditions": [{"type": "Complete", "status": "True"}]}}) == "complete"
    reason = failure_reason(job, [pod], "a\nb\nlast words of the worker\n")
    assert reason.startswith("the review Job failed: DeadlineExceeded: Job was active longer")
    assert "OOMKilled (exit code 137)" in reason and reason.endswith("last words of the worker")
    assert "ended without printing a result" in failure_reason({}, [], "")


def test_a_pod_that_can_never_start_is_spotted():
    pod = {"status": {"containerStatuses": [{"state": {"waiting": {
        "reason": "ErrImageNeverPull", "message": 'image "labkit/review-grader:x" is not present'}}}]}}
    assert "ErrImageNeverPull" in stuck_reason([pod])
    assert stuck_reason([{"status": {"containerStatuses": [{"state": {"waiting": {
        "reason": "ContainerCreating"}}}]}}]) is None


def test_the_pod_entry_joins_the_parts_and_checks_their_sha(tmp_path):
    data = b"0123456789" * 200_000
    import hashlib

    sha = hashlib.sha256(data).hexdigest()
    sub, review = tmp_path / "submission", tmp_path / "review"
    sub.mkdir(), review.mkdir()
    job = ReviewJob(id="a", job_dir="/review", archive="/review/a.tar.gz", archive_sha256=sha, hidden=True,
                    policy={}, confine={}, sandbox={})
    _mount_secrets(secret_manifests(sha, split_archive(data), job.to_dict()), sub)
    job = kube_entry.assemble(sub, review)
    assert job.job_dir == str(review) and Path(job.archive).read_bytes() == data
    (sub / "archive.part-001").write_bytes(b"tampered")
    with pytest.raises(SystemExit, match="do not add up"):
        kube_entry.assemble(sub, review)


def _mount_secrets(secrets, folder: Path) -> None:
    """What the projected volume shows the pod: every key of every Secret as a file."""
    for secret in secrets:
        for key, value in secret["data"].items():
            (folder / key).write_bytes(base64.b64decode(value))


class PodsInProcess:
    """The cluster's stand-in: each 'Job' runs kube_entry (the pod's command) in this process,
    and its log goes through decode_result as a real pod's would. `fail` names submissions
    whose pod dies before printing a result."""

    runs: list[str] = []
    fail: set[str] = set()

    def __init__(self, cluster, *, image, policy, hidden, batch, namespace, parallel, progress):
        self.policy = policy

    def prepare(self):
        pass

    def run(self, items: list[Submission], done):
        for item in items:
            PodsInProcess.runs.append(item.archive.name)
            parts = split_archive((item.job_dir / Path(item.job["archive"]).name).read_bytes())
            pod = item.job_dir.parent.parent / "pods" / f"{item.name}-{uuid.uuid4().hex[:5]}"  # a fresh pod
            (pod / "submission").mkdir(parents=True)
            (pod / "review").mkdir()
            _mount_secrets(secret_manifests(item.sha, parts, item.job), pod / "submission")
            log = io.StringIO()
            with contextlib.redirect_stdout(log):
                if item.archive.name in self.fail:
                    print("Killed")
                else:
                    kube_entry.main(str(pod / "submission"), str(pod / "review"))
            record, rest = decode_result(log.getvalue(), item.sha)
            if record is None:
                failed = {"status": {"conditions": [{"type": "Failed", "status": "True",
                                                     "reason": "BackoffLimitExceeded",
                                                     "message": "Job has reached the specified backoff limit"}]}}
                done(item, {"error": failure_reason(failed, [], log.getvalue()), "log": log.getvalue()})
            else:
                done(item, {"record": record, "log": rest, "kube": {"job": item.name, "created_to_result_s": 1.0}})


@pytest.fixture
def in_process_cluster(monkeypatch):
    monkeypatch.setattr(kube_batch, "JobRunner", PodsInProcess)
    monkeypatch.setattr(kube_batch, "connect", lambda options, ui: (type("C", (), {"info": type(
        "I", (), {"context": "fake"})}), None))
    monkeypatch.setattr(kube_batch, "_image", lambda options, policy, kind, ui: "labkit/review-grader:test")
    monkeypatch.setattr(kube_batch, "_kind_name", lambda options: "labkit-review-test")
    PodsInProcess.runs, PodsInProcess.fail = [], set()
    return PodsInProcess


def adder_submissions(folder: Path, tmp_path: Path) -> dict[str, Path]:
    """honest (the adder solution for seed 9: 6/6), a copy of it under another name, a
    path-traversal archive, and one whose pod will be made to die."""
    ws = tmp_path / "ws"
    lifecycle.start_lab(lab_id="adder", seed=9, workspace=ws, ui=UI())
    (ws / "adder.py").write_text(SUM)
    lifecycle.stop_lab(ui=UI())
    folder.mkdir(parents=True, exist_ok=True)
    honest, _ = build_submission(workspace=ws, out=folder / "honest.tar.gz")
    (folder / "honest-copy.tar.gz").write_bytes(honest.read_bytes())
    _plus(honest, folder / "traversal.tar.gz", "workspace/../../../evil.txt", b"x")
    _plus(honest, folder / "dies.tar.gz", "workspace/NOTES.md", b"hi")  # other bytes, another Job
    return {p.name: p for p in folder.iterdir()}


def _plus(archive: Path, dest: Path, name: str, data: bytes) -> None:
    """A copy of `archive` with one more member."""
    with tarfile.open(archive) as src, tarfile.open(dest, "w:gz") as dst:
        for member in src.getmembers():
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
        extra = tarfile.TarInfo(name)
        extra.size = len(data)
        dst.addfile(extra, io.BytesIO(data))


def test_the_k8s_batch_reviews_reports_resumes_and_turns_a_dead_pod_into_an_error_row(
        labkit_home, tmp_path, in_process_cluster):
    subs = adder_submissions(tmp_path / "subs", tmp_path)
    in_process_cluster.fail = {"dies.tar.gz"}
    policy = SandboxPolicy(command_timeout_s=20, total_timeout_s=300)
    summary = review_submissions(submissions=[tmp_path / "subs"], out=tmp_path / "out", jobs=2, ui=UI(),
                                 policy=policy, backend="k8s")
    by_name = {Path(r.archive).name: r.to_dict() for r in summary.records}
    assert set(by_name) == set(subs)
    assert (by_name["honest.tar.gz"]["status"], by_name["honest.tar.gz"]["percent"]) == ("reviewed", 100)
    assert by_name["honest-copy.tar.gz"]["score"] == 6  # same bytes: one Job, two rows
    assert len(in_process_cluster.runs) == 3 and {"dies.tar.gz", "traversal.tar.gz"} < set(in_process_cluster.runs)
    assert by_name["traversal.tar.gz"]["status"] == "rejected" and "'..'" in by_name["traversal.tar.gz"]["reason"]
    dead = by_name["dies.tar.gz"]
    assert dead["status"] == "error" and not dead["final"]
    assert "BackoffLimitExceeded" in dead["reason"] and dead["reason"].endswith("Killed")
    assert summary.enforcement.mode == "kubernetes" and "NOT isolated" in summary.enforcement.warnings[0]
    honest_dir = tmp_path / "out" / "submissions" / by_name["honest.tar.gz"]["id"]
    for name in ("result.json", "report.md", "report.html", "job.json", "worker.log", "kube.json", "honest.tar.gz"):
        assert (honest_dir / name).is_file(), name
    assert json.loads((honest_dir / "job.json").read_text())["job_dir"] == "/review"  # as the pod sees it
    assert "kubernetes Job" in (honest_dir / "report.md").read_text()
    assert {r["status"] for r in summary.rows} == {"reviewed", "rejected", "error"} and len(summary.rows) == 4

    in_process_cluster.runs, in_process_cluster.fail = [], set()
    again = review_submissions(submissions=[tmp_path / "subs"], out=tmp_path / "out", jobs=2, ui=UI(),
                               policy=policy, backend="k8s")
    assert in_process_cluster.runs == ["dies.tar.gz"]  # only the error row is redone
    assert len(again.skipped) == 3 and again.records[0].status == "reviewed"


def test_an_archive_too_big_for_secrets_is_an_error_row_before_any_cluster_call(
        labkit_home, tmp_path, in_process_cluster, monkeypatch):
    monkeypatch.setattr(kube, "MAX_PARTS", 1)
    monkeypatch.setattr(kube_batch, "connect", lambda options, ui: pytest.fail("no cluster needed"))
    big = tmp_path / "big.tar.gz"
    big.write_bytes(b"\0" * (PART_BYTES + 1))
    summary = review_submissions(submissions=[big], out=tmp_path / "out", ui=UI(), backend="k8s", hidden=False)
    (record,) = summary.records
    assert record.status == "error" and "carries in Secrets" in record.reason
    assert in_process_cluster.runs == []


class FakeApi:
    """Just enough of lightkube's Client for JobRunner: Jobs by name, their pods, logs."""

    def __init__(self):
        self.jobs, self.pods, self.logs, self.created, self.deleted = {}, {}, {}, [], []
        self.calls, self.fail_calls = 0, set()  # reads that fail like a dropped connection

    def get(self, res, name, namespace):
        import httpx
        from lightkube import ApiError

        self.calls += 1
        if self.calls in self.fail_calls:
            raise ConnectionError("connection reset by peer")
        if name not in self.jobs:
            raise ApiError(response=httpx.Response(404, json={"kind": "Status", "code": 404, "message": "not found"}))
        return type("R", (), {"to_dict": lambda _self, d=self.jobs[name]: d})()

    def list(self, res, namespace, labels):
        return [type("R", (), {"to_dict": lambda _self, d=p: d})() for p in self.pods.get(labels["job-name"], [])]

    def log(self, pod, **kwargs):
        return self.logs.get(pod, "").splitlines()

    def create(self, obj):
        self.created.append(obj.metadata.name)
        obj.metadata.uid = "uid-1"
        return obj

    def delete(self, res, name, **kwargs):
        self.deleted.append(name)
        self.jobs.pop(name, None)


def _runner(api, tmp_path, **policy):
    cluster = type("C", (), {"client": api, "apply": lambda self, objs: [o.metadata.name for o in objs]})()
    runner = kube.JobRunner(cluster, image="i", policy=SandboxPolicy(**policy), hidden=True, batch="b", poll_s=0)
    (tmp_path / "a.tar.gz").write_bytes(b"archive")
    item = Submission(tmp_path / "a.tar.gz", tmp_path, SHA, {"archive": "/review/a.tar.gz"})
    return runner, item


def _pod(name, **status):
    return {"metadata": {"name": name, "creationTimestamp": "2026-01-01T00:00:00Z"}, "status": status}


def test_the_runner_collects_a_finished_job_it_finds_and_survives_api_hiccups(tmp_path):
    api = FakeApi()
    name = kube.job_name(SHA)
    api.jobs[name] = {"metadata": {"annotations": {"labkit/submission-sha256": SHA, "labkit/hidden": "true"}},
                      "status": {"conditions": [{"type": "Complete", "status": "True"}]}}
    api.pods[name] = [_pod("p1", phase="Succeeded")]
    api.logs["p1"] = "hello\n" + encode_result({"status": "reviewed", "score": 6}, SHA)
    api.fail_calls = {2}  # read 1: is there a Job already? read 2, the first poll: the connection drops
    runner, item = _runner(api, tmp_path)
    outcomes = []
    runner.run([item], lambda it, outcome: outcomes.append(outcome))
    assert api.created == []  # an interrupted run's Job: collected, not redone
    assert api.calls >= 3  # the dropped read was asked again
    assert outcomes[0]["record"] == {"status": "reviewed", "score": 6} and "hello" in outcomes[0]["log"]
    assert api.deleted == [name]  # collected, then deleted (its pod and Secrets go with it)


def test_the_runner_gives_up_at_once_on_a_pod_that_cannot_start(tmp_path):
    api = FakeApi()
    runner, item = _runner(api, tmp_path)
    name = kube.job_name(SHA)
    real_create = api.create

    def create(obj):  # the Job is created; its pod waits for an image that is not on the node
        real_create(obj)
        if obj.kind == "Job":
            api.jobs[name] = {"metadata": {"annotations": {}}, "status": {}}
            api.pods[name] = [_pod("p1", phase="Pending", containerStatuses=[{"state": {"waiting": {
                "reason": "ErrImageNeverPull", "message": "image i is not present"}}}])]
        return obj

    api.create = create
    outcomes = []
    runner.run([item], lambda it, outcome: outcomes.append(outcome))
    assert api.created == [name]  # the Job; the Secrets go in by apply
    assert outcomes[0]["error"].startswith("the review pod cannot start: ErrImageNeverPull")
