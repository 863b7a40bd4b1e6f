"""Run one candidate command confined (the review's subprocess sandbox).

Host side, :func:`run_confined` wraps the command as
``[unshare --mount [--net] --] python -m labkit.review.confine SPEC -- argv...``,
puts it in a fresh pids cgroup when the machine has a writable one, gives it a
scrubbed environment (no reviewer variables; HOME and TMPDIR in a scratch folder;
a socket guard on PYTHONPATH), and afterwards kills everything left in the cgroup.

Child side (``__main__``), before exec'ing the command: join the cgroup, make every
mount read-only except the workspace, the scratch folder and the grade's temp folder,
and put an empty file over the reviewer's secret files (the review key) (only the
mount namespace sees this), set rlimits (CPU, address space, file size,
open files, no core dumps, and NPROC for non-root users), then exec. If confinement
was asked for and fails, the command does not run (exit 126): fail closed.
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import os
import resource
import signal
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from labkit.proc import BackgroundProcess
from labkit.review.relay import HostRelay, start_namespace_relay

CONFINE_FAILED = 126
_GUARD_DIR = Path(__file__).resolve().parent / "netguard"
_KEEP_ENV = ("PATH", "LANG", "LC_ALL", "TZ")
_SKIP_MOUNTS = ("/proc", "/sys", "/dev")
_MS = {"ro": 1, "nosuid": 2, "nodev": 4, "noexec": 8, "noatime": 1024, "nodiratime": 2048, "relatime": 1 << 21}
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18


def run_confined(argv: list[str], *, cwd: Path, env: Mapping[str, str], timeout: float, spec: dict[str, Any],
                 extra_services: Mapping[str, str] | None = None) -> Any:
    """Run ``argv`` as the sandbox ``spec`` says; returns a proc.Completed.

    ``extra_services`` are services the grade started for itself (a private server):
    reachable from the command like the lab's own."""
    from labkit.proc import DEFAULT_RUNNER

    timeout = min(timeout, spec.get("command_timeout_s") or timeout)
    confined = _Confinement(argv, cwd=cwd, env=env, lifetime_s=timeout, spec=spec, extra_services=extra_services)
    try:
        done = DEFAULT_RUNNER.run(confined.argv, timeout=timeout, cwd=cwd, env=confined.env, check=False)
    finally:
        confined.release()
    return dataclasses.replace(done, stdout=confined.stdout(), stderr=done.stderr + confined.stderr())


class ConfinedProcess(BackgroundProcess):
    """A long-lived confined command (a worker, a server), running until :meth:`stop`;
    its own output is in the confinement's capture files, not in the wrapper's log."""

    def __init__(self, confinement: _Confinement, pid: int, log_path: Path) -> None:
        super().__init__(pid, log_path)
        self._confinement = confinement

    def output(self) -> str:
        return self._confinement.stdout() + self._confinement.stderr()

    def stop(self) -> None:
        try:
            super().stop()
        finally:
            self._confinement.release()


def start_confined(argv: list[str], *, cwd: Path, env: Mapping[str, str], lifetime_s: float, spec: dict[str, Any],
                   log_path: Path, extra_services: Mapping[str, str] | None = None) -> ConfinedProcess:
    """Start ``argv`` confined, in the background; its CPU time is capped at ``lifetime_s``."""
    from labkit.proc import DEFAULT_RUNNER

    confined = _Confinement(argv, cwd=cwd, env=env, lifetime_s=lifetime_s, spec=spec, extra_services=extra_services)
    try:
        pid = DEFAULT_RUNNER.spawn(confined.argv, log_path=log_path, cwd=cwd, env=confined.env)
    except BaseException:
        confined.release()
        raise
    return ConfinedProcess(confined, pid, log_path)


