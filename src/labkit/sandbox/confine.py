"""The child side of a confined command: confine this process, then exec the command.

Started by :mod:`labkit.sandbox.runner` as ``[unshare ... --] python -I -B -c BOOT
LABKIT_PARENT SPEC -- argv...`` from ``/``: isolated mode (no current folder or script
folder on ``sys.path``, no PYTHON* variables, no user site), so nothing of the
candidate's (a ``labkit/`` package, a ``json.py``) can be imported before the
confinement is in place; only the standard library and this labkit are. It changes
into the command's folder only once confined.

Before exec'ing the command: join the cgroup; in its own mount namespace cover the
hidden paths (the full lab sources, labkit's own files) with empty read-only tmpfs,
re-binding what must stay visible beneath them, then make every mount read-only except
the command's writable folders; set rlimits (CPU, address space, file size, open files,
no core dumps, and NPROC for non-root users); bring up the relay to the lab's services.
If any step fails, the command does not run (exit 126): fail closed.

Standard library and :mod:`labkit.sandbox.relay` only, all imported up front: once the
paths are hidden, labkit's own modules can no longer be read.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import sys
from pathlib import Path
from typing import Any

from labkit.sandbox.relay import start_namespace_relay

CONFINE_FAILED = 126
# The interpreter's first code: put this labkit (and only it) on sys.path, then confine.
BOOT = "import sys; sys.path.insert(0, sys.argv[1]); from labkit.sandbox.confine import main; main(sys.argv[2:])"
_SKIP_MOUNTS = ("/proc", "/sys", "/dev")
_MS = {"ro": 1, "nosuid": 2, "nodev": 4, "noexec": 8, "noatime": 1024, "nodiratime": 2048, "relatime": 1 << 21}
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
_O_PATH = getattr(os, "O_PATH", 0o10000000)


def mount_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/mnt")
    except OSError:
        return ""


def _mounter():  # noqa: ANN202 - the libc call, wrapped to raise OSError
    libc = ctypes.CDLL(None, use_errno=True)

    def mount(source: str | None, target: str, flags: int, fstype: str | None = None, data: str | None = None) -> None:
        enc = (lambda v: v.encode() if v is not None else None)
        if libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"mount {target}: {os.strerror(err)}")

    return mount


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _depth(path: str) -> int:
    return len([p for p in path.split("/") if p])


def hide_paths(mount, hide: list[str], show: list[str]) -> None:  # noqa: ANN001
    """Cover each hidden folder with an empty tmpfs; re-bind each shown path beneath one.

    Rules apply shallowest first, and a shown path wins over a hidden one at the same
    place, so "hide the checkout, show its .venv, hide the labs in it, show one lab's
    starter" means what it says. Shown paths are bound from descriptors opened before
    anything was covered, so they are the originals.
    """
    for path in {os.path.realpath(p) for p in hide if os.path.isfile(p)}:  # a secret file: empty in its place
        mount("/dev/null", path, MS_BIND)
    hides = {os.path.realpath(p) for p in hide if os.path.isdir(p)}
    shows = {os.path.realpath(p) for p in show if os.path.exists(p)}
    rules = sorted([(_depth(p), 0, p) for p in hides] + [(_depth(p), 1, p) for p in shows])
    is_dir = {p: os.path.isdir(p) for p in shows}
    fds = {p: os.open(p, _O_PATH | os.O_CLOEXEC) for p in shows}
    applied: list[tuple[str, int]] = []
    try:
        for _, kind, path in rules:
            covering = [(p, k) for p, k in applied if _within(path, p)]
            hidden_here = bool(covering) and max(covering, key=lambda c: _depth(c[0]))[1] == 0
            if kind == 0 and not hidden_here:
                mount("tmpfs", path, MS_NOSUID | MS_NODEV | MS_NOEXEC, "tmpfs", "mode=755,size=1m")
            elif kind == 1 and hidden_here:
                if is_dir[path]:
                    os.makedirs(path, exist_ok=True)
                else:
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    open(path, "a").close()  # noqa: SIM115 - a mount point
                mount(f"/proc/self/fd/{fds[path]}", path, MS_BIND | MS_REC)
            applied.append((path, kind))
    finally:
        for fd in fds.values():
            os.close(fd)


def _confine_fs(spec: dict[str, Any]) -> None:
    # Never in the reviewer's own namespace: these mounts would land on the host.
    host_ns = spec.get("host_mnt_ns", "")
    if not host_ns or mount_namespace() in ("", host_ns):
        raise OSError("not in a mount namespace of its own; refusing to remount anything")
    mount = _mounter()
    mount("none", "/", MS_REC | MS_PRIVATE)
    hide_paths(mount, spec.get("hide", []), spec.get("show", []))
    writable = [os.path.realpath(p) for p in spec["rw"] if os.path.isdir(p)]
    for path in writable:
        mount(path, path, MS_BIND | MS_REC)
    for point, options in _mounts():
        if point.startswith(_SKIP_MOUNTS) or any(_within(point, w) for w in writable):
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
    """``argv``: the child spec (JSON), ``--``, then the command."""
    spec, command = json.loads(argv[0]), argv[2:]
    try:
        if spec.get("cgroup"):
            Path(spec["cgroup"], "cgroup.procs").write_text(str(os.getpid()))
        if spec.get("mount"):
            _confine_fs(spec)
        os.chdir(spec["cwd"])  # only now: through the writable bind mount, once confined
        _redirect(spec)
        _limits(spec)
        if spec.get("relay"):
            start_namespace_relay(spec["relay"])
    except (OSError, ValueError) as exc:
        print(f"labkit review sandbox: could not confine the command, not running it: {exc}", file=sys.stderr)
        sys.exit(CONFINE_FAILED)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
