"""Ctrl-C during `labkit grade`: the candidate's processes end, the partial grade is written, exit 130."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from labkit.errors import ExitStatus
from tests.conftest import processes_with

HANGING_CHECK = '''
import pytest


@pytest.mark.check(points=1, title="hangs")
def test_zz_hangs(run_in_workspace):
    # A detached child (setsid: a process-group kill misses it), then a hang.
    code = ("import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)', "
            "sys.argv[1]], start_new_session=True); time.sleep(600)")
    run_in_workspace(["python", "-c", code, "{token}"], timeout=600)
'''




def test_ctrl_c_stops_the_candidate_and_writes_the_partial_grade(run, labs_copy, tmp_path, labkit_home):
    token = f"labkit-test-{uuid.uuid4()}"
    (labs_copy / "adder" / "checks" / "visible" / "test_zz_hang.py").write_text(HANGING_CHECK.replace("{token}", token))
    workspace = tmp_path / "ws"
    assert run("start", "adder", "--seed", "5", "--workspace", str(workspace))[0] == ExitStatus.OK
    run("solve")
    report = tmp_path / "report.json"
    grade = subprocess.Popen([sys.executable, "-m", "labkit.cli", "grade", "--format", "json", "--out", str(report)],
                             cwd=workspace, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        deadline = time.monotonic() + 180
        while len(processes_with(token)) < 2 and grade.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(processes_with(token)) >= 2, "the hanging check never started"
        grade.send_signal(signal.SIGINT)
        _, err = grade.communicate(timeout=120)
    finally:
        if grade.poll() is None:
            grade.kill()
        left = processes_with(token)
        for pid in left:
            os.kill(pid, signal.SIGKILL)
    assert grade.returncode == ExitStatus.INTERRUPTED, err
    assert not left, "the candidate's processes outlived Ctrl-C"
    assert "Traceback" not in err and "partial grade" in err
    records = list((labkit_home / "state" / "adder-seed5" / "grades").glob("*-visible/grade.json"))
    assert len(records) == 1, "no grade.json was written"
    data = json.loads(records[0].read_text())
    assert data["interrupted"] and not data["complete"]
    statuses = {c["check_id"].split("::")[1]: (c["status"], c["output"]) for c in data["checks"]}
    assert statuses["test_small_sum"][0] == "pass" and statuses["test_zero"][0] == "pass"
    assert statuses["test_zz_hangs"] == ("error", "did not run: interrupted")
    assert json.loads(report.read_text())["interrupted"]  # --out gets the partial report too
