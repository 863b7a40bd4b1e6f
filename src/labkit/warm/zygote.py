"""The warm interpreter's server: a Python that has imported a lab's heavy modules once
and forks one child per candidate command (``python FILE ...`` / ``python -m MODULE
...``), which then runs exactly as a cold ``python`` would have.

Started by :mod:`labkit.warm.client` as ``python -c BOOT SOCKET MODULE...`` in an empty
folder, with the candidate commands' base environment: its interpreter flags and
``sys.path`` are therefore those of a cold candidate command (only ``sys.path[0]`` differs,
and each child sets its own). Standard library only, besides the modules it preloads;
it imports nothing of the candidate's, and a command whose folders could shadow a module
it holds is never sent here (the client checks, and runs it cold).

One request per connection: a length-prefixed JSON record (argv after ``python``, cwd,
env) carrying the command's stdin, stdout and stderr as file descriptors (SCM_RIGHTS).
A handler process is forked per request; it puts the command in a pid namespace of its
own where the machine allows it (``unshare --pid --fork --kill-child``'s semantics: the
command is its pid 1, and when it ends the kernel ends everything it started), else in a
session of its own; it answers ``{"pid": N}``, then ``{"returncode": N}`` when the command
ends. Any byte (or EOF) from the client means "kill it": a timeout, an abort, Ctrl-C.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import select
import signal
import socket
import stat
import struct
import sys
import types

CLONE_NEWNS, CLONE_NEWPID = 0x00020000, 0x20000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 2, 4, 8, 16384, 1 << 18
PR_SET_PDEATHSIG = 1
_HEADER = struct.Struct("!I")
MAX_REQUEST = 16 * 1024 * 1024


def serve(path: str, grader: int, modules: list[str]) -> dict:
    """Preload, listen, and fork per request. Returns only in a command's process, with its
    request (the caller then runs it at the top level, so the interpreter's own exit
    sequence — non-daemon threads joined, atexit, flush — is a cold one's). Only the
    ``grader`` process may ask: a candidate command that finds the socket is refused."""
    failed = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # the command imports it itself, cold: slower, not wrong
            failed.append(f"{name}: {type(exc).__name__}: {exc}")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path + ".tmp")
    listener.listen(64)
    loaded = sorted({name.partition(".")[0] for name in sys.modules})
    print(json.dumps({"ready": True, "pid": os.getpid(), "failed": failed, "loaded": loaded}), flush=True)
    os.rename(path + ".tmp", path)  # the path appears only once it accepts, and the line above is written
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # handlers are reaped by the kernel
    while True:
        conn, _ = listener.accept()
        if _peer_pid(conn) != grader:
            conn.close()
            continue
        sys.stdout.flush()
        sys.stderr.flush()
        if os.fork() == 0:
            listener.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            return _handle(conn)
        conn.close()


def _peer_pid(conn: socket.socket) -> int:
    pid, _, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    return pid


def _handle(conn: socket.socket) -> dict:
    """In the handler process: receive, fork the command, report its pid and status."""
    try:
        request, fds = _receive(conn)
    except (OSError, ValueError) as exc:
        _send(conn, {"error": f"bad request: {exc}"})
        os._exit(1)
    namespaced = _new_pid_namespace()
    pid = os.fork()
    if pid == 0:
        conn.close()
        _become_command(request, fds, contained=namespaced)
        return request
    for fd in fds:
        os.close(fd)
    _send(conn, {"pid": pid, "namespace": namespaced})
    _wait_or_kill(pid, conn, namespaced)
    _, status = os.waitpid(pid, 0)
    _kill_group(pid)  # what it left in its session ends with it (in a namespace, the kernel saw to the rest)
    try:
        _send(conn, {"returncode": os.waitstatus_to_exitcode(status)})
    except OSError:
        pass
    os._exit(0)


def _wait_or_kill(pid: int, conn: socket.socket, namespaced: bool) -> None:
    """Until the command ends; a byte or EOF from the client first kills its whole tree."""
    pidfd = os.pidfd_open(pid)
    watched = [pidfd, conn]
    while True:
        ready, _, _ = select.select(watched, [], [])
        if pidfd in ready:
            os.close(pidfd)
            return
        _kill_tree(pid, namespaced)
        watched = [pidfd]  # killed: now only its end is awaited


def _become_command(request: dict, fds: list[int], *, contained: bool) -> None:
    """Turn the forked process into the command's: its stdio, folder, environment, argv,
    sys.path[0]; the preloaded modules stay (none of them could be the candidate's)."""
    os.setsid()  # its own group: a command that signals its group reaches no one of ours
    libc = ctypes.CDLL(None, use_errno=True)
    if contained:  # as `unshare --mount-proc`: /proc shows the namespace's processes only
        libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None)
        libc.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    for fd in fds:
        if fd > 2:
            os.close(fd)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    os.chdir(request["cwd"])
    # The zygote started with this very environment (one zygote per environment); what the
    # interpreter and the preloaded modules added to it on start-up stays, as it would cold.
    os.environ.update(request["env"])
    main = types.ModuleType("__main__")
    main.__dict__.update({"__builtins__": sys.modules["builtins"], "__annotations__": {}})
    sys.modules["__main__"] = main
    sys.path[0] = request["path0"]
    sys.argv = list(request["argv"])
    if "numpy.random" in sys.modules:  # a cold interpreter seeds its own global generator
        sys.modules["numpy.random"].seed()
    _fresh_event_loops()


def _fresh_event_loops() -> None:
    """Event loops a preloaded module made on import (Evidently keeps one) hold an epoll fd
    and a socket pair that every fork would share: each command gets loops of its own."""
    import asyncio

    for module in list(sys.modules.values()):
        for name, value in list(getattr(module, "__dict__", {}).items()):
            if isinstance(value, asyncio.AbstractEventLoop) and not value.is_running():
                try:
                    value.close()
                except Exception:  # noqa: BLE001 - a loop that cannot close keeps its fds, not ours to fix
                    continue
                setattr(module, name, asyncio.new_event_loop())


def run_command(request: dict) -> int:
    """Run the command as ``__main__``; its exit status (SystemExit propagates as it would)."""
    import runpy

    try:
        if request["module"]:
            runpy._run_module_as_main(request["module"], alter_argv=True)
        else:
            script = request["script"]
            with open(script, "rb") as handle:
                code = compile(handle.read(), script, "exec", dont_inherit=True)
            main = sys.modules["__main__"]
            main.__dict__.update({"__name__": "__main__", "__file__": script, "__cached__": None,
                                  "__doc__": None, "__package__": None, "__spec__": None,
                                  "__loader__": _loader(script)})
            exec(code, main.__dict__)
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - printed as a cold interpreter prints it
        tb = exc.__traceback__.tb_next if exc.__traceback__ else None  # from the command's first frame
        sys.excepthook(type(exc), exc.with_traceback(tb), tb)
        return 130 if isinstance(exc, KeyboardInterrupt) else 1  # 128 + SIGINT, as a namespace's pid 1 exits
    return 0


def _loader(script: str):
    from importlib.machinery import SourceFileLoader

    return SourceFileLoader("__main__", script)


def _new_pid_namespace() -> bool:
    try:
        return ctypes.CDLL(None, use_errno=True).unshare(CLONE_NEWNS | CLONE_NEWPID) == 0
    except (OSError, AttributeError):
        return False


def _kill_tree(pid: int, namespaced: bool) -> None:
    try:
        os.kill(pid, signal.SIGKILL)  # a namespace's pid 1: the kernel ends the rest
    except ProcessLookupError:
        pass
    _kill_group(pid)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _receive(conn: socket.socket) -> tuple[dict, list[int]]:
    data, fds, _, _ = socket.recv_fds(conn, 65536, 3)
    if len(fds) != 3 or len(data) < _HEADER.size:
        raise ValueError("expected a header and three file descriptors")
    if any(stat.S_ISSOCK(os.fstat(fd).st_mode) for fd in fds):
        raise ValueError("a socket as the command's stdio")  # files, pipes and /dev/null only
    (size,) = _HEADER.unpack_from(data)
    if size > MAX_REQUEST:
        raise ValueError("request too large")
    body = data[_HEADER.size:]
    while len(body) < size:
        chunk = conn.recv(min(65536, size - len(body)))
        if not chunk:
            raise ValueError("request cut short")
        body += chunk
    return json.loads(body), list(fds)


def _send(conn: socket.socket, message: dict) -> None:
    conn.sendall(json.dumps(message).encode() + b"\n")


# What the client runs: `python -c BOOT SOCKET GRADER_PID MODULE...` (``-c``: the empty folder it starts
# in is sys.path[0] while it preloads; each command's own replaces it).
BOOT = """
import sys
from labkit.warm.zygote import serve, run_command
_request = serve(sys.argv[1], int(sys.argv[2]), sys.argv[3:])
del serve
sys.exit(run_command(_request))
"""
