"""The local runtime against the real MLflow and Prefect servers."""

import json
import socket
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


def test_a_lab_with_both_services_starts_grades_and_stops_clean(labkit_home, tmp_path, capsys):
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

    assert cli.main(["stop"]) == 0
    assert not any(DEFAULT_RUNNER.group_alive(pid) for pid in pids)
