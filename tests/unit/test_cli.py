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
    code, out, _ = run("grade", "--json")  # as every command takes it
    assert code == ExitStatus.CHECKS_FAILED and not json.loads(out)["hidden"]

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


# ---- where the user stands, state conflicts, destinations (issue 17, items 7, 9-11, 13, 15) ----


def test_start_from_inside_a_stopped_workspace_resumes_its_lab_and_seed(run, tmp_path, monkeypatch):
    ws = tmp_path / "ws"
    assert run("start", "adder", "--seed", "5", "--workspace", str(ws))[0] == ExitStatus.OK
    (ws / "adder.py").write_text("print('my fix')\n")
    assert run("stop")[0] == ExitStatus.OK
    monkeypatch.chdir(ws / "data")  # any folder at or below the workspace
    code, out, err = run("start", "adder", "--json")
    data = json.loads(out)
    assert code == ExitStatus.OK and data["workspace"] == str(ws) and data["seed"] == 5
    assert data["workspace_action"] == "reuse" and "starting it again" in err
    assert not (ws / "data" / "adder").exists() and not (ws / "adder").is_dir()  # nothing nested
    assert (ws / "adder.py").read_text() == "print('my fix')\n"


def test_start_of_another_lab_inside_a_workspace_is_a_conflict_and_renders_nothing(run, tmp_path, monkeypatch):
    ws = tmp_path / "ws"
    run("start", "adder", "--seed", "5", "--workspace", str(ws))
    run("stop")
    monkeypatch.chdir(ws)
    code, _, err = run("start", "platform")
    assert code == ExitStatus.STATE_CONFLICT
    assert f"inside {ws}, the workspace of adder (seed 5)" in err and "--workspace" in err
    assert not (ws / "platform").exists()
    assert json.loads(run("status", "--json")[1]) == {"running": False}


def test_state_conflicts_have_their_own_status_not_usage(run, tmp_path):
    run("start", "adder", "--seed", "5", "--workspace", str(tmp_path / "ws"))
    code, _, err = run("start", "platform")
    assert code == ExitStatus.STATE_CONFLICT == 12 and "adder is running" in err
    assert run("start", "adder", "--seed", "6")[0] == ExitStatus.STATE_CONFLICT
    assert run("start", "adder", "--workspace", str(tmp_path / "other"))[0] == ExitStatus.STATE_CONFLICT


def test_the_readme_exit_table_is_the_exit_status_enum():
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = text[text.index("Exit statuses:"):].split("\n\n")[0]
    documented = {int(n) for n in re.findall(r"(?:^|·|:)\s*(\d+) ", table)}
    assert documented == {int(s) for s in ExitStatus}


def test_grade_to_an_impossible_out_is_bad_input_before_any_check_runs(run, tmp_path, labkit_home):
    run("start", "adder", "--seed", "5", "--workspace", str(tmp_path / "ws"))
    (tmp_path / "afile").write_text("not a folder\n")
    code, _, err = run("grade", "--out", str(tmp_path / "afile" / "report.txt"))
    assert code == ExitStatus.BAD_INPUT and "is a file, not a folder" in err
    assert not (labkit_home / "state" / "adder-seed5" / "grades").exists()  # no grade ran


def test_review_out_that_is_a_file_is_bad_input(run, tmp_path):
    (tmp_path / "subs").mkdir()
    (tmp_path / "subs" / "x.tar.gz").write_bytes(b"")
    (tmp_path / "reviews").write_text("a file\n")
    code, _, err = run("review", str(tmp_path / "subs"), "--out", str(tmp_path / "reviews"))
    assert code == ExitStatus.BAD_INPUT and "is a file; a folder is needed" in err


def test_start_renders_into_an_empty_folder_it_could_not_remove(run, tmp_path, monkeypatch):
    """An empty mount point as --workspace: rmdir would fail with EBUSY, so start must not try."""
    import errno
    from pathlib import Path

    ws = tmp_path / "mnt"
    ws.mkdir()
    real_rmdir = Path.rmdir

    def rmdir(self):
        if self == ws:
            raise OSError(errno.EBUSY, "Device or resource busy", str(self))
        return real_rmdir(self)

    monkeypatch.setattr(Path, "rmdir", rmdir)
    code, out, _ = run("start", "adder", "--seed", "5", "--workspace", str(ws), "--json")
    assert code == ExitStatus.OK and json.loads(out)["workspace"] == str(ws)
    assert (ws / "adder.py").is_file() and (ws / ".labkit" / "manifest.json").is_file()
    assert sorted(p.name for p in ws.iterdir()) == [".labkit", "BRIEF.md", "adder.py", "data", "variant.txt"]


def test_submit_never_overwrites_an_existing_archive_without_force(run, tmp_path):
    ws = tmp_path / "ws"
    run("start", "adder", "--seed", "5", "--workspace", str(ws))
    out = tmp_path / "mine.tar.gz"
    out.write_text("something of mine\n")
    grades = (ws / ".labkit" / "grades.jsonl")
    code, _, err = run("submit", "--out", str(out))
    assert code == ExitStatus.WORKSPACE_CONFLICT and "would overwrite" in err and "--force" in err
    assert out.read_text() == "something of mine\n"
    assert not grades.exists()  # refused before the pre-submit grade
    assert run("submit", "--out", str(out), "--force", "--no-grade")[0] == ExitStatus.OK
    import tarfile

    assert tarfile.is_tarfile(out)


