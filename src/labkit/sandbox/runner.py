"""Run candidate commands confined: the host side of the review's subprocess sandbox.

:class:`ConfinedRunner` has the interface of :class:`labkit.proc.ProcessRunner` (``run``
and ``spawn`` with argv lists, timeouts, a :class:`~labkit.proc.Completed` or a pid, a
CommandError carrying the command and its output), so the check engine runs candidate
code the same way whether a review confines it or not (:func:`candidate_runner`).

Each command is wrapped as ``[unshare --mount --pid --fork --kill-child --mount-proc
--net --] python -I -B -c BOOT ... -- argv...`` (labkit.sandbox.confine, started from
``/`` in isolated mode: nothing of the candidate's is importable before it is
confined), in a fresh pids cgroup when the machine has a writable one, with a scrubbed
environment (no reviewer variables; HOME and TMPDIR in a scratch folder; a socket guard
on PYTHONPATH). Its own mount namespace hides labkit's own files and whatever the
:class:`ConfineSpec` hides (the lab's full sources), showing only what it shows (the
lab's candidate copy). Afterwards everything left in the cgroup is killed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import labkit
from labkit.errors import CommandError
from labkit.paths import labkit_sources
from labkit.proc import DEFAULT_RUNNER, BackgroundProcess, Completed, ProcessRunner
from labkit.sandbox.confine import BOOT, mount_namespace
from labkit.sandbox.enforcement import cgroup_root
from labkit.sandbox.limits import SandboxPolicy, policy_keys
from labkit.sandbox.relay import HostRelay

GUARD_DIR = Path(__file__).resolve().parent / "netguard"
_KEEP_ENV = ("PATH", "LANG", "LC_ALL", "TZ")
_OWN_KEYS = ("scratch", "unshare", "cgroup", "rw", "services", "hide", "show")
_LABKIT_PARENT = str(Path(labkit.__file__).resolve().parents[1])


@dataclass(frozen=True)
class ConfineSpec:
    """How one grade's candidate commands are confined: the policy's limits, what this
    machine enforces (namespaces, cgroup), their writable folders, the services they may
    reach, and the paths they must not see (``hide``) but for what they may (``show``)."""

    policy: SandboxPolicy
    scratch: Path  # HOME, TMPDIR and captured output of every command
    unshare: bool = False
    cgroup: bool = False
    rw: tuple[Path, ...] = ()
    services: Mapping[str, str] = field(default_factory=dict)
    hide: tuple[Path, ...] = ()
    show: tuple[Path, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConfineSpec:
        """From a grade context or a job file (the policy's keys, flat, and this class's);
        a key neither knows is a bug of whoever wrote it: ValueError."""
        unknown = set(data) - policy_keys() - set(_OWN_KEYS)
        if unknown:
            raise ValueError(f"sandbox spec: unknown key(s) {', '.join(sorted(unknown))}")
        if not data.get("scratch"):
            raise ValueError("sandbox spec: scratch (the commands' scratch folder) is missing")
        paths = (lambda key: tuple(Path(p) for p in data.get(key) or ()))
        return cls(policy=SandboxPolicy.from_dict(dict(data)), scratch=Path(data["scratch"]),
                   unshare=bool(data.get("unshare")), cgroup=bool(data.get("cgroup")), rw=paths("rw"),
                   services=dict(data.get("services") or {}), hide=paths("hide"), show=paths("show"))

    def to_dict(self) -> dict[str, Any]:
        return {**self.policy.to_dict(), "scratch": str(self.scratch), "unshare": self.unshare,
                "cgroup": self.cgroup, "rw": [str(p) for p in self.rw], "services": dict(self.services),
                "hide": [str(p) for p in self.hide], "show": [str(p) for p in self.show]}


class ConfinedRunner:
    """Runs candidate commands confined; the interface of labkit.proc.ProcessRunner.

    ``extra_services``: services the grade started for itself (a private server), reachable
    like the lab's own; ``lifetime_s``: the CPU time a spawned (long-lived) command gets.
    """

    def __init__(self, spec: ConfineSpec, *, extra_services: Mapping[str, str] | None = None,
                 lifetime_s: float = 1800.0, runner: ProcessRunner = DEFAULT_RUNNER) -> None:
        self.spec = spec
        self._extra = dict(extra_services or {})
        self._lifetime_s = lifetime_s
        self._runner = runner
        self._live: dict[int, _Confinement] = {}

    def derive(self, *, extra_services: Mapping[str, str] | None = None,
               lifetime_s: float | None = None) -> ConfinedRunner:
        return ConfinedRunner(self.spec, extra_services={**self._extra, **(extra_services or {})},
                              lifetime_s=self._lifetime_s if lifetime_s is None else lifetime_s, runner=self._runner)

    def run(self, argv: Sequence[str], *, timeout: float, cwd: Path | None = None,
            env: Mapping[str, str] | None = None, check: bool = True, input_text: str | None = None,
            contain: bool = True, extra_time: Callable[[], float] | None = None,
            abort: Callable[[], str] | None = None) -> Completed:
        """As ProcessRunner.run; ``contain`` is implied (the confinement has its own pid
        namespace and cgroup), ``abort`` and ``extra_time`` reach the wrapped run."""
        argv = [str(a) for a in argv]
        timeout = min(timeout, self.spec.policy.command_timeout_s or timeout)
        confined = _Confinement(argv, cwd=cwd or Path.cwd(), env=env or {}, lifetime_s=timeout, spec=self.spec,
                                extra_services=self._extra, capture=True)
        try:
            done = self._runner.run(confined.argv, timeout=timeout, cwd=Path("/"), env=confined.env, check=False,
                                    input_text=input_text, extra_time=extra_time, abort=abort)
        finally:
            confined.release()
        result = dataclasses.replace(done, argv=argv, stdout=confined.stdout(), stderr=done.stderr + confined.stderr())
        if check and result.timed_out:
            raise CommandError(argv, None, result.stdout + result.stderr, reason=f"timed out after {timeout:g}s")
        if check and result.returncode != 0:
            raise CommandError(argv, result.returncode, result.stdout + result.stderr)
        return result

    def spawn(self, argv: Sequence[str], *, log_path: Path, cwd: Path | None = None,
              env: Mapping[str, str] | None = None, contain: bool = True) -> int:
        """Start a long-lived confined command; its output (and the wrapper's) goes to log_path."""
        argv = [str(a) for a in argv]
        confined = _Confinement(argv, cwd=cwd or Path.cwd(), env=env or {}, lifetime_s=self._lifetime_s,
                                spec=self.spec, extra_services=self._extra, capture=False)
        try:
            pid = self._runner.spawn(confined.argv, log_path=log_path, cwd=Path("/"), env=confined.env)
        except BaseException:
            confined.release()
            raise
        self._live[pid] = confined
        return pid

    def alive(self, pid: int) -> bool:
        return self._runner.alive(pid)

    def group_alive(self, pgid: int) -> bool:
        return self._runner.group_alive(pgid)

    def terminate(self, pid: int, *, grace_s: float = 10.0) -> None:
        """Stop it (its pid namespace dies with it), then its cgroup and relay."""
        try:
            self._runner.terminate(pid, grace_s=grace_s)
        finally:
            confined = self._live.pop(pid, None)
            if confined is not None:
                confined.release()


def candidate_runner(sandbox: Mapping[str, Any] | None, *, plain: ProcessRunner = DEFAULT_RUNNER) -> Any:
    """The runner of a grade's candidate commands, chosen once: confined when the grade
    carries a sandbox spec (a review), else ``plain``."""
    return ConfinedRunner(ConfineSpec.from_dict(sandbox)) if sandbox else plain


def for_command(runner: Any, *, extra_services: Mapping[str, str] | None = None,
                lifetime_s: float | None = None) -> Any:
    """``runner`` for one command that also reaches ``extra_services`` (and, spawned, runs
    for ``lifetime_s``); a plain runner reaches everything already and is returned as is."""
    if isinstance(runner, ConfinedRunner) and (extra_services or lifetime_s is not None):
        return runner.derive(extra_services=extra_services, lifetime_s=lifetime_s)
    return runner


def run_confined(argv: list[str], *, cwd: Path, env: Mapping[str, str], timeout: float,
                 spec: ConfineSpec | Mapping[str, Any], extra_services: Mapping[str, str] | None = None) -> Completed:
    """One confined command, to its end; its exit status is in the result (never raised)."""
    spec = spec if isinstance(spec, ConfineSpec) else ConfineSpec.from_dict(spec)
    return ConfinedRunner(spec, extra_services=extra_services).run(argv, timeout=timeout, cwd=cwd, env=env, check=False)


def start_confined(argv: list[str], *, cwd: Path, env: Mapping[str, str], lifetime_s: float,
                   spec: ConfineSpec | Mapping[str, Any], log_path: Path,
                   extra_services: Mapping[str, str] | None = None) -> BackgroundProcess:
    """A long-lived confined command, in the background, until its ``stop()``."""
    spec = spec if isinstance(spec, ConfineSpec) else ConfineSpec.from_dict(spec)
    runner = ConfinedRunner(spec, extra_services=extra_services, lifetime_s=lifetime_s)
    return BackgroundProcess(runner.spawn(argv, log_path=log_path, cwd=cwd, env=env), log_path, runner=runner)


class _Confinement:
    """What one confined command needs on the host: its wrapped argv and scrubbed env, the
    relay to the services, its cgroup and its output files; :meth:`release` undoes it."""

    def __init__(self, argv: list[str], *, cwd: Path, env: Mapping[str, str], lifetime_s: float,
                 spec: ConfineSpec, extra_services: Mapping[str, str], capture: bool) -> None:
        policy, scratch = spec.policy, spec.scratch
        services = {**spec.services, **extra_services}
        (scratch / "home").mkdir(parents=True, exist_ok=True)
        (scratch / "tmp").mkdir(parents=True, exist_ok=True)
        self._limit = int(policy.output_bytes or 1024**2)
        # A one-shot command's output goes to files (bounded by RLIMIT_FSIZE), never to a pipe
        # into the grader's memory; a spawned one's to the log file the caller gave.
        self._capture: Path | None = None
        if capture:
            self._capture = scratch / "out" / uuid.uuid4().hex[:12]
            self._capture.mkdir(parents=True)
        clean = {k: v for k, v in os.environ.items() if k in _KEEP_ENV}
        clean.update({"HOME": str(scratch / "home"), "TMPDIR": str(scratch / "tmp"), "PYTHONPATH": str(GUARD_DIR),
                      "PYTHONDONTWRITEBYTECODE": "1", "LABKIT_SANDBOX_NET": "loopback" if services else "none"})
        clean.update(env)
        self.env = clean
        rw = [str(cwd), str(scratch), *map(str, spec.rw)]
        child: dict[str, Any] = {
            "rw": rw, "mount": spec.unshare, "cpu_s": int(lifetime_s) + 5, "memory": policy.memory_bytes,
            "fsize": policy.file_size_bytes, "nofile": policy.open_files, "pids": policy.pids, "cgroup": "",
            "cwd": str(cwd), "host_mnt_ns": mount_namespace(), "nproc": os.geteuid() != 0,
            "hide": [*map(str, spec.hide), *map(str, labkit_sources())],
            "show": [*map(str, spec.show), *rw, *_interpreter_paths(), str(GUARD_DIR)],
        }
        if self._capture is not None:
            child.update(stdout=str(self._capture / "stdout"), stderr=str(self._capture / "stderr"))
        prefix: list[str] = []
        if spec.unshare:
            # Own pid namespace: the command sees only its own processes, and when it ends the
            # kernel kills and reaps every process it left (no zombies for a non-reaping init).
            prefix = [shutil.which("unshare") or "unshare", "--mount", "--pid", "--fork", "--kill-child",
                      "--mount-proc"]
            prefix += ([] if os.geteuid() == 0 else ["-r"]) + ["--net", "--"]  # no route anywhere...
        self._relay = HostRelay(_ports(services)) if spec.unshare and services else None
        child["relay"] = self._relay.sockets if self._relay else {}  # ...but to the lab's own services
        self._cgroup = _make_cgroup(policy.pids) if spec.cgroup else None
        child["cgroup"] = str(self._cgroup or "")
        # Isolated mode, started from "/": the candidate's files cannot shadow what it imports.
        self.argv = [*prefix, sys.executable, "-I", "-B", "-c", BOOT, _LABKIT_PARENT, json.dumps(child), "--", *argv]

    def stdout(self) -> str:
        return _read_capped(self._capture / "stdout", self._limit) if self._capture else ""

    def stderr(self) -> str:
        return _read_capped(self._capture / "stderr", self._limit) if self._capture else ""

    def release(self) -> None:
        if self._cgroup is not None:
            _kill_cgroup(self._cgroup)
            self._cgroup = None
        if self._relay is not None:
            self._relay.close()
            self._relay = None


def _interpreter_paths() -> list[str]:
    """What a candidate's Python needs to start: its environment and the base installation
    (a virtualenv inside labkit's checkout stays visible when the checkout is hidden)."""
    found = {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix,
             str(Path(sys.executable).resolve().parents[1])}
    return sorted(found)


def _ports(services: Mapping[str, str]) -> list[int]:
    return sorted({urlsplit(url).port or 80 for url in services.values()})


def _read_capped(path: Path, limit: int) -> str:
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError:
        return ""
    text = data[:limit].decode("utf-8", errors="replace")
    return text + (f"\n[labkit: output cut at {limit} bytes]" if len(data) > limit else "")


def _make_cgroup(pids: int) -> Path | None:
    root = cgroup_root()
    if root is None:
        return None
    path = root / f"labkit-review-{uuid.uuid4().hex[:12]}"
    try:
        path.mkdir()
        (path / "pids.max").write_text(str(pids))
    except OSError:
        return None
    return path


def _kill_cgroup(path: Path) -> None:
    """Kill whatever the command left behind (daemons, setsid'd children), then remove the group."""
    for _ in range(100):
        try:
            pids = [int(p) for p in (path / "cgroup.procs").read_text().split()]
        except OSError:
            return
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    try:
        path.rmdir()
    except OSError:
        pass
