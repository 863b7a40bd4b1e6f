"""Whose fault is it: a candidate's hang is their fail; a service outage is never.

Each test grades a copy of the adder fixture lab with one extra hidden check, through
the real runner, plugin and process runner, against a stand-in service (a tiny HTTP
server in this process whose /health the test can break) in place of MLflow.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from labkit.grading.health import HealthWatch
from labkit.grading.results import Status
from labkit.grading.runner import run_checks
from labkit.proc import can_contain
from tests.conftest import adder_with_checks, processes_with



class FakeService:
    """Answers GET /health with 200 until broken; /break?s=N makes it answer 503 for N s;
    stop() closes the port (connection refused, as after `labkit stop`)."""

    def __init__(self) -> None:
        service = self
        self.broken_until = 0.0

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                if self.path.startswith("/break"):
                    service.broken_until = time.monotonic() + float(self.path.split("s=")[1])
                    code = 200
                else:
                    code = 503 if time.monotonic() < service.broken_until else 200
                self.send_response(code)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def service():
    fake = FakeService()
    yield fake
    try:
        fake.stop()
    except OSError:
        pass




def grade(tmp_path: Path, checks: str, *, services: dict[str, str], timeout_s: float = 120):
    """Grade the extra hidden checks (and only them); returns (result, {name: check}, token).

    The checks find a unique token in state_dir/token to put on candidate command lines,
    so that the test can tell whether any of their processes outlived the grade."""
    lab, workspace, state = adder_with_checks(tmp_path, "test_extra.py", checks)
    token = f"labkit-test-{uuid.uuid4()}"
    (state / "token").write_text(token)
    names = tuple(line.split("(")[0].removeprefix("def ") for line in checks.splitlines()
                  if line.startswith("def test_"))
    try:
        result = run_checks(lab, workspace=workspace, seed=1, state_dir=state, services=services, hidden=True,
                            grade_dir=tmp_path / "grade", timeout_s=timeout_s, select=names)
    finally:
        left = processes_with(token)
        for pid in left:
            os.kill(pid, signal.SIGKILL)
    assert not left, "candidate processes outlived the grade"
    return result, {c.check_id.split("::")[-1]: c for c in result.checks}, token


HEADER = '''
import os, sys, time, urllib.request
import pytest
from labkit.grading import expect

def token(state_dir):
    return (state_dir / "token").read_text()

HANG = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)', " \\
       "sys.argv[1]], start_new_session=True); print('started', flush=True); time.sleep(600)"
'''


def test_a_hang_is_the_candidates_fail_at_the_run_timeout_not_a_grade_timeout(tmp_path, service):
    # Two hung runs of 11 s each are 22 s of candidate time in a grade whose own timeout is
    # 20 s: before, the grade timed out and every check became an infrastructure error.
    # (20 s leaves room for the grader's start-up, ~8 s on a loaded machine.)
    checks = HEADER + '''
@pytest.mark.check(points=1)
def test_hangs(run_in_workspace, state_dir):
    runs = [run_in_workspace(["python", "-c", HANG, token(state_dir)], timeout=11) for _ in range(2)]
    expect(not any(run.timed_out for run in runs), "the monitor did not finish within 11 s")

@pytest.mark.check(points=1)
def test_after(run_in_workspace):
    assert run_in_workspace(["python", "adder.py", "2", "3"], timeout=60).stdout.strip() == "5"
'''
    result, checks, _ = grade(tmp_path, checks, services={"mlflow": service.url}, timeout_s=20)
    assert checks["test_hangs"].status is Status.FAIL, result.to_dict()
    assert "did not finish within 11 s" in checks["test_hangs"].output
    assert checks["test_after"].status is Status.PASS, result.to_dict()
    assert result.complete and not result.engine_error


def test_a_service_going_down_during_a_candidate_run_is_an_error_naming_it(tmp_path, service):
    # The candidate's command hangs on the service; it goes down: error within seconds,
    # naming it — not the candidate's timeout 60 s later.
    checks = HEADER + '''
@pytest.mark.check(points=1)
def test_during(run_in_workspace, state_dir):
    run = run_in_workspace(["python", "-c", HANG, token(state_dir)], timeout=60)
    expect(not run.timed_out, "the monitor did not finish within 60 s")

@pytest.mark.check(points=1)
def test_later(run_in_workspace):
    assert run_in_workspace(["python", "adder.py", "2", "3"], timeout=60).ok
'''

    def break_it_once_running() -> None:
        deadline = time.monotonic() + 120
        while not list((tmp_path / "grade").glob("results.jsonl")) or '"state": "start"' not in (
                tmp_path / "grade" / "results.jsonl").read_text():
            if time.monotonic() > deadline:
                return
            time.sleep(0.1)
        service.stop()

    breaker = threading.Thread(target=break_it_once_running, daemon=True)
    breaker.start()
    result, checks, _ = grade(tmp_path, checks, services={"mlflow": service.url})
    during, later = checks["test_during"], checks["test_later"]
    assert during.status is Status.ERROR, result.to_dict()
    assert f"mlflow at {service.url}" in during.output and "has not answered since" in during.output
    assert during.duration_s < 60, "the outage was found only at the run's timeout"
    assert later.status is Status.ERROR and f"mlflow at {service.url}" in later.output
    assert not result.complete


def test_a_service_down_before_the_grade_errors_the_checks_at_once(tmp_path, service):
    # The candidate's code retries the dead service for 30 s, then gives up (exit 1).
    service.stop()
    checks = HEADER + '''
RETRY = "import time, urllib.request, sys\\nfor _ in range(60):\\n    try:\\n        urllib.request.urlopen(" \\
        "sys.argv[1] + '/health', timeout=1); sys.exit(0)\\n    except OSError:\\n        time.sleep(0.5)\\nsys.exit(1)"

@pytest.mark.check(points=1)
def test_logs_to_mlflow(run_in_workspace, services):
    run = run_in_workspace(["python", "-c", RETRY, services["mlflow"]], timeout=120)
    expect(run.ok, f"the monitor crashed (exit {run.returncode})")
'''
    result, checks, _ = grade(tmp_path, checks, services={"mlflow": service.url})
    check = checks["test_logs_to_mlflow"]
    assert check.status is Status.ERROR, result.to_dict()
    assert f"mlflow at {service.url} has not answered since" in check.output
    assert check.duration_s < 30, "the dead service was not found before the check ran"


def test_a_failure_after_a_short_outage_is_an_error_not_the_candidates(tmp_path, service):
    # The service misses its health checks for 4 s and comes back; a check failing
    # afterwards is not counted against the candidate (its data may date from the outage).
    checks = HEADER + '''
@pytest.mark.check(points=1)
def test_blip(services):
    urllib.request.urlopen(services["mlflow"] + "/break?s=4", timeout=10)
    time.sleep(7)

@pytest.mark.check(points=1)
def test_fails_later(run_in_workspace):
    run = run_in_workspace(["python", "adder.py", "2", "3"], timeout=60)
    expect(run.stdout.strip() == "6", "2 + 3 should be 6 here")
'''
    result, checks, _ = grade(tmp_path, checks, services={"mlflow": service.url})
    assert checks["test_blip"].status is Status.PASS, result.to_dict()
    later = checks["test_fails_later"]
    assert later.status is Status.ERROR, result.to_dict()
    assert "2 + 3 should be 6 here" in later.output
    assert f"mlflow at {service.url} did not answer from" in later.output


def test_a_grader_stuck_while_a_service_is_down_is_stopped_and_names_it(tmp_path, service):
    # Grader code (not a candidate command) blocked on a dead service: the parent stops
    # the grade after ABORT_AFTER_S of outage instead of waiting out the grade's timeout.
    checks = HEADER + '''
@pytest.mark.check(points=1)
def test_stuck(services):
    urllib.request.urlopen(services["mlflow"] + "/break?s=100000", timeout=10)
    time.sleep(600)
'''
    result, checks, _ = grade(tmp_path, checks, services={"mlflow": service.url}, timeout_s=300)
    stuck = checks["test_stuck"]
    assert stuck.status is Status.ERROR
    assert f"mlflow at {service.url} has not answered since" in stuck.output
    assert f"mlflow at {service.url}" in result.engine_error and "the grade was stopped" in result.engine_error


@pytest.mark.skipif(not can_contain(), reason="no pid namespaces here")
def test_a_candidate_that_exits_leaving_a_detached_grandchild_leaves_nothing(tmp_path):
    checks = HEADER + '''
LEAVE = "import subprocess, sys; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)', " \\
        "sys.argv[1]], start_new_session=True); print('bye')"

@pytest.mark.check(points=1)
def test_leaves(run_in_workspace, state_dir):
    run = run_in_workspace(["python", "-c", LEAVE, token(state_dir)], timeout=60)
    expect(run.ok and run.stdout.strip() == "bye", f"unexpected: {run}")
'''
    result, checks, _ = grade(tmp_path, checks, services={})  # grade() asserts nothing was left
    assert checks["test_leaves"].status is Status.PASS, result.to_dict()


# ---- the watcher on its own -----------------------------------------------------------------


def test_one_missed_probe_is_not_an_outage_two_are():
    answers = iter([True, False, True, False, False, True])
    watch = HealthWatch({"mlflow": ("http://m", "http://m/health")}, probe=lambda url, timeout: next(answers),
                        interval_s=0)
    for _ in range(3):
        watch._probe_once("mlflow")
    assert watch.outages() == []
    watch._probe_once("mlflow")
    watch._probe_once("mlflow")
    assert [o.service for o in watch.down()] == ["mlflow"]
    assert "mlflow at http://m has not answered since" in watch.reason_down()
    watch._probe_once("mlflow")
    assert watch.down() == [] and watch.outages()[0].ended is not None
    assert "did not answer from" in watch.outages()[0].describe()
