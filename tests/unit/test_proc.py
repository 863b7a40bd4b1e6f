import sys
import time

import pytest

from labkit.errors import CommandError
from labkit.proc import ProcessRunner


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
