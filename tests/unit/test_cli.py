"""The CLI as a user meets it: exit statuses, messages without tracebacks, --json."""

import json
import xml.etree.ElementTree as ET

import pytest

from labkit import cli
from labkit.errors import ExitStatus


def test_help_and_version(run):
    with pytest.raises(SystemExit) as info:
        cli.main(["--help"])
    assert info.value.code == 0


def test_list_json_is_one_document(run):
    code, out, _ = run("list", "--json")
    data = json.loads(out)
    assert code == ExitStatus.OK
    assert any(lab["id"] == "adder" and lab["runtimes"] == ["local", "kind"] for lab in data["labs"])


def test_unknown_lab_suggests_the_nearest(run):
    code, out, err = run("start", "addr")
    assert code == ExitStatus.NOT_FOUND
    assert "did you mean 'adder'" in err


def test_unknown_lab_in_json_mode_is_a_json_error(run):
    code, out, _ = run("start", "nope", "--json")
    assert code == ExitStatus.NOT_FOUND and json.loads(out)["status_name"] == "not_found"


def test_malformed_lab_reports_every_problem(run, labs_copy):
    (labs_copy / "adder" / "lab.yaml").write_text("apiVersion: labkit/v9\nid: adder\nminutes: 0\nruntimes: []\n")
    code, _, err = run("start", "adder")
    assert code == ExitStatus.SPEC_INVALID
    for key in ("apiVersion:", "title:", "minutes:", "runtimes:"):
        assert key in err


def test_kind_runtime_without_a_docker_engine_says_how_to_start_one(run, tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-docker.sock'}")
    code, _, err = run("start", "adder", "--runtime", "kind", "--workspace", str(tmp_path / "ws"))
    assert code == ExitStatus.RUNTIME_UNAVAILABLE
    assert "Docker engine is not running" in err and "dockerd" in err
    assert not (tmp_path / "ws").exists()


def test_commands_that_need_a_lab_say_how_to_start_one(run):
    for command in ("grade", "solve", "reset"):
        code, _, err = run(command)
        assert code == ExitStatus.NOT_FOUND and "labkit start" in err, command


def test_stop_and_status_with_nothing_running_are_calm(run):
    assert run("stop")[0] == ExitStatus.OK
    code, out, _ = run("status", "--json")
    assert code == ExitStatus.OK and json.loads(out) == {"running": False}


def test_a_full_session_through_the_cli(run, tmp_path):
    code, out, _ = run("start", "adder", "--seed", "5", "--workspace", str(tmp_path / "ws"), "--json")
    assert code == ExitStatus.OK and json.loads(out)["seed"] == 5

    code, out, _ = run("grade")
    assert code == ExitStatus.CHECKS_FAILED
    assert "hidden checks are not included" in out.lower() or "visible checks only" in out.lower()

    code, out, _ = run("grade", "--hidden", "--format", "json")
    starter = json.loads(out)
    assert code == ExitStatus.CHECKS_FAILED and starter["percent"] < 100 and starter["hidden"]

    assert run("solve")[0] == ExitStatus.OK
    code, out, _ = run("grade", "--hidden", "--format", "junit")
    suite = ET.fromstring(out)
    assert code == ExitStatus.OK and suite.get("failures") == "0" and suite.get("errors") == "0"

    code, out, _ = run("submit", "--json", "--out", str(tmp_path / "sub.tar.gz"))
    assert code == ExitStatus.OK and json.loads(out)["changes"]["modified"] == ["adder.py"]
    assert (tmp_path / "sub.tar.gz").stat().st_size > 0

    assert run("stop")[0] == ExitStatus.OK
    assert run("status")[0] == ExitStatus.OK


def test_a_platform_fault_is_an_error_apart_from_failures(run, tmp_path, labkit_home):
    run("start", "adder", "--seed", "5", "--workspace", str(tmp_path / "ws"))
    run("solve")
    (labkit_home / "state" / "adder-seed5" / "break-platform").touch()
    code, out, _ = run("grade", "--hidden", "--format", "json")
    data = json.loads(out)
    assert code == ExitStatus.GRADE_INCOMPLETE
    probe = next(c for c in data["checks"] if c["check_id"].endswith("test_platform_probe"))
    assert probe["status"] == "error" and "on purpose" in probe["output"]
    assert data["counts"] == {"pass": 4, "fail": 0, "error": 1} and not data["complete"]


def test_an_engine_crash_still_writes_a_report(run, tmp_path, labkit_home):
    run("start", "adder", "--seed", "5", "--workspace", str(tmp_path / "ws"))
    (labkit_home / "state" / "adder-seed5" / "crash-engine").touch()
    report = tmp_path / "report.json"
    code, _, _ = run("grade", "--hidden", "--format", "json", "--out", str(report))
    data = json.loads(report.read_text())
    assert code == ExitStatus.GRADE_INCOMPLETE
    assert "exit 3" in data["engine_error"]
    statuses = {c["check_id"].split("::")[1]: c["status"] for c in data["checks"]}
    assert statuses["test_platform_probe"] == "error"
    assert statuses["test_seeded_sums"] == "fail"  # what ran before the crash is kept


def test_an_internal_bug_is_a_short_message_and_a_crash_file(run, monkeypatch, labkit_home):
    import labkit.views

    def boom(args, ui):
        raise ZeroDivisionError("bug")

    monkeypatch.setattr(labkit.views, "show_list", boom)
    code, _, err = run("list")
    assert code == ExitStatus.INTERNAL and "internal error" in err
    assert list((labkit_home / "crash").iterdir())


def test_grading_selected_checks_only(run, tmp_path):
    run("start", "adder", "--seed", "5", "--workspace", str(tmp_path / "ws"))
    code, out, _ = run("grade", "--hidden", "--check", "test_seeded_sums", "--format", "json")
    data = json.loads(out)
    assert code == ExitStatus.CHECKS_FAILED
    assert [c["check_id"] for c in data["checks"]] == ["hidden/test_hidden.py::test_seeded_sums"]
    code, out, _ = run("grade", "--check", "test_no_such_check", "--format", "json")
    assert code == ExitStatus.GRADE_INCOMPLETE and "test_no_such_check" in json.loads(out)["engine_error"]