class _Confinement:
    """What one confined command needs on the host: its wrapped argv and scrubbed env, the
    relay to the services, its cgroup and its output files; :meth:`release` undoes it."""

    def __init__(self, argv: list[str], *, cwd: Path, env: Mapping[str, str], lifetime_s: float,
                 spec: dict[str, Any], extra_services: Mapping[str, str] | None) -> None:
        scratch = Path(spec["scratch"])
        services = {**(spec.get("services") or {}), **(extra_services or {})}
        (scratch / "home").mkdir(parents=True, exist_ok=True)
        (scratch / "tmp").mkdir(parents=True, exist_ok=True)
        self._limit = int(spec.get("output_bytes") or 1024**2)
        # Output goes to files (bounded by RLIMIT_FSIZE), never to a pipe into the grader's memory.
        self._capture = scratch / "out" / uuid.uuid4().hex[:12]
        self._capture.mkdir(parents=True)
        clean = {k: v for k, v in os.environ.items() if k in _KEEP_ENV}
        clean.update({"HOME": str(scratch / "home"), "TMPDIR": str(scratch / "tmp"), "PYTHONPATH": str(_GUARD_DIR),
                      "PYTHONDONTWRITEBYTECODE": "1", "LABKIT_SANDBOX_NET": "loopback" if services else "none"})
        clean.update(env)
        self.env = clean
        child = {"rw": [str(cwd), str(scratch), *spec.get("rw", [])], "mount": bool(spec.get("unshare")),
                 "hide": list(spec.get("hide") or []),
                 "cpu_s": int(lifetime_s) + 5, "memory": spec["memory_bytes"], "fsize": spec["file_size_bytes"],
                 "nofile": spec["open_files"], "pids": spec["pids"], "cgroup": "", "cwd": str(cwd),
                 "host_mnt_ns": _mount_namespace(),
                 "nproc": os.geteuid() != 0,
                 "stdout": str(self._capture / "stdout"), "stderr": str(self._capture / "stderr")}
        prefix: list[str] = []
        if spec.get("unshare"):
            # Own pid namespace: the command sees only its own processes, and when it ends the
            # kernel kills and reaps every process it left (no zombies for a non-reaping init).
            prefix = ["unshare", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc"]
            prefix += ([] if os.geteuid() == 0 else ["-r"]) + ["--net", "--"]  # no route anywhere...
        self._relay = HostRelay(_ports(services)) if spec.get("unshare") and services else None
        child["relay"] = self._relay.sockets if self._relay else {}  # ...but to the lab's own services
        self._cgroup = _make_cgroup(spec["pids"]) if spec.get("cgroup") else None
        child["cgroup"] = str(self._cgroup or "")
        self.argv = [*prefix, sys.executable, "-m", "labkit.review.confine", json.dumps(child), "--", *argv]

    def stdout(self) -> str:
        return _read_capped(self._capture / "stdout", self._limit)

    def stderr(self) -> str:
        return _read_capped(self._capture / "stderr", self._limit)

    def release(self) -> None:
        if self._cgroup is not None:
            _kill_cgroup(self._cgroup)
            self._cgroup = None
        if self._relay is not None:
            self._relay.close()
            self._relay = None


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
    from labkit.review.sandbox import cgroup_root

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


# ---- child side ---------------------------------------------------------------------------


def _mount_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/mnt")
    except OSError:
        return ""


def _confine_fs(rw: list[str], host_ns: str, hide: list[str] = ()) -> None:
    # Never in the reviewer's own namespace: these mounts would land on the host.
    if not host_ns or _mount_namespace() in ("", host_ns):
        raise OSError("not in a mount namespace of its own; refusing to remount anything")
    libc = ctypes.CDLL(None, use_errno=True)

    def mount(source: str | None, target: str, flags: int) -> None:
        if libc.mount(source.encode() if source else None, target.encode(), None, flags, None) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"mount {target}: {os.strerror(err)}")

    mount("none", "/", MS_REC | MS_PRIVATE)
    writable = [os.path.realpath(p) for p in rw if os.path.isdir(p)]
    for path in writable:
        mount(path, path, MS_BIND | MS_REC)
    for path in hide:  # the reviewer's secrets (the review key): an empty file in their place
        if os.path.isfile(path):
            mount("/dev/null", os.path.realpath(path), MS_BIND)
    for point, options in _mounts():
        if point.startswith(_SKIP_MOUNTS) or any(point == w or point.startswith(w + "/") for w in writable):
            continue
        flags = MS_REMOUNT | MS_BIND | _MS["ro"] | sum(_MS[o] for o in options if o in _MS and o != "ro")
        try:
            mount(None, point, flags)
        except OSError:
            if point == "/":
                raise
            # A mount this namespace may not change stays as it is; the root is what matters.


def _mounts() -> list[tuple[str, list[str]]]:
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        point = fields[4].replace("\\040", " ")
        out.append((point, fields[5].split(",")))
    return out


def _limits(spec: dict[str, Any]) -> None:
    def cap(which: int, value: int) -> None:
        soft, hard = resource.getrlimit(which)
        hard = value if hard == resource.RLIM_INFINITY else min(hard, value)
        resource.setrlimit(which, (min(value, hard), hard))

    cap(resource.RLIMIT_CPU, spec["cpu_s"])
    cap(resource.RLIMIT_AS, spec["memory"])
    cap(resource.RLIMIT_FSIZE, spec["fsize"])
    cap(resource.RLIMIT_NOFILE, spec["nofile"])
    cap(resource.RLIMIT_CORE, 0)
    if spec["nproc"]:  # the kernel ignores NPROC for root; the cgroup covers that case
        cap(resource.RLIMIT_NPROC, _user_processes() + spec["pids"])


def _user_processes() -> int:
    uid, count = os.getuid(), 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                count += entry.stat().st_uid == uid
            except OSError:
                pass
    return count


def _redirect(spec: dict[str, Any]) -> None:
    for fd, key in ((1, "stdout"), (2, "stderr")):
        if spec.get(key):
            target = os.open(spec[key], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(target, fd)
            os.close(target)


def main(argv: list[str]) -> None:
    spec, command = json.loads(argv[1]), argv[3:]
    try:
        if spec.get("cgroup"):
            Path(spec["cgroup"], "cgroup.procs").write_text(str(os.getpid()))
        if spec.get("mount"):
            _confine_fs(spec["rw"], spec.get("host_mnt_ns", ""), hide=spec.get("hide", []))
            os.chdir(spec["cwd"])  # re-enter through the writable bind mount
        _redirect(spec)
        _limits(spec)
        if spec.get("relay"):
            start_namespace_relay(spec["relay"])
    except (OSError, ValueError) as exc:
        print(f"labkit review sandbox: could not confine the command, not running it: {exc}", file=sys.stderr)
        sys.exit(CONFINE_FAILED)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv)
