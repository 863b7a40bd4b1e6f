"""The fixtures labkit hands to checks for long-lived candidate processes."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from labkit.grading.results import Status
from labkit.grading.runner import run_checks
from tests.conftest import adder_with_checks, processes_with


BACKGROUND_CHECK = '''
import time

import pytest


@pytest.mark.check(points=1, title="background")
def test_background(start_in_workspace, state_dir):
    token = (state_dir / "token").read_text()
    handle = start_in_workspace(["python", "-c", "import os, time; print('up', flush=True); time.sleep(600)", token],
                                name="sleeper")
    deadline = time.monotonic() + 20
    while "up" not in handle.output() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert handle.alive() and "up" in handle.output()
'''




def test_background_processes_run_during_the_grade_and_are_stopped_after_it(tmp_path):
    lab, workspace, state = adder_with_checks(tmp_path, "test_background.py", BACKGROUND_CHECK)
    token = f"labkit-test-{uuid.uuid4()}"
    (state / "token").write_text(token)
    result = run_checks(lab, workspace=workspace, seed=1, state_dir=state, services={}, hidden=True,
                        grade_dir=tmp_path / "grade", select=("test_background",))
    statuses = {check.check_id.split("::")[-1]: check.status for check in result.checks}
    assert statuses == {"test_background": Status.PASS}, result.to_dict()
    left = processes_with(token)
    for pid in left:  # cleanup after a failure
        os.kill(pid, 9)
    assert not left, "the grade left the candidate's background process running"


EVIDENCE_CHECK = '''
import pytest


@pytest.mark.check(points=1, title="seen on a pass")
def test_seen_pass(evidence):
    evidence("alerted on batch 3,   flagged tenure_months")


@pytest.mark.check(points=1, title="seen on a fail", feedback="the author's hint")
def test_seen_fail(evidence):
    evidence("batch 7 was clean")
    assert False, "alerted on a clean batch"
'''


def test_evidence_a_check_records_reaches_its_result_on_pass_and_fail(tmp_path):
    lab, workspace, state = adder_with_checks(tmp_path, "test_evidence.py", EVIDENCE_CHECK)
    result = run_checks(lab, workspace=workspace, seed=1, state_dir=state, services={}, hidden=True,
                        grade_dir=tmp_path / "grade", select=("test_seen_pass", "test_seen_fail"))
    by_name = {check.check_id.split("::")[-1]: check for check in result.checks}
    assert by_name["test_seen_pass"].status is Status.PASS
    assert by_name["test_seen_pass"].output == "seen: alerted on batch 3, flagged tenure_months"
    failed = by_name["test_seen_fail"]
    assert failed.status is Status.FAIL
    assert failed.output.splitlines() == ["alerted on a clean batch", "seen: batch 7 was clean"]
