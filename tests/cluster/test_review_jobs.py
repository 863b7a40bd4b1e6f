"""`labkit review --backend k8s` on a real kind cluster, through the CLI as a hiring team
runs it: submissions of the test lab adder reviewed as Jobs in a review image built here
(labkit core on the bare Python base: adder starts no service) and kind-loaded.

A solution scores 100%, a path-traversal archive and a non-archive are rejected with
their reason, a rerun skips what is finished, a Job past its deadline is an error row
with the Job's reason, and the next run redoes it. Its own cluster (never `labkit`),
deleted at the end if this test created it; ~1-2 min with a warm pip cache.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from labkit.kube.cluster import KindCluster
from labkit.kube.tools import find_tool

pytestmark = pytest.mark.cluster
CLUSTER = os.environ.get("LABKIT_REVIEW_TEST_CLUSTER", "labkit-review-test")
BASE = os.environ.get("LABKIT_REVIEW_TEST_BASE", "labkit/python:3.11-slim")
# Small requests so that two reviews fit next to the control plane on a 2-core node.
SANDBOX = """apiVersion: labkit/v1
kind: Sandbox
resources: {cpus: 1, memory: 1g, requests: {cpus: 0.25, memory: 256m}}
timeout: {total: %s}
"""


@pytest.fixture(scope="module")
def review_cluster(tmp_path_factory):
    """A kind cluster with no host port mappings (it must not collide with a lab's cluster)."""
    assert CLUSTER != "labkit", "the review test never uses the lab cluster `labkit`"
    home = tmp_path_factory.mktemp("kind-home")
    config = home / "kind.yaml"
    config.write_text(f"kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nname: {CLUSTER}\n"
                      "nodes:\n  - role: control-plane\n")
    mp = pytest.MonkeyPatch()
    for key, value in {"LABKIT_KIND_CLUSTER": CLUSTER, "LABKIT_KIND_CONFIG": str(config),
                       "LABKIT_HOME": str(home)}.items():
        mp.setenv(key, value)
    kind = KindCluster.default()
    started = time.monotonic()
    created = kind.ensure()
    print(f"cluster {CLUSTER}: {'created' if created else 'reused'} in {time.monotonic() - started:.1f} s")
    mp.undo()
    yield {"LABKIT_KIND_CLUSTER": CLUSTER, "LABKIT_KIND_CONFIG": str(config)}
    if created:
        kind.delete()
        assert CLUSTER not in subprocess.run([find_tool("kind"), "get", "clusters"], capture_output=True,
                                             text=True).stdout.split()


def labkit(*args: str, env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "labkit.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **env}, stdin=subprocess.DEVNULL)


def review(subs: Path, out: Path, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], dict]:
    done = labkit("review", "--backend", "k8s", str(subs), "--out", str(out), "--jobs", "2",
                  "--grader-base", BASE, "--json", env=env)
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    return done, json.loads(done.stdout)


def results(out: Path) -> dict[str, dict]:
    return {Path(r["archive"]).name: r for r in
            (json.loads(p.read_text()) for p in (out / "submissions").glob("*/result.json"))}


def test_reviews_run_as_jobs_report_resume_and_fail_clearly(review_cluster, labkit_home, tmp_path):
    env = {**review_cluster, "LABKIT_HOME": str(labkit_home), "LABKIT_SANDBOX": str(tmp_path / "sandbox.yaml")}
    (tmp_path / "sandbox.yaml").write_text(SANDBOX % "300s")
    subs = tmp_path / "subs"
    for step in (("start", "adder", "--seed", "3", "--workspace", str(tmp_path / "ws")), ("solve",),
                 ("submit", "--out", str(subs / "solution.tar.gz")), ("stop",)):
        assert labkit(*step, env=env).returncode == 0, step
    with tarfile.open(subs / "traversal.tar.gz", "w:gz") as tar:
        evil = tarfile.TarInfo("workspace/../../../evil.txt")
        evil.size = 1
        tar.addfile(evil, io.BytesIO(b"x"))
    (subs / "junk.tar.gz").write_bytes(b"not an archive")

    t0 = time.monotonic()
    first, data = review(subs, tmp_path / "out", env)
    wall = time.monotonic() - t0
    assert first.returncode == 0, first.stderr[-3000:]  # reviewed or rejected: a finished batch
    got = results(tmp_path / "out")
    assert (got["solution.tar.gz"]["status"], got["solution.tar.gz"]["percent"]) == ("reviewed", 100)
    assert got["solution.tar.gz"]["sandbox"]["mode"] == "kubernetes"
    assert got["traversal.tar.gz"]["status"] == "rejected" and "'..'" in got["traversal.tar.gz"]["reason"]
    assert got["junk.tar.gz"]["status"] == "rejected" and "not a tar archive" in got["junk.tar.gz"]["reason"]
    assert data["sandbox"]["mode"] == "kubernetes" and len(data["leaderboard"]) == 3
    timings = {name: r["kube"]["created_to_result_s"] for name, r in got.items()}
    print(f"first batch: {wall:.1f} s wall (image build + load + 3 Jobs); Job created->result (s): {timings}")
    print("\n".join(line for line in first.stderr.splitlines() if "image" in line or line.startswith("built")))

    again, data = review(subs, tmp_path / "out", env)  # resume: everything finished is skipped
    assert again.returncode == 0 and len(data["skipped"]) == 3, again.stderr[-2000:]
    assert "as Jobs" not in again.stderr  # not a single Job created

    (tmp_path / "sandbox.yaml").write_text(SANDBOX % "2s")
    late, _ = review(subs / "solution.tar.gz", tmp_path / "late", env)
    overdue = results(tmp_path / "late")["solution.tar.gz"]
    assert late.returncode == 8 and overdue["status"] == "error" and not overdue["final"]
    assert "DeadlineExceeded" in overdue["reason"], overdue["reason"]
    (tmp_path / "sandbox.yaml").write_text(SANDBOX % "300s")
    redo, _ = review(subs / "solution.tar.gz", tmp_path / "late", env)  # the error row is redone
    assert redo.returncode == 0 and results(tmp_path / "late")["solution.tar.gz"]["percent"] == 100

    kubectl = find_tool("kubectl")
    if kubectl:  # every finished Job is deleted with its pod and its Secrets
        kubeconfig = str(labkit_home / "kind" / f"{CLUSTER}.kubeconfig")
        for _ in range(30):
            left = subprocess.run([kubectl, "--kubeconfig", kubeconfig, "-n", "labkit-review", "get",
                                   "jobs,secrets", "-o", "name"], capture_output=True, text=True).stdout.split()
            if not left:
                break
            time.sleep(1)
        assert left == []