def test_commands_in_a_copy_of_the_workspace_never_act_on_the_running_one(run, tmp_path, monkeypatch):
    import shutil
    import tarfile

    ws, copy = tmp_path / "ws", tmp_path / "copy"
    run("start", "adder", "--seed", "5", "--workspace", str(ws))
    shutil.copytree(ws, copy)
    (copy / "adder.py").write_text("print('the copy')\n")
    before = (ws / "adder.py").read_text()
    monkeypatch.chdir(copy)
    for command in ("solve", "grade", "reset"):
        code, _, err = run(command)
        assert code == ExitStatus.STATE_CONFLICT, command
        assert f"you are in the workspace {copy}" in err and f"running lab's workspace, {ws}" in err
    assert (ws / "adder.py").read_text() == before and not (ws / ".labkit" / "grades.jsonl").exists()

    code, out, err = run("submit", "--out", str(tmp_path / "sub.tar.gz"), "--json")  # packs what you stand in
    assert code == ExitStatus.OK and f"packing the workspace {copy}" in err
    with tarfile.open(tmp_path / "sub.tar.gz") as archive:
        assert archive.extractfile("workspace/adder.py").read() == b"print('the copy')\n"
    assert not (ws / ".labkit" / "grades.jsonl").exists()  # the running lab was not graded either

    monkeypatch.chdir(tmp_path)  # in no workspace: act on the running one, and say so
    code, out, err = run("solve")
    assert code == ExitStatus.OK and f"to {ws}:" in out


# A read-only location or an empty mount point needs a real mount: root, in a private mount
# namespace of a child process (nothing outside it sees the mount). chmod 0555 would not stop root.
def _can_mount_privately() -> str:
    import os
    import shutil
    import subprocess
    import tempfile

    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return "needs root and unshare(1) to mount a tmpfs in a private mount namespace"
    with tempfile.TemporaryDirectory() as tmp:
        probe = subprocess.run(["unshare", "--mount", "sh", "-c", f"mount -t tmpfs none {tmp}"],
                               capture_output=True, text=True)
    return "" if probe.returncode == 0 else f"unshare --mount cannot mount here: {probe.stderr.strip()}"


needs_private_mounts = pytest.mark.skipif(bool(_can_mount_privately()), reason=_can_mount_privately() or "ok")


def _labkit_in_mount(cwd, mount_point, options: str, *argv: str, then: str = "true"):
    """labkit ARGV in a child with a fresh tmpfs (mount -o OPTIONS) at MOUNT_POINT; THEN runs
    in the same namespace afterwards. Returns (exit status, stdout, stderr)."""
    import shlex
    import subprocess
    import sys

    labkit = f"{shlex.quote(sys.executable)} -c 'import sys; from labkit.cli import main; sys.exit(main(sys.argv[1:]))'"
    script = (f"mount -t tmpfs -o {options} labkit-test {shlex.quote(str(mount_point))} || exit 99\n"
              f"{labkit} {shlex.join(argv)}; rc=$?\n{then}\nexit $rc\n")
    done = subprocess.run(["unshare", "--mount", "sh", "-c", script], cwd=cwd, capture_output=True, text=True,
                          timeout=120)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stdout, done.stderr


@needs_private_mounts
def test_start_on_a_read_only_location_is_bad_input(run, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    code, _, err = _labkit_in_mount(tmp_path, ro, "ro", "start", "adder", "--seed", "5", "--workspace", str(ro / "ws"))
    assert code == ExitStatus.BAD_INPUT and "is not writable (a read-only filesystem" in err
    assert json.loads(run("status", "--json")[1]) == {"running": False}


@needs_private_mounts
def test_start_renders_into_an_empty_mount_point(run, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    check = f"mountpoint -q {mnt} && test -f {mnt}/adder.py && test -f {mnt}/.labkit/manifest.json && echo IN-MOUNT"
    code, out, err = _labkit_in_mount(tmp_path, mnt, "rw", "start", "adder", "--seed", "5", "--workspace", str(mnt),
                                      then=check)
    assert code == ExitStatus.OK, err
    assert "IN-MOUNT" in out
    assert run("stop")[0] == ExitStatus.OK


@needs_private_mounts
@pytest.mark.parametrize("name", ["bundle.tar.gz", "bundle"])
def test_export_out_on_a_read_only_location_is_bad_input(run, tmp_path, name):
    ro = tmp_path / "ro"
    ro.mkdir()
    code, _, err = _labkit_in_mount(tmp_path, ro, "ro", "export", "adder", "--seed", "5", "--out", str(ro / name))
    assert code == ExitStatus.BAD_INPUT and f"--out {ro / name}" in err and "read-only" in err


def test_export_force_keeps_the_old_bundle_when_the_new_one_cannot_be_built(run, tmp_path, monkeypatch):
    from labkit.bundles import export

    out = tmp_path / "bundle.tar.gz"
    assert run("export", "adder", "--seed", "3", "--out", str(out))[0] == ExitStatus.OK
    before = out.read_bytes()

    def broken(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(export, "build_bundle", broken)
    with pytest.raises(OSError, match="disk full"):
        export.export_lab(lab_id="adder", seed=4, out=out, force=True)
    assert out.read_bytes() == before


@needs_private_mounts
def test_grade_out_on_a_read_only_location_is_bad_input_before_grading(run, tmp_path, labkit_home):
    run("start", "adder", "--seed", "5", "--workspace", str(tmp_path / "ws"))
    ro = tmp_path / "ro"
    ro.mkdir()
    code, _, err = _labkit_in_mount(tmp_path, ro, "ro", "grade", "--out", str(ro / "report.txt"))
    assert code == ExitStatus.BAD_INPUT and f"--out {ro / 'report.txt'}" in err and "read-only" in err
    assert not (labkit_home / "state" / "adder-seed5" / "grades").exists()
