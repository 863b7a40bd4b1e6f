"""The grader's side of the warm interpreter: :class:`WarmRunner` has ProcessRunner's
``run`` and sends the candidate commands it can run warm to a zygote
(:mod:`labkit.warm.zygote`), every other one to the cold runner it wraps.

A command goes warm only when the result cannot tell: ``python FILE ...`` or ``python -m
MODULE ...`` with no interpreter option, contained, its ``PYTHON*`` variables those the
zygote started with, and nothing in its ``sys.path[0]`` folder named like a module the
zygote holds (a candidate's ``pandas.py`` or ``yaml/`` would shadow it cold). Anything
else — and everything once the zygote failed to start or died — runs cold, as before.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib.machinery import all_suffixes
from pathlib import Path
from typing import IO

from labkit.errors import CommandError
from labkit.proc import DEFAULT_RUNNER, Completed, ProcessRunner, capture_file, checked, input_file, read_capture
from labkit.runtimes.local import log_tail
from labkit.warm.zygote import _HEADER, BOOT

SWITCH_ENV = "LABKIT_WARM"  # "0": every candidate command cold
READY_TIMEOUT_S = 300.0  # the preload of a loaded machine; the commands run cold meanwhile
KILL_WAIT_S = 15.0


def warm_enabled(environ: Mapping[str, str] = os.environ) -> bool:
    return environ.get(SWITCH_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


class _Zygote:
    """One warm interpreter, started with one environment (modules may read it on import)."""

    def __init__(self, modules: list[str], env: dict[str, str], log: Path, cold: ProcessRunner) -> None:
        self.modules, self.env, self.log, self.cold = modules, env, log, cold
        self.state = "starting"  # starting → ready | failed
        self.pid: int | None = None
        self.socket = ""
        self.loaded: frozenset[str] = frozenset()
        self.note = ""
        self._home = Path(tempfile.mkdtemp(prefix="lkw-"))  # short: a socket path has ~100 bytes
        threading.Thread(target=self._start, name="labkit-warm-start", daemon=True).start()

    def _start(self) -> None:
        sock, empty = self._home / "zygote.sock", self._home / "cwd"
        empty.mkdir()
        try:
            self.pid = self.cold.spawn([sys.executable, "-c", BOOT, str(sock), str(os.getpid()), *self.modules],
                                       log_path=self.log,
                                       cwd=empty, env=self.env)
        except CommandError as exc:
            return self.fail(f"the warm interpreter did not start: {exc}")
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not sock.exists():
            if self.state != "starting":
                return None
            if time.monotonic() > deadline or not self.cold.alive(self.pid):
                return self.fail(f"the warm interpreter was not ready: {log_tail(self.log)}")
            time.sleep(0.1)
        ready = _ready_line(self.log)  # after whatever the preloaded modules printed
        if ready is None:
            return self.fail(f"the warm interpreter said nothing readable: {log_tail(self.log)}")
        self.socket, self.loaded = str(sock), frozenset(ready["loaded"])
        if ready.get("failed"):
            self.note = "preloaded without: " + "; ".join(ready["failed"])
        if self.state == "starting":
            self.state = "ready"

    def fail(self, why: str) -> None:
        self.state, self.note = "failed", why
        self.stop()

    def stop(self) -> None:
        if self.state != "failed":
            self.state = "stopped"
        pid, self.pid = self.pid, None
        if pid is not None:
            self.cold.terminate(pid, grace_s=2)
        shutil.rmtree(self._home, ignore_errors=True)


class WarmRunner:
    """Candidate commands through zygotes that have imported ``modules``: one per distinct
    environment of the commands (at most MAX_ZYGOTES), the first for ``base_env`` (the
    candidate commands' own base) started at once. A command whose environment has no
    ready zygote runs cold (and starts one, for the next command with that environment)."""

    MAX_ZYGOTES = 3

    def __init__(self, modules: Sequence[str], *, base_env: Mapping[str, str], folder: Path,
                 cold: ProcessRunner = DEFAULT_RUNNER) -> None:
        self.modules, self.cold, self.folder = list(modules), cold, folder
        self.base_env = dict(base_env)
        self._lock = threading.Lock()
        self._zygotes: dict[tuple, _Zygote] = {}
        self._started = False
        self.counts = {"warm": 0, "cold": 0}

    @property
    def note(self) -> str:
        """Why a zygote is not used (or preloaded less than asked), if one is not."""
        return "; ".join(z.note for z in list(self._zygotes.values()) if z.note)

    def start(self) -> None:
        with self._lock:
            self._started = True
        self._zygote(self.base_env)

    def _zygote(self, env: Mapping[str, str]) -> _Zygote | None:
        key = tuple(sorted(env.items()))
        with self._lock:
            if not self._started:
                return None
            zygote = self._zygotes.get(key)
            if zygote is None and len(self._zygotes) < self.MAX_ZYGOTES:
                log = self.folder / f"zygote-{len(self._zygotes) + 1}.log"
                zygote = self._zygotes[key] = _Zygote(self.modules, dict(env), log, self.cold)
            return zygote

    def wait_ready(self, timeout: float = READY_TIMEOUT_S, env: Mapping[str, str] | None = None) -> bool:
        """Whether the zygote of ``env`` (the base environment's) is ready, waiting up to ``timeout``."""
        zygote = self._zygote(self.base_env if env is None else env)
        deadline = time.monotonic() + timeout
        while zygote is not None and zygote.state == "starting" and time.monotonic() < deadline:
            time.sleep(0.05)
        return zygote is not None and zygote.state == "ready"

    def stop(self) -> None:
        with self._lock:
            zygotes, self._zygotes, self._started = list(self._zygotes.values()), {}, False
        for zygote in zygotes:
            zygote.stop()

    # --- one command -----------------------------------------------------------------------

    def plan(self, argv: Sequence[str], *, cwd: Path | None, env: Mapping[str, str] | None,
             contain: bool) -> tuple[_Zygote, dict] | str:
        """The zygote for this command and its request, or why it runs cold."""
        argv = [str(a) for a in argv]
        if not contain:
            return "not contained"
        if len(argv) < 2 or argv[0] != sys.executable:
            return "not this interpreter"
        env = dict(os.environ if env is None else env)
        folder = os.path.realpath(cwd or os.getcwd())  # what os.getcwd() says in the command
        if any(not os.path.isabs(entry) for entry in env.get("PYTHONPATH", "/").split(os.pathsep)):
            return "a relative PYTHONPATH entry (it would be resolved in the warm interpreter's folder)"
        if argv[1] == "-m":
            if len(argv) < 3 or not all(part.isidentifier() for part in argv[2].split(".")):
                return "not python -m MODULE"
            module, script, path0, args = argv[2], None, folder, ["-m", *argv[3:]]
        elif argv[1].startswith("-"):
            return "an interpreter option"
        else:
            script = os.path.join(folder, argv[1])
            if not os.path.isfile(script) or _is_zip(script):
                return "not a source file"
            module, path0, args = None, os.path.dirname(os.path.realpath(script)), argv[1:]
            script = os.path.abspath(script)
        zygote = self._zygote(env)
        if zygote is None or zygote.state != "ready":
            return f"no warm interpreter ready for this environment ({zygote.state if zygote else 'none'})"
        if module is not None and module.partition(".")[0] in zygote.loaded:
            return f"module {module} shares a name with a preloaded one"
        for place in _import_folders(path0, folder):
            shadow = _shadowing(place, zygote.loaded)
            if shadow:
                return f"{place} holds {shadow}, named like a preloaded module"
        return zygote, {"argv": args, "cwd": folder, "env": env, "module": module, "script": script, "path0": path0}

    def run(self, argv: Sequence[str], *, timeout: float, cwd: Path | None = None,
            env: Mapping[str, str] | None = None, check: bool = True, input_text: str | None = None,
            contain: bool = False, extra_time: Callable[[], float] | None = None,
            abort: Callable[[], str] | None = None) -> Completed:
        planned = self.plan(argv, cwd=cwd, env=env, contain=contain)
        if isinstance(planned, str):
            self.counts["cold"] += 1
            return self.cold.run(argv, timeout=timeout, cwd=cwd, env=env, check=check, input_text=input_text,
                                 contain=contain, extra_time=extra_time, abort=abort)
        zygote, request = planned
        argv = [str(a) for a in argv]
        started = time.monotonic()
        with capture_file() as out, capture_file() as err, _stdin(input_text) as stdin:
            try:
                returncode, timed_out, aborted = _play(zygote.socket, request,
                                                       [stdin.fileno(), out.fileno(), err.fileno()],
                                                       timeout, extra_time, abort)
            except _Unreachable as exc:  # nothing of the command ran: it runs cold, as do later ones of its env
                zygote.fail(f"the warm interpreter stopped answering: {exc}")
                return self.run(argv, timeout=timeout, cwd=cwd, env=env, check=check, input_text=input_text,
                                contain=contain, extra_time=extra_time, abort=abort)
            stdout, stderr = read_capture(out), read_capture(err)
        self.counts["warm"] += 1
        result = Completed(argv, returncode, stdout, stderr, time.monotonic() - started, timed_out, aborted)
        return checked(result, timeout) if check else result


def _play(path: str, request: dict, fds: list[int], timeout: float, extra_time: Callable[[], float] | None,
          abort: Callable[[], str] | None) -> tuple[int | None, bool, str]:
    """Hand the command to the zygote and follow it to its end: (returncode, timed out, abort reason)."""
    body = json.dumps(request).encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        lines = _Lines(conn)
        try:
            conn.connect(path)
            socket.send_fds(conn, [_HEADER.pack(len(body))], fds)
            conn.sendall(body)
            first = lines.next()
        except (OSError, ValueError) as exc:
            raise _Unreachable(str(exc)) from None
        if "pid" not in first:
            raise _Unreachable(f"it answered {first}")
        timed_out, aborted, started = False, "", time.monotonic()
        try:
            while not lines.ready(0.25):
                budget = timeout + (extra_time() if extra_time is not None else 0.0)
                if time.monotonic() - started >= budget:
                    timed_out = True
                    break
                aborted = abort() if abort is not None else ""
                if aborted:
                    break
            if timed_out or aborted:
                conn.sendall(b"k")
                conn.settimeout(KILL_WAIT_S)
            last = lines.next()
        except BaseException:
            _kill(conn)
            raise
        if "returncode" not in last:
            raise CommandError(request["argv"], None, "", reason="the warm interpreter lost the command")
        return last["returncode"], timed_out, aborted


class _Lines:
    """JSON lines from the zygote, read unbuffered past the line asked for (so that
    select() on the socket still says when the next one comes)."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn, self.buffer = conn, b""

    def ready(self, wait_s: float) -> bool:
        return b"\n" in self.buffer or bool(select.select([self.conn], [], [], wait_s)[0])

    def next(self) -> dict:
        while b"\n" not in self.buffer:
            chunk = self.conn.recv(4096)
            if not chunk:
                return {}
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return json.loads(line)


class _Unreachable(Exception):
    """The zygote did not take the command (so none of it ran)."""


def _kill(conn: socket.socket) -> None:
    """Ctrl-C in the grader: the command's tree is ended before the exception goes on."""
    try:
        conn.sendall(b"k")
        conn.settimeout(KILL_WAIT_S)
        conn.recv(4096)
    except OSError:
        pass


def _import_folders(path0: str, cwd: str) -> list[str]:
    """Folders a command's imports search first, or that it commonly puts first: its
    sys.path[0], its working folder, and those between (a script in a subfolder that puts
    the project root on sys.path)."""
    places, here = [path0], path0
    while here.startswith(cwd + os.sep):
        here = os.path.dirname(here)
        places.append(here)
    return list(dict.fromkeys([*places, cwd]))


def _ready_line(log: Path) -> dict | None:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("ready"):
            return record
    return None


def _shadowing(folder: str, loaded: frozenset[str]) -> str:
    """An entry of ``folder`` named like a module the zygote holds: cold, it would be imported instead."""
    try:
        names = os.listdir(folder)
    except OSError:
        return ""
    suffixes = sorted(all_suffixes(), key=len, reverse=True)
    for name in names:
        stem = next((name[: -len(s)] for s in suffixes if name.endswith(s)), name)
        if stem in loaded:
            return name
    return ""


def _is_zip(path: str) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == b"PK\x03\x04"
    except OSError:
        return True


@contextmanager
def _stdin(text: str | None) -> Iterator[IO[bytes]]:
    """The command's stdin as a real file: the given text, else /dev/null (what the cold
    runner gives as DEVNULL; a zygote needs a descriptor to pass on)."""
    if text is None:
        with open(os.devnull, "rb") as handle:
            yield handle
    else:
        with input_file(text) as handle:
            yield handle


__all__ = ["SWITCH_ENV", "WarmRunner", "warm_enabled"]
