"""The local runtime against the real MLflow and Prefect servers."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from labkit import cli
from labkit.errors import ExitStatus, ServiceError
from labkit.proc import DEFAULT_RUNNER
from labkit.runtimes import local
from labkit.runtimes.base import RuntimeContext

pytestmark = pytest.mark.integration


@pytest.fixture
def ctx(tmp_path):
    notes = []
    return RuntimeContext(state_dir=tmp_path / "state", progress=notes.append), notes


def port_is_free(port):
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_mlflow_serves_a_registry_and_stops_without_a_trace(ctx):
    context, _ = ctx
    runtime = local.LocalRuntime()
    info = runtime.start_service(context, "mlflow")
    try:
        import mlflow

        client = mlflow.MlflowClient(tracking_uri=info.url)
        experiment_id = client.create_experiment("integration")
        assert client.get_experiment(experiment_id).name == "integration"
        assert (context.state_dir / "mlflow" / "mlflow.db").exists()
    finally:
        runtime.stop_service(context, info)
    assert not DEFAULT_RUNNER.group_alive(info.pid)
    assert port_is_free(info.port)


def test_prefect_server_answers_and_stops_without_a_trace(ctx):
    context, _ = ctx
    runtime = local.LocalRuntime()
    info = runtime.start_service(context, "prefect")
    try:
        with urllib.request.urlopen(info.url + "/api/health", timeout=10) as response:
            assert json.loads(response.read()) is True
    finally:
        runtime.stop_service(context, info)
    assert not DEFAULT_RUNNER.group_alive(info.pid)
    assert port_is_free(info.port)


def test_a_taken_port_moves_the_service_and_says_so(ctx, monkeypatch):
    context, notes = ctx
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        monkeypatch.setitem(local.SERVICES, "mlflow", local.SERVICES["mlflow"].__class__(
            **{**local.SERVICES["mlflow"].__dict__, "preferred_port": taken}))
        runtime = local.LocalRuntime()
        info = runtime.start_service(context, "mlflow")
        try:
            assert info.port != taken and runtime.healthy(info)
            assert any(f"port {taken} is in use" in note for note in notes)
        finally:
            runtime.stop_service(context, info)


def test_a_service_that_dies_at_start_is_reported_with_its_log(ctx, monkeypatch):
    context, _ = ctx
    broken = local.ServiceDef("mlflow", "mlflow", 0, "/health", 60.0)
    monkeypatch.setattr(broken.__class__, "argv", lambda self, d, p: [local.sys.executable, "-c", "import sys; print('no such backend'); sys.exit(2)"])
    monkeypatch.setitem(local.SERVICES, "mlflow", broken)
    with pytest.raises(ServiceError) as info:
        local.LocalRuntime().start_service(context, "mlflow")
    assert "exited during start-up" in str(info.value) and "no such backend" in info.value.hint


def test_a_lab_with_both_services_starts_grades_and_stops_clean(labkit_home, tmp_path, capsys, monkeypatch):
    assert cli.main(["start", "platform", "--seed", "1", "--workspace", str(tmp_path / "ws"), "--json"]) == 0
    session = json.loads(capsys.readouterr().out)
    pids = [s["pid"] for s in session["services"].values()]
    assert set(session["services"]) == {"mlflow", "prefect"}
    env = (tmp_path / "ws" / ".labkit" / "env").read_text()
    assert session["services"]["mlflow"]["url"] in env

    assert cli.main(["grade", "--format", "json"]) == ExitStatus.CHECKS_FAILED  # the starter logs no metric
    starter = json.loads(capsys.readouterr().out)
    assert {c["title"]: c["status"] for c in starter["checks"]} == {
        "the candidate's code logs a metric to MLflow": "fail", "the Prefect API answers": "pass"}

    assert cli.main(["solve"]) == 0
    capsys.readouterr()
    assert cli.main(["grade", "--format", "json"]) == ExitStatus.OK
    assert json.loads(capsys.readouterr().out)["percent"] == 100

    _a_review_beside_it_leaves_it_alone(labkit_home, tmp_path, monkeypatch)  # the lab still running

    assert cli.main(["stop"]) == 0
    assert not any(DEFAULT_RUNNER.group_alive(pid) for pid in pids)


def _experiments(url):
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=url)
    return {e.name: len(client.search_runs([e.experiment_id])) for e in client.search_experiments()}


def _a_review_beside_it_leaves_it_alone(labkit_home, tmp_path, monkeypatch):
    """A review never touches a lab it did not start (issue 17 item 16): a submission of this
    very lab, reviewed while it runs, with the reviewer's shell holding its `.labkit/env`,
    gets its own session, data and ports; the running lab's session file, processes and
    MLflow data are as they were. Folded into this test to reuse its running lab."""
    import re

    from labkit.bundles.submit import build_submission
    from labkit.review.batch import review_submissions
    from labkit.review.sandbox import SandboxPolicy
    from labkit.session import load_session
    from labkit.ui import UI

    session = load_session()
    mlflow_url = session.services["mlflow"].url
    before = {"session": (labkit_home / "session.json").read_bytes(), "experiments": _experiments(mlflow_url)}
    archive, _ = build_submission(workspace=tmp_path / "ws", out=tmp_path / "subs" / "candidate.tar.gz")
    for line in (tmp_path / "ws" / ".labkit" / "env").read_text().splitlines():
        if line.startswith("export "):
            key, value = line[len("export "):].split("=", 1)
            monkeypatch.setenv(key, value)  # as `. .labkit/env` in the reviewer's shell
    (record,) = review_submissions(submissions=[archive], out=tmp_path / "out", hidden=False, ui=UI(),
                                   sandbox="subprocess", policy=SandboxPolicy(command_timeout_s=120)).records
    assert (record.status, record.score, record.max_score) == ("reviewed", 2, 2), record.reason
    assert (labkit_home / "session.json").read_bytes() == before["session"]
    for service in session.services.values():
        assert DEFAULT_RUNNER.alive(service.pid) and local.http_ok(service.url + service.health_path), service.name
    assert _experiments(mlflow_url) == before["experiments"]  # the review's runs went to its own MLflow
    job = tmp_path / "out" / "submissions" / record.id
    assert (job / "home" / "state" / "platform-seed1" / "mlflow" / "mlflow.db").is_file()
    assert not (job / "home" / "session.json").exists()  # its services stopped
    moved = {int(p) for p in re.findall(r"takes port (\d+)", (job / "worker.log").read_text())}
    assert len(moved) == 2 and not moved & {s.port for s in session.services.values()}  # MLflow and Prefect


def test_ctrl_c_during_start_leaves_nothing_running(labkit_home, tmp_path):
    """A real SIGINT while the second service (Prefect) is starting: exit 130, MLflow
    (already up) is stopped again, no session and no workspace are left behind."""
    import os
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "labkit.cli", "start", "platform", "--seed", "1", "--workspace", str(tmp_path / "ws")],
        env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    session_file = labkit_home / "session.json"
    deadline = time.monotonic() + 120
    while not (session_file.exists() and "mlflow" in session_file.read_text()):
        assert proc.poll() is None and time.monotonic() < deadline, "mlflow never came up"
        time.sleep(0.2)
    mlflow_pid = json.loads(session_file.read_text())["services"]["mlflow"]["pid"]
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == ExitStatus.INTERRUPTED, err
    assert "Traceback" not in err
    assert not DEFAULT_RUNNER.group_alive(mlflow_pid)
    assert not session_file.exists() and not (tmp_path / "ws").exists()
    leftovers = [line for line in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout.splitlines()
                 if str(labkit_home) in line]
    assert leftovers == []


def test_mlflow_going_down_mid_grade_is_an_error_naming_it_not_the_candidates_fail(labkit_home, tmp_path):
    """`labkit stop` while the candidate's monitor logs to MLflow (issue 17, items 3 and 5):
    before, the monitor's crash or timeout was the candidate's fail, with MLflow unnamed."""
    workspace = tmp_path / "ws"
    assert cli.main(["start", "mlflow-outage", "--seed", "1", "--workspace", str(workspace)]) == 0
    assert cli.main(["solve"]) == 0
    grade = subprocess.Popen([sys.executable, "-m", "labkit.cli", "grade", "--format", "json"], cwd=workspace,
                             env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while not (workspace / "started").exists() and grade.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert (workspace / "started").exists(), "the monitor never started"
        assert cli.main(["stop"]) == 0
        out, err = grade.communicate(timeout=300)
    finally:
        if grade.poll() is None:
            grade.kill()
    assert grade.returncode == ExitStatus.GRADE_INCOMPLETE, err
    data = json.loads(out)
    checks = {c["check_id"].split("::")[1]: c for c in data["checks"]}
    assert {name: c["status"] for name, c in checks.items()} == {
        "test_monitor_finishes": "error", "test_run_recorded": "error"}, data
    for check in checks.values():
        assert "mlflow at http://127.0.0.1:" in check["output"], check
    assert checks["test_monitor_finishes"]["duration_s"] < 60, "MLflow's outage was found only at a timeout"
