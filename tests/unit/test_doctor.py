"""doctor with a fake process runner: what it says when tools are missing or broken."""

import shutil

from labkit import doctor
from labkit.proc import Completed


class FakeRunner:
    def __init__(self, results):
        self.results = results

    def run(self, argv, *, timeout, check=True, **_):
        code, out = self.results[argv[0].rsplit("/", 1)[-1]]
        return Completed(list(argv), code, out, "", 0.01)


def only(*names):
    return lambda name: f"/usr/bin/{name}" if name in names else None


def test_docker_installed_but_daemon_down_is_a_warning_with_the_fix(monkeypatch):
    monkeypatch.setattr(shutil, "which", only("docker"))
    monkeypatch.setattr(doctor, "find_tool", only("docker"))
    runner = FakeRunner({"docker": (1, "Cannot connect to the Docker daemon")})
    found = doctor.diagnose(runner=runner)
    findings = {f.name: f for f in found}
    assert findings["docker"].level == "warn" and "dockerd" in findings["docker"].fix
    assert "Cannot connect" in findings["docker"].detail
    assert findings["kind"].level == "warn" and "go install sigs.k8s.io/kind@v0.33.0" in findings["kind"].fix
    assert "kind node image" not in findings  # nothing to ask a Docker that does not answer
    assert not doctor.kind_ready(found)


def test_kind_runtime_ready_with_docker_and_kind_found_off_path(monkeypatch):
    monkeypatch.setattr(shutil, "which", only("docker"))
    monkeypatch.setattr(doctor, "find_tool", lambda name: f"/cache/bin/{name}" if name != "kubectl" else None)
    runner = FakeRunner({"docker": (0, "20.10.24"), "kind": (0, "kind v0.33.0"), "image": (1, ""),
                         "act": (0, "act version 0.2.89")})
    runner.results["docker"] = (0, "20.10.24")
    found = doctor.diagnose(runner=runner)
    findings = {f.name: f for f in found}
    assert findings["kind"].level == "ok" and "/cache/bin/kind" in findings["kind"].detail
    assert findings["kubectl"].level == "warn" and "offline prepare" in findings["kubectl"].fix
    assert doctor.kind_ready(found)


def test_missing_ml_stack_fails_the_local_runtime(monkeypatch):
    real = doctor.importlib.util.find_spec
    monkeypatch.setattr(doctor.importlib.util, "find_spec", lambda name: None if name == "evidently" else real(name))
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(doctor, "find_tool", lambda name: None)
    findings = doctor.diagnose(runner=FakeRunner({}))
    evidently = next(f for f in findings if f.name == "evidently")
    assert evidently.level == "fail" and "labkit-mlops[local]" in evidently.fix
    assert not doctor.local_ready(findings)


def test_act_missing_or_of_another_version_is_a_warning_with_the_install_command(monkeypatch):
    """training-cicd grades on the pinned act: doctor names the step that installs it."""
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(doctor, "find_tool", lambda name: None)
    act = {f.name: f for f in doctor.diagnose(runner=FakeRunner({}))}["act"]
    assert act.level == "warn" and "infra/offline/17-act.sh" in act.fix and "nektos/act@v0.2.89" in act.fix

    monkeypatch.setattr(doctor, "find_tool", lambda name: "/cache/bin/act" if name == "act" else None)
    old = {f.name: f for f in doctor.diagnose(runner=FakeRunner({"act": (0, "act version 0.2.80")}))}["act"]
    assert old.level == "warn" and "v0.2.89" in old.detail
    pinned = {f.name: f for f in doctor.diagnose(runner=FakeRunner({"act": (0, "act version 0.2.89")}))}["act"]
    assert pinned.level == "ok" and "/cache/bin/act" in pinned.detail
