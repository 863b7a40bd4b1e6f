import os
import signal
import sys
import time
import uuid
from pathlib import Path

import pytest

from labkit.errors import CommandError
from labkit.proc import ProcessRunner, can_contain
from tests.conftest import processes_with


@pytest.fixture
def runner():
    return ProcessRunner()


def test_a_failing_command_carries_argv_code_and_output(runner):
    with pytest.raises(CommandError) as info:
        runner.run([sys.executable, "-c", "import sys; print('out'); sys.exit(4)"], timeout=30)
    assert info.value.code == 4 and "out" in info.value.output and info.value.argv[0] == sys.executable


def test_a_missing_program_is_a_command_error_not_a_crash(runner):
    with pytest.raises(CommandError, match="could not start"):
        runner.run(["labkit-no-such-program"], timeout=5)


def test_a_timeout_kills_the_process_and_says_so(runner):
    started = time.monotonic()
    result = runner.run([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5, check=False)
    assert result.timed_out and not result.ok and time.monotonic() - started < 10
    with pytest.raises(CommandError, match="timed out"):
        runner.run([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5)


def test_terminate_takes_the_whole_process_group(runner, tmp_path):
    # A parent that forks a child which ignores SIGTERM: both must be gone afterwards.
    code = (
        "import os, signal, subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', 'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)'])\n"
        "time.sleep(60)\n"
    )
    pid = runner.spawn([sys.executable, "-c", code], log_path=tmp_path / "log")
    time.sleep(0.5)
    assert runner.group_alive(pid)
    runner.terminate(pid, grace_s=1)
    assert not runner.group_alive(pid)
    assert not runner.alive(pid)


# ---- contained commands: the whole tree ends with the command --------------------------------

needs_namespaces = pytest.mark.skipif(not can_contain(), reason="no pid namespaces here (needs Linux and the "
                                      "right to unshare one, e.g. root)")




def _program(body: str, token: str) -> list[str]:
    return [sys.executable, "-c", body, token]


# A detached child (new session, so a process group kill misses it) that keeps the
# inherited stdout and stderr open for 60 s; sys.argv[1] is the test's token.
DETACHED_CHILD = (
    "import os, subprocess, sys\n"
    "for _ in range({n}):\n"
    "    subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', sys.argv[1]], start_new_session=True)\n"
    "print('parent done', flush=True)\n"
)


def test_output_capture_does_not_wait_for_orphans_holding_stdout(runner):
    # 200 setsid'd children keep the pipe open for a minute; the run must end with its
    # main process (on a pipe it waited for them, and timed out here).
    token = f"labkit-test-{uuid.uuid4()}"
    try:
        result = runner.run(_program(DETACHED_CHILD.format(n=200), token), timeout=30, check=False, contain=True)
        assert not result.timed_out and result.returncode == 0, result
        assert "parent done" in result.stdout
        if can_contain():
            assert processes_with(token) == [], "children outlived the contained command"
    finally:
        for pid in processes_with(token):
            os.kill(pid, signal.SIGKILL)


@needs_namespaces
def test_a_grandchild_ends_when_the_contained_command_exits(runner):
    token = f"labkit-test-{uuid.uuid4()}"
    try:
        result = runner.run(_program(DETACHED_CHILD.format(n=1), token), timeout=30, check=False, contain=True)
        assert result.ok, result
        assert processes_with(token) == [], "a setsid'd grandchild outlived the command"
    finally:
        for pid in processes_with(token):
            os.kill(pid, signal.SIGKILL)


@needs_namespaces
def test_a_hung_contained_command_times_out_with_its_whole_tree(runner):
    token = f"labkit-test-{uuid.uuid4()}"
    hang = DETACHED_CHILD.format(n=3) + "import time; time.sleep(600)\n"
    try:
        result = runner.run(_program(hang, token), timeout=3, check=False, contain=True)
        assert result.timed_out and not result.ok
        assert "parent done" in result.stdout  # output up to the kill is kept
        assert processes_with(token) == [], "the hung command's children were left running"
    finally:
        for pid in processes_with(token):
            os.kill(pid, signal.SIGKILL)


def test_abort_stops_a_command_and_says_why(runner):
    asked = []

    def abort() -> str:
        asked.append(1)
        return "mlflow went away" if len(asked) > 2 else ""

    result = runner.run([sys.executable, "-c", "import time; time.sleep(60)"], timeout=60, check=False,
                        contain=True, abort=abort)
    assert result.aborted == "mlflow went away" and not result.timed_out and not result.ok
    with pytest.raises(CommandError, match="stopped: gone"):
        runner.run([sys.executable, "-c", "import time; time.sleep(60)"], timeout=60, abort=lambda: "gone")


def test_extra_time_lengthens_the_timeout(runner):
    # 0.2 s of its own, but 30 s granted on top: a 1 s command finishes.
    result = runner.run([sys.executable, "-c", "import time; time.sleep(1)"], timeout=0.2, check=False,
                        extra_time=lambda: 30.0)
    assert result.ok, result


def test_a_missing_program_is_still_a_command_error_when_contained(runner):
    with pytest.raises(CommandError, match="could not start"):
        runner.run(["labkit-no-such-program"], timeout=5, contain=True)


def test_undecodable_output_is_replaced_not_a_crash(runner):
    result = runner.run([sys.executable, "-c", "import sys; sys.stdout.buffer.write(b'\\xff ok')"], timeout=30)
    assert result.stdout.endswith(" ok")


@needs_namespaces
def test_a_contained_background_process_stops_gracefully_with_everything_it_started(runner, tmp_path):
    token = f"labkit-test-{uuid.uuid4()}"
    stopped = tmp_path / "stopped"
    body = DETACHED_CHILD.format(n=2) + (
        "import signal, sys, time\n"
        f"signal.signal(signal.SIGTERM, lambda *a: (open({str(stopped)!r}, 'w').write('bye'), sys.exit(0)))\n"
        "time.sleep(600)\n"
    )
    pid = runner.spawn(_program(body, token), log_path=tmp_path / "log", contain=True)
    try:
        deadline = time.monotonic() + 60
        while "parent done" not in (tmp_path / "log").read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert runner.alive(pid) and len(processes_with(token)) >= 3
        runner.terminate(pid, grace_s=20)
        assert stopped.read_text() == "bye", "SIGTERM did not reach the command (pid 1 ignores it)"
        assert not runner.alive(pid)
        assert processes_with(token) == [], "the background process's detached children were left running"
    finally:
        for left in processes_with(token):
            os.kill(left, signal.SIGKILL)
