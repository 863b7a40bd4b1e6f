"""start/stop/reset/solve on the service-less test lab, and on fake services for the
failure paths (a runtime that fails or is interrupted half-way)."""

import json

import pytest

from labkit import lifecycle
from labkit.catalog import load_lab
from labkit.errors import LabkitError, StateConflict, WorkspaceConflict
from labkit.runtimes.base import Runtime
from labkit.session import ServiceInfo, load_session
from labkit.ui import UI


@pytest.fixture
def ui():
    return UI()


def test_start_renders_seeded_data_and_a_second_start_reuses_the_lab(labkit_home, tmp_path, ui):
    first = lifecycle.start_lab(lab_id="adder", seed=11, workspace=tmp_path / "ws", ui=ui)
    numbers = (tmp_path / "ws" / "data" / "numbers.txt").read_text()
    assert first.workspace_action == "new" and not first.already_running
    again = lifecycle.start_lab(lab_id="adder", ui=ui)
    assert again.already_running and again.session.seed == 11
    assert (tmp_path / "ws" / "data" / "numbers.txt").read_text() == numbers
    with pytest.raises(StateConflict, match="seed 11, not 12"):
        lifecycle.start_lab(lab_id="adder", seed=12, ui=ui)


def test_stop_keeps_the_work_and_start_resumes_it(labkit_home, tmp_path, ui):
    lifecycle.start_lab(lab_id="adder", seed=3, workspace=tmp_path / "ws", ui=ui)
    (tmp_path / "ws" / "adder.py").write_text("print('my fix')\n")
    assert lifecycle.stop_lab(ui=ui) is not None
    assert lifecycle.stop_lab(ui=ui) is None  # nothing running: a no-op
    outcome = lifecycle.start_lab(lab_id="adder", workspace=tmp_path / "ws", ui=ui)
    assert outcome.workspace_action == "reuse" and outcome.session.seed == 3  # seed read from the workspace
    assert (tmp_path / "ws" / "adder.py").read_text() == "print('my fix')\n"


def test_a_start_killed_mid_render_does_not_block_the_next_one(labkit_home, tmp_path, ui):
    """kill -9 while start rendered into an empty folder (a mount point, say) leaves its
    staging copy behind; the folder holds nothing of the candidate's, so it is still new."""
    leftover = tmp_path / "ws" / f"{lifecycle.STAGING_PREFIX}k9x2"
    (leftover / "data").mkdir(parents=True)
    (leftover / "data" / "numbers.txt").write_text("half-rendered\n")
    outcome = lifecycle.start_lab(lab_id="adder", seed=11, workspace=tmp_path / "ws", ui=ui)
    assert outcome.workspace_action == "new" and not outcome.backup_path
    assert not leftover.exists() and (tmp_path / "ws" / "data" / "numbers.txt").read_text() != "half-rendered\n"


def test_a_folder_with_the_candidates_files_beside_a_leftover_is_not_taken(labkit_home, tmp_path, ui):
    (tmp_path / "ws" / f"{lifecycle.STAGING_PREFIX}k9x2").mkdir(parents=True)
    (tmp_path / "ws" / "notes.md").write_text("mine\n")
    with pytest.raises(WorkspaceConflict, match="labkit did not create"):
        lifecycle.start_lab(lab_id="adder", seed=11, workspace=tmp_path / "ws", ui=ui)
    assert (tmp_path / "ws" / "notes.md").read_text() == "mine\n"


def test_force_start_backs_up_before_rendering_afresh(labkit_home, tmp_path, ui):
    lifecycle.start_lab(lab_id="adder", seed=3, workspace=tmp_path / "ws", ui=ui)
    (tmp_path / "ws" / "adder.py").write_text("print('my fix')\n")
    outcome = lifecycle.start_lab(lab_id="adder", seed=5, workspace=tmp_path / "ws", force=True, ui=ui)
    assert outcome.backup_path
    assert (tmp_path / outcome.backup_path / "adder.py").read_text() == "print('my fix')\n"
    assert "my fix" not in (tmp_path / "ws" / "adder.py").read_text()


def test_reset_refuses_to_drop_changes_without_force(labkit_home, tmp_path, ui):
    session = lifecycle.start_lab(lab_id="adder", seed=3, workspace=tmp_path / "ws", ui=ui).session
    (tmp_path / "ws" / "adder.py").write_text("print('my fix')\n")
    with pytest.raises(WorkspaceConflict, match="modified adder.py"):
        lifecycle.reset_lab(ui=ui)
    assert load_session() is not None  # nothing was stopped either
    outcome = lifecycle.reset_lab(force=True, ui=ui)
    assert "my fix" in (tmp_path / outcome.backup_path / "adder.py").read_text()
    assert not session.state_path.exists() and load_session() is None


