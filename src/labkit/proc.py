"""The one place labkit spawns processes.

argv lists only (no shell), a timeout on everything that waits, and an error that
carries the command and its output. Long-lived services are spawned in their own
session so that stopping them takes their whole process group — MLflow's and
Prefect's servers fork workers that would otherwise outlive us.

Output is captured to files, never pipes: a process that leaves a detached child
holding its stdout must not keep us reading until that child exits. ``contain=True``
(the grader and candidates' code) goes further: the command runs in its own pid
namespace (``unshare --pid --fork --kill-child``), so when it ends — exits, times out,
is stopped, or we are killed — the kernel ends every process it started, including
ones that ``setsid`` out of its process group. Where namespaces are unavailable (no
root, macOS), containment falls back to the process group (see ``can_contain``).
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from labkit.errors import CommandError


@dataclass(frozen=True)
class Completed:
    argv: list[str]
    returncode: int | None
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool = False
    aborted: str = ""  # why the caller's abort() stopped it early, if it did

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and not self.aborted


def checked(result: Completed, timeout: float) -> Completed:
    """``result``, or the CommandError of a command that timed out, was stopped or failed."""
    output = result.stdout + result.stderr
    if result.timed_out:
        raise CommandError(result.argv, None, output, reason=f"timed out after {timeout:g}s")
    if result.aborted:
        raise CommandError(result.argv, None, output, reason=f"stopped: {result.aborted}")
    if result.returncode != 0:
        raise CommandError(result.argv, result.returncode, output)
    return result


class ProcessRunner:
    """Runs and supervises processes; tests substitute a fake with the same methods."""

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
        input_text: str | None = None,
        contain: bool = False,
        extra_time: Callable[[], float] | None = None,
        abort: Callable[[], str] | None = None,
    ) -> Completed:
        """Run to completion, capturing stdout and stderr.

        ``timeout`` bounds the wait; ``extra_time()`` (polled) may lengthen it, e.g. by the
        time the grader spent waiting on candidate commands that have their own timeouts.
        ``abort()`` (polled) returning a reason stops the command early: its tree is
        killed and the reason is in ``Completed.aborted``. On KeyboardInterrupt the tree
        is killed before the exception propagates.
        """
        argv = [str(a) for a in argv]
        started = time.monotonic()
        with capture_file() as out, capture_file() as err, input_file(input_text) as stdin:
            proc = self._popen(argv, cwd=cwd, env=env, stdin=stdin, stdout=out, stderr=err, contain=contain)
            contained = contain and can_contain()
            try:
                timed_out, aborted = _wait(proc, timeout, extra_time, abort)
                if timed_out or aborted:
                    _end_tree(proc, contained)
                elif contain and not contained:
                    _kill_group(proc.pid, signal.SIGKILL)  # the fallback: its group ends with it
            except BaseException:
                _end_tree(proc, contained)
                raise
            stdout, stderr = read_capture(out), read_capture(err)
        result = Completed(argv, proc.returncode, stdout, stderr, time.monotonic() - started, timed_out, aborted)
        return checked(result, timeout) if check else result

    @staticmethod
    def _popen(argv: list[str], *, cwd: Path | None, env: Mapping[str, str] | None, stdin: object,
               stdout: object, stderr: object, contain: bool, init: bool = False) -> subprocess.Popen:
        launch = argv
        if contain and can_contain():
            # The program is resolved first, so a missing one is "could not start" as
            # without containment rather than unshare's exit 127.
            path = (env or os.environ).get("PATH", os.defpath)
            if os.sep not in argv[0] and shutil.which(argv[0], path=path) is None:
                raise CommandError(argv, None, "", reason="could not start: No such file or directory")
            launch = [*_CONTAIN, "--", *(_init_argv() if init else []), *argv]
        try:
            return subprocess.Popen(launch, cwd=cwd, env=dict(env) if env is not None else None, stdin=stdin,
                                    stdout=stdout, stderr=stderr, start_new_session=True)
        except FileNotFoundError as exc:
            raise CommandError(argv, None, "", reason=f"could not start: {exc.strerror}") from None

    def run_attached(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """Run in the foreground with its output on our stderr (long builds print their own
        progress; stdout stays free for --json). Raises CommandError on failure or timeout."""
        argv = [str(a) for a in argv]
        try:
            proc = subprocess.Popen(argv, cwd=cwd, env=dict(env) if env is not None else None,
                                    stdin=subprocess.DEVNULL, stdout=sys.stderr, stderr=sys.stderr,
                                    start_new_session=True)
        except FileNotFoundError as exc:
            raise CommandError(argv, None, "", reason=f"could not start: {exc.strerror}") from None
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid, signal.SIGKILL)
            proc.wait()
            raise CommandError(argv, None, "", reason=f"timed out after {timeout:g}s") from None
        except BaseException:
            _kill_group(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        if code != 0:
            raise CommandError(argv, code, "", reason=f"exited with status {code} (its output is above)")

    def spawn(
        self,
        argv: Sequence[str],
        *,
        log_path: Path,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        contain: bool = False,
    ) -> int:
        """Start a detached, long-lived process; its output goes to log_path. Returns its pid.

        Contained, it runs under a small init in its own pid namespace that passes our
        signals on (a namespace's pid 1 ignores SIGTERM without a handler), so
        :meth:`terminate` still stops it gracefully, and everything it started ends with it.
        """
        argv = [str(a) for a in argv]
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            proc = self._popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                               stderr=subprocess.STDOUT, contain=contain, init=True)
        _SPAWNED[proc.pid] = proc
        return proc.pid

    def alive(self, pid: int) -> bool:
        child = _SPAWNED.get(pid)
        if child is not None:
            return child.poll() is None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return not _is_zombie(pid)

    def group_alive(self, pgid: int) -> bool:
        """True while any process of the group is still running (not a zombie)."""
        if not Path("/proc/self/stat").exists():  # macOS: no /proc, zombies count as alive
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return False
            except PermissionError:
                return True
            return True
        return any(not _is_zombie(pid) for pid in _group_members(pgid))

    def terminate(self, pid: int, *, grace_s: float = 10.0) -> None:
        """SIGTERM the process group, then SIGKILL what is left after grace_s."""
        _kill_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            self._reap(pid)
            if not self.group_alive(pid):
                break
            time.sleep(0.1)
        else:
            _kill_group(pid, signal.SIGKILL)
            for _ in range(50):
                self._reap(pid)
                if not self.group_alive(pid):
                    break
                time.sleep(0.1)
        self._reap(pid)

    @staticmethod
    def _reap(pid: int) -> None:
        child = _SPAWNED.get(pid)
        if child is not None and child.poll() is not None:
            _SPAWNED.pop(pid, None)


class BackgroundProcess:
    """A long-lived process started with :meth:`ProcessRunner.spawn`, its output in a log file.

    With ``lifetime_s`` it is stopped once it has run that long (wall clock): a
    candidate's worker gets a bounded life even outside a sandbox.
    """

    def __init__(self, pid: int, log_path: Path, runner: ProcessRunner | None = None,
                 lifetime_s: float | None = None) -> None:
        self.pid, self.log_path = pid, log_path
        self._runner = runner or DEFAULT_RUNNER
        self._timer: threading.Timer | None = None
        if lifetime_s is not None:
            self._timer = threading.Timer(lifetime_s, self.stop)
            self._timer.daemon = True
            self._timer.start()

    def alive(self) -> bool:
        return self._runner.alive(self.pid)

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self._timer is not None and self._timer is not threading.current_thread():
            self._timer.cancel()
        self._runner.terminate(self.pid, grace_s=5)


# Popen objects of services spawned by this process, so they can be reaped (a dead
# child that is never waited for stays a zombie and looks alive to kill(pid, 0)).
_SPAWNED: dict[int, subprocess.Popen] = {}


_CONTAIN = ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc"]

# pid 1 of a contained background process: starts the command as its child, passes on
# the signals labkit stops it with, reaps orphans, and exits when the command exits
# (the kernel then kills whatever else is left in the namespace). Run with -I -S: it
# imports nothing but the standard library, whatever folder it starts in.
_INIT = """
import os, signal, sys
child = None
def forward(signum, frame):
    if child is not None:
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass
for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
    signal.signal(sig, forward)
child = os.fork()
if child == 0:
    try:
        os.execvp(sys.argv[1], sys.argv[1:])
    except OSError as exc:
        sys.stderr.write(f"could not start {sys.argv[1]}: {exc.strerror}\\n")
        os._exit(127)
while True:
    try:
        pid, status = os.waitpid(-1, 0)
    except ChildProcessError:
        os._exit(0)
    if pid == child:
        code = os.waitstatus_to_exitcode(status)
        os._exit(code if code >= 0 else 128 - code)
"""


def _init_argv() -> list[str]:
    return [sys.executable, "-I", "-S", "-c", _INIT]


@functools.lru_cache(maxsize=1)
def can_contain() -> bool:
    """Whether commands can run in their own pid namespace here (Linux, with the right to
    unshare one: root, or a container that allows it). Probed once per process."""
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None:
        return False
    try:
        probe = subprocess.run([*_CONTAIN, "true"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def _wait(proc: subprocess.Popen, timeout: float, extra_time: Callable[[], float] | None,
          abort: Callable[[], str] | None) -> tuple[bool, str]:
    """(timed out, abort reason) once the process ended, its time ran out or abort() spoke."""
    started = time.monotonic()
    polled = extra_time is not None or abort is not None
    while True:
        budget = timeout + (extra_time() if extra_time is not None else 0.0)
        remaining = started + budget - time.monotonic()
        if remaining <= 0:
            return True, ""
        try:
            proc.wait(timeout=min(remaining, 0.25) if polled else remaining)
            return False, ""
        except subprocess.TimeoutExpired:
            pass
        reason = abort() if abort is not None else ""
        if reason:
            return False, reason


def _end_tree(proc: subprocess.Popen, contained: bool) -> None:
    """Kill the command and everything it started, and reap it.

    Contained: the namespace's init is killed first, so that unshare, which waits for
    it, returns only once the kernel has ended every process of the namespace."""
    if contained:
        for child in _children(proc.pid):
            try:
                os.kill(child, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    _kill_group(proc.pid, signal.SIGKILL)
    proc.wait()


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


def capture_file() -> IO[bytes]:
    return tempfile.TemporaryFile(prefix="labkit-out-")


class _NoInput:
    def __enter__(self) -> int:
        return subprocess.DEVNULL

    def __exit__(self, *exc: object) -> None:
        return None


def input_file(text: str | None) -> IO[bytes] | _NoInput:
    if text is None:
        return _NoInput()
    handle = tempfile.TemporaryFile(prefix="labkit-in-")
    handle.write(text.encode())
    handle.seek(0)
    return handle


def read_capture(handle: IO[bytes]) -> str:
    handle.seek(0)
    return handle.read().decode("utf-8", errors="replace")


def _kill_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Field 5 (pgrp) follows the parenthesised command name, which may hold spaces.
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 2 and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def _is_zombie(pid: int) -> bool:
    if not Path("/proc/self/stat").exists():
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


DEFAULT_RUNNER = ProcessRunner()
