"""labkit verify grades a mutant only until a check fails: the real runner and plugin,
on a copy of the adder fixture lab with three extra hidden checks."""

from __future__ import annotations

from pathlib import Path

from labkit.grading.results import Status
from labkit.grading.runner import run_checks
from tests.conftest import adder_with_checks

CHECKS = '''
import pytest
from labkit.grading import InfraError

@pytest.mark.check(points=1)
def test_a_platform_error():
    raise InfraError("the registry is down")

@pytest.mark.check(points=1)
def test_passes():
    pass

@pytest.mark.check(points=1)
def test_fails():
    assert False, "wrong answer"

@pytest.mark.check(points=1)
def test_after_the_fail():
    pass
'''
NAMES = ("test_a_platform_error", "test_passes", "test_fails", "test_after_the_fail")


def _grade(tmp_path: Path, **options):
    lab, workspace, state = adder_with_checks(tmp_path, "test_extra.py", CHECKS)
    result = run_checks(lab, workspace=workspace, seed=1, state_dir=state, services={}, hidden=True,
                        grade_dir=tmp_path / "grade", select=NAMES, **options)
    return {c.check_id.split("::")[-1]: c for c in result.checks}, result


def test_the_grade_stops_at_the_first_failed_check_and_says_so(tmp_path):
    checks, result = _grade(tmp_path, stop_at_first_fail=True)
    assert [checks[n].status for n in NAMES] == [Status.ERROR, Status.PASS, Status.FAIL, Status.ERROR]
    # an error proves nothing about the candidate's code: it does not stop the grade
    assert "the registry is down" in checks["test_a_platform_error"].output
    assert "stopped at its first failed check" in checks["test_after_the_fail"].output
    assert not result.complete


def test_without_the_option_every_check_runs(tmp_path):
    checks, result = _grade(tmp_path)
    assert checks["test_after_the_fail"].status is Status.PASS
    assert checks["test_fails"].status is Status.FAIL