def test_solve_refuses_to_overwrite_changes_without_force(labkit_home, tmp_path, ui):
    lifecycle.start_lab(lab_id="adder", seed=3, workspace=tmp_path / "ws", ui=ui)
    (tmp_path / "ws" / "adder.py").write_text("print('mine')\n")
    with pytest.raises(WorkspaceConflict, match="adder.py"):
        lifecycle.solve_lab()
    outcome = lifecycle.solve_lab(force=True)
    assert "mine" in (tmp_path / outcome.backup_path / "adder.py").read_text()
    assert "+" in (tmp_path / "ws" / "adder.py").read_text()


class FakeRuntime(Runtime):
    """Services that 'start' instantly; one of them can be made to fail."""

    name = "local"

    def __init__(self, fail_on: str = "", error: BaseException | None = None):
        self.fail_on, self.error = fail_on, error
        self.running: list[str] = []

    def unavailable_reason(self):
        return None

    def start_service(self, ctx, service):
        if service == self.fail_on:
            raise self.error
        self.running.append(service)
        return ServiceInfo(service, f"http://127.0.0.1:1/{service}", 1, 99999, "", "/health")

    def stop_service(self, ctx, info):
        if info.name in self.running:
            self.running.remove(info.name)

    def healthy(self, info):
        return info.name in self.running


@pytest.fixture
def two_service_lab(labkit_home, monkeypatch):
    lab = load_lab("adder")
    lab = type(lab)(lab.spec.model_copy(update={"services": ["mlflow", "prefect"], "provision": None}), lab.path)
    monkeypatch.setattr(lifecycle, "load_lab", lambda _id: lab)
    return lab


@pytest.mark.parametrize("error", [KeyboardInterrupt(), LabkitError("prefect did not start")])
def test_an_interrupted_or_failed_start_leaves_nothing_running(two_service_lab, monkeypatch, tmp_path, ui, error):
    runtime = FakeRuntime(fail_on="prefect", error=error)
    monkeypatch.setattr(lifecycle, "choose_runtime", lambda *_: runtime)
    with pytest.raises(type(error)):
        lifecycle.start_lab(lab_id="adder", seed=1, workspace=tmp_path / "ws", ui=ui)
    assert runtime.running == []  # mlflow, started first, was stopped again
    assert load_session() is None
    assert not (tmp_path / "ws").exists()
    assert not [p for p in tmp_path.iterdir() if ".staging-" in p.name]


def test_a_dead_service_is_restarted_by_a_second_start(two_service_lab, monkeypatch, tmp_path, ui):
    runtime = FakeRuntime()
    monkeypatch.setattr(lifecycle, "choose_runtime", lambda *_: runtime)
    monkeypatch.setattr(lifecycle, "get_runtime", lambda _name: runtime)
    lifecycle.start_lab(lab_id="adder", seed=1, workspace=tmp_path / "ws", ui=ui)
    runtime.running.remove("mlflow")  # it died
    outcome = lifecycle.start_lab(lab_id="adder", ui=ui)
    assert outcome.already_running and outcome.restarted == ["mlflow"]
    env = (tmp_path / "ws" / ".labkit" / "env").read_text()
    assert "MLFLOW_TRACKING_URI=http://127.0.0.1:1/mlflow" in env and "PREFECT_API_URL=" in env


def test_a_service_that_comes_back_by_itself_is_waited_for_not_replaced(two_service_lab, monkeypatch, tmp_path, ui):
    """After a reboot kind's pods restart on their own, data and all; a restart would start
    the service empty (the candidate's MLflow runs, the lab's registered champion)."""

    class SlowToReturn(FakeRuntime):
        waited: list[str] = []

        def comes_back(self, ctx, info):
            self.waited.append(info.name)
            self.running.append(info.name)
            return True

    runtime = SlowToReturn()
    monkeypatch.setattr(lifecycle, "choose_runtime", lambda *_: runtime)
    monkeypatch.setattr(lifecycle, "get_runtime", lambda _name: runtime)
    lifecycle.start_lab(lab_id="adder", seed=1, workspace=tmp_path / "ws", ui=ui)
    runtime.running.remove("mlflow")  # not answering yet: its pod is restarting
    started = list(runtime.running)
    outcome = lifecycle.start_lab(lab_id="adder", ui=ui)
    assert outcome.already_running and outcome.restarted == []
    assert runtime.waited == ["mlflow"] and set(runtime.running) == {*started, "mlflow"}


def test_a_failing_provision_hook_is_reported_and_cleaned_up(labs_copy, tmp_path, ui):
    (labs_copy / "adder" / "support" / "provision.py").write_text("def provision(ctx):\n    raise RuntimeError('boom')\n")
    with pytest.raises(LabkitError, match="provisioning adder failed") as info:
        lifecycle.start_lab(lab_id="adder", seed=1, workspace=tmp_path / "ws", ui=ui)
    assert "boom" in info.value.hint
    assert load_session() is None and not (tmp_path / "ws").exists()


