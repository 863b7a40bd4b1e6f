"""doctor with a fake process runner: what it says when tools are missing or broken."""

import shutil

from labkit import doctor
from labkit.proc import Completed


class FakeRunner:
    def __init__(self, results):
        self.results = results

    def run(self, argv, *, timeout, check=True, **_):
        code, out = self.results[argv[0]]
        return Completed(list(argv), code, out, "", 0.01)


def test_docker_installed_but_daemon_down_is_a_warning_with_the_fix(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}" if name == "docker" else None)
    runner = FakeRunner({"docker": (1, "Cannot connect to the Docker daemon")})
    findings = {f.name: f for f in doctor.diagnose(runner=runner)}
    assert findings["docker"].level == "warn" and "daemon" in findings["docker"].fix
    assert "Cannot connect" in findings["docker"].detail
    assert findings["kind"].level == "warn" and "go install sigs.k8s.io/kind" in findings["kind"].fix


def test_missing_ml_stack_fails_the_local_runtime(monkeypatch):
    real = doctor.importlib.util.find_spec
    monkeypatch.setattr(doctor.importlib.util, "find_spec", lambda name: None if name == "evidently" else real(name))
    monkeypatch.setattr(shutil, "which", lambda name: None)
    findings = doctor.diagnose(runner=FakeRunner({}))
    evidently = next(f for f in findings if f.name == "evidently")
    assert evidently.level == "fail" and "labkit[local]" in evidently.fix
    assert not doctor.local_ready(findings)
