"""A lab on the kind runtime through the CLI, as a candidate runs it: start (cluster,
MLflow on the cluster, image built and loaded, app deployed), grade, solve, grade, stop —
and nothing is left: no cluster, no node container."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labkit.kube.tools import find_tool

pytestmark = pytest.mark.cluster


def labkit(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "labkit.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=os.environ.copy(), stdin=subprocess.DEVNULL)


def kind_clusters() -> list[str]:
    return subprocess.run([find_tool("kind"), "get", "clusters"], capture_output=True, text=True,
                          check=True).stdout.split()


def node_containers(cluster: str) -> list[str]:
    out = subprocess.run(["docker", "ps", "-a", "--filter", f"label=io.x-k8s.kind.cluster={cluster}",
                          "--format", "{{.Names}}"], capture_output=True, text=True, check=True).stdout
    return out.split()


@pytest.fixture
def no_lab_cluster() -> None:
    """These tests prove that start creates the lab cluster and stop deletes it, so none may
    stand before. One left by an earlier run on a CI machine (LABKIT_TEST_CLEAN_CLUSTERS=1,
    set by .ci/run) is deleted; on anybody else's machine it may be a lab in use: skip."""
    if "labkit" not in kind_clusters():
        return
    if os.environ.get("LABKIT_TEST_CLEAN_CLUSTERS") != "1":
        pytest.skip("a kind cluster named labkit exists (a lab of yours?): `labkit stop` or "
                    "`kind delete cluster --name labkit` first, or set LABKIT_TEST_CLEAN_CLUSTERS=1")
    print("deleting a kind cluster labkit left by an earlier run")
    subprocess.run([find_tool("kind"), "delete", "cluster", "--name", "labkit"], check=True,
                   capture_output=True, timeout=300)
    assert "labkit" not in kind_clusters()


@pytest.mark.usefixtures("no_lab_cluster")
def test_kind_lab_starts_grades_and_stops_leaving_nothing(labkit_home: Path, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    timings = {}
    try:
        t0 = time.monotonic()
        started = labkit("start", "kube-echo", "--runtime", "kind", "--seed", "1", "--workspace", str(workspace),
                         "--json")
        timings["start"] = time.monotonic() - t0
        assert started.returncode == 0, started.stderr[-3000:]
        session = json.loads(started.stdout)
        assert session["runtime"] == "kind"
        assert "labkit" in kind_clusters()
        env_file = (workspace / ".labkit" / "env").read_text()
        assert "KUBECONFIG=" in env_file and "MLFLOW_TRACKING_URI=http://127.0.0.1:30500" in env_file

        t0 = time.monotonic()
        starter = labkit("grade", "--format", "json")
        timings["grade starter"] = time.monotonic() - t0
        result = json.loads(starter.stdout)
        statuses = {c["check_id"].split("::")[-1]: c["status"] for c in result["checks"]}
        assert starter.returncode == 1, starter.stderr[-2000:]
        assert statuses == {"test_greets_hello": "fail", "test_mlflow_on_cluster": "pass"}, starter.stdout[-3000:]
        failed = next(c for c in result["checks"] if c["status"] == "fail")
        assert "'helo'" in failed["output"]

        assert labkit("solve").returncode == 0
        t0 = time.monotonic()
        solved = labkit("grade", "--format", "json")
        timings["grade solution"] = time.monotonic() - t0
        assert solved.returncode == 0, solved.stdout[-3000:]
        assert json.loads(solved.stdout)["percent"] == 100

        # A reboot (or a Docker restart) leaves kind's node stopped; start resumes the lab.
        subprocess.run(["docker", "stop", *node_containers("labkit")], check=True, capture_output=True, timeout=120)
        t0 = time.monotonic()
        resumed = labkit("start", "kube-echo", "--json")
        timings["resume after the node stopped"] = time.monotonic() - t0
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert "starting the stopped node(s)" in resumed.stderr, resumed.stderr[-2000:]
        regraded = labkit("grade", "--format", "json")
        assert regraded.returncode == 0, regraded.stdout[-3000:]
        assert json.loads(regraded.stdout)["percent"] == 100
    finally:
        t0 = time.monotonic()
        stopped = labkit("stop")
        timings["stop"] = time.monotonic() - t0
        print("timings (s):", {k: round(v, 1) for k, v in timings.items()})
    assert stopped.returncode == 0, stopped.stderr[-2000:]
    assert "labkit" not in kind_clusters()
    assert node_containers("labkit") == []
    assert workspace.is_dir()  # the candidate's work stays


@pytest.mark.usefixtures("no_lab_cluster")
def test_a_local_lab_runs_on_kind_with_its_services_on_the_cluster(labkit_home: Path, tmp_path: Path) -> None:
    """retraining-trigger on kind: MLflow and Prefect run in the cluster, the candidate's
    worker and API on the host; the self-check's drift episode goes through both."""
    workspace = tmp_path / "ws"
    try:
        started = labkit("start", "retraining-trigger", "--runtime", "kind", "--seed", "3",
                         "--workspace", str(workspace), "--json")
        assert started.returncode == 0, started.stderr[-3000:]
        env_file = (workspace / ".labkit" / "env").read_text()
        assert "MLFLOW_TRACKING_URI=http://127.0.0.1:30500" in env_file
        assert "PREFECT_API_URL=http://127.0.0.1:30420/api" in env_file
        assert labkit("solve").returncode == 0
        solved = labkit("grade", "--format", "json")
        assert solved.returncode == 0, solved.stdout[-3000:]
        assert json.loads(solved.stdout)["percent"] == 100
    finally:
        stopped = labkit("stop")
    assert stopped.returncode == 0, stopped.stderr[-2000:]
    assert "labkit" not in kind_clusters()