def test_the_session_file_is_json_a_human_can_read(labkit_home, tmp_path, ui):
    lifecycle.start_lab(lab_id="adder", seed=2, workspace=tmp_path / "ws", ui=ui)
    data = json.loads((labkit_home / "session.json").read_text())
    assert data["lab_id"] == "adder" and data["seed"] == 2 and data["workspace"] == str(tmp_path / "ws")


class FakeClusterRuntime(FakeRuntime):
    """A runtime with something underneath its services (the kind cluster)."""

    name = "kind"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.clusters: list[str] = []
        self.downs = 0

    def up(self, ctx):
        if not self.clusters:
            self.clusters.append("labkit")
        ctx.info["cluster"] = {"name": "labkit", "kubeconfig": "/tmp/kc", "context": "kind-labkit", "owned": True}
        return ctx.info

    def down(self, ctx):
        self.downs += 1
        self.clusters.clear()

    def env(self, info):
        return {"KUBECONFIG": info["cluster"]["kubeconfig"]}


def test_a_cluster_runtime_is_brought_up_recorded_and_torn_down_on_stop(two_service_lab, monkeypatch, tmp_path, ui):
    runtime = FakeClusterRuntime()
    monkeypatch.setattr(lifecycle, "choose_runtime", lambda *_: runtime)
    monkeypatch.setattr(lifecycle, "get_runtime", lambda _name: runtime)
    session = lifecycle.start_lab(lab_id="adder", seed=1, workspace=tmp_path / "ws", ui=ui).session
    assert runtime.clusters == ["labkit"] and session.runtime_info["cluster"]["name"] == "labkit"
    assert load_session().runtime_info == session.runtime_info  # a later command finds the cluster
    assert "KUBECONFIG=/tmp/kc" in (tmp_path / "ws" / ".labkit" / "env").read_text()
    assert session.runtime_context()["cluster"]["context"] == "kind-labkit"
    lifecycle.stop_lab(ui=ui)
    assert runtime.clusters == [] and runtime.running == [] and runtime.downs == 1


def test_a_failed_start_tears_the_cluster_down_too(two_service_lab, monkeypatch, tmp_path, ui):
    runtime = FakeClusterRuntime(fail_on="prefect", error=LabkitError("prefect did not start"))
    monkeypatch.setattr(lifecycle, "choose_runtime", lambda *_: runtime)
    with pytest.raises(LabkitError):
        lifecycle.start_lab(lab_id="adder", seed=1, workspace=tmp_path / "ws", ui=ui)
    assert runtime.clusters == [] and runtime.running == [] and load_session() is None


def test_the_workspace_env_puts_the_kind_and_kubectl_labkit_uses_first_on_path(labkit_home, tmp_path, monkeypatch):
    """kind in labkit's offline cache, not on PATH: a candidate's deploy.sh (which sources
    .labkit/env) must run that kind, not fail with `kind: command not found`."""
    import os
    import subprocess

    from labkit.kube.tools import offline_versions
    from labkit.session import Session

    cache = tmp_path / "cache"
    tools = {"kind": cache / "bin" / "kind",
             "kubectl": cache / "k8s" / offline_versions()["K8S_VERSION"] / "bin" / "kubectl"}
    user_bin = tmp_path / "user-bin"  # the user's own docker, already on PATH: its folder is not added
    tools_on_path = {"docker": user_bin / "docker"}
    for path in [*tools.values(), *tools_on_path.values()]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
    monkeypatch.setenv("LABKIT_CACHE", str(cache))
    monkeypatch.setenv("HOME", str(tmp_path / "nohome"))  # no ~/go/bin kind
    monkeypatch.setenv("PATH", str(user_bin))  # this machine may have a kubectl in /usr/bin
    ws = tmp_path / "ws"
    session = Session(lab_id="kube-echo", seed=1, runtime="kind", workspace=str(ws), state_dir=str(tmp_path / "st"),
                      started_at="", runtime_info={"cluster": {"name": "labkit", "kubeconfig": "/k/kc",
                                                               "context": "kind-labkit", "owned": True}})
    lifecycle.write_service_env(ws, session)
    text = (ws / ".labkit" / "env").read_text()
    assert str(user_bin) not in text
    shell = subprocess.run(["/bin/bash", "-c", ". .labkit/env && command -v kind kubectl docker && echo $KUBECONFIG"],
                           cwd=ws, capture_output=True, text=True, env={**os.environ, "PATH": str(user_bin)})
    assert shell.returncode == 0, shell.stderr
    assert shell.stdout.split() == [str(tools["kind"]), str(tools["kubectl"]), str(tools_on_path["docker"]), "/k/kc"]
