"""The one place labkit spawns processes.

argv lists only (no shell), a timeout on everything that waits, and an error that
carries the command and its output. Long-lived services are spawned in their own
session so that stopping them takes their whole process group — MLflow's and
Prefect's servers fork workers that would otherwise outlive us.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from labkit.errors import CommandError


@dataclass(frozen=True)
class Completed:
    argv: list[str]
    returncode: int | None
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


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
    ) -> Completed:
        argv = [str(a) for a in argv]
        started = time.monotonic()
        try:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=dict(env) if env is not None else None,
                stdin=subprocess.PIPE if input_text is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )
        except FileNotFoundError as exc:
            raise CommandError(argv, None, "", reason=f"could not start: {exc.strerror}") from None
        try:
            stdout, stderr = proc.communicate(input_text, timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            timed_out = True
        except BaseException:
            _kill_group(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        result = Completed(argv, proc.returncode, stdout, stderr, time.monotonic() - started, timed_out)
        if check and timed_out:
            raise CommandError(argv, None, stdout + stderr, reason=f"timed out after {timeout:g}s")
        if check and proc.returncode != 0:
            raise CommandError(argv, proc.returncode, stdout + stderr)
        return result

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
    ) -> int:
        """Start a detached, long-lived process; its output goes to log_path. Returns its pid."""
        argv = [str(a) for a in argv]
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            try:
                proc = subprocess.Popen(
                    argv,
                    cwd=cwd,
                    env=dict(env) if env is not None else None,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except FileNotFoundError as exc:
                raise CommandError(argv, None, "", reason=f"could not start: {exc.strerror}") from None
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
    """A long-lived process started with :meth:`ProcessRunner.spawn`, its output in a log file."""

    def __init__(self, pid: int, log_path: Path, runner: ProcessRunner | None = None) -> None:
        self.pid, self.log_path = pid, log_path
        self._runner = runner or DEFAULT_RUNNER

    def alive(self) -> bool:
        return self._runner.alive(self.pid)

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        self._runner.terminate(self.pid, grace_s=5)


# Popen objects of services spawned by this process, so they can be reaped (a dead
# child that is never waited for stays a zombie and looks alive to kill(pid, 0)).
_SPAWNED: dict[int, subprocess.Popen] = {}


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
