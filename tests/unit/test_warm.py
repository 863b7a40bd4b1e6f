"""The warm interpreter runs a candidate command as a cold `python` would: each case is
run both ways (the cold ProcessRunner, contained, and the WarmRunner) and must give the
same exit status, stdout and stderr; and each goes the way it should (warm, or cold when
warm could tell)."""

from __future__ import annotations

import os
import sys
import textwrap
import time
from pathlib import Path

import pytest

from labkit.proc import DEFAULT_RUNNER, can_contain
from labkit.warm.client import WarmRunner

PRELOAD = ["json", "decimal", "csv"]
ENV = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}  # as a grade gives candidates


@pytest.fixture(scope="module")
def warm(tmp_path_factory):
    runner = WarmRunner(PRELOAD, base_env=dict(ENV), folder=tmp_path_factory.mktemp("zygote"))
    runner.start()
    assert runner.wait_ready(60), runner.note
    yield runner
    runner.stop()


def both(warm: WarmRunner, folder: Path, args: list[str], *, expect: str = "warm", **kw):
    kw = {"timeout": 30, "cwd": folder, "env": dict(ENV), "check": False, "contain": True, **kw}
    before = dict(warm.counts)
    hot = warm.run([sys.executable, *args], **kw)
    assert warm.counts[expect] == before[expect] + 1, f"expected {args} to run {expect}: {warm.plan([sys.executable, *args], cwd=folder, env=kw['env'], contain=True)}"
    cold = DEFAULT_RUNNER.run([sys.executable, *args], **kw)
    assert (hot.returncode, hot.stdout, hot.stderr) == (cold.returncode, cold.stdout, cold.stderr)
    return hot


def write(folder: Path, name: str, source: str) -> None:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))


def test_argv_paths_env_stdin_and_exit_status_are_a_cold_runs(warm, tmp_path):
    write(tmp_path, "tool.py", """
        import os, sys
        print(sys.argv, sys.path[0], __file__, __name__, __spec__, os.getcwd(), os.environ.get("MARK"))
        print(sys.stdin.read().upper(), sys.flags.safe_path, sys.flags.ignore_environment, sys.dont_write_bytecode)
        print("to stderr", file=sys.stderr)
        raise SystemExit(3)
    """)
    env = {**ENV, "MARK": "seen"}
    # An environment of its own: its first command runs cold, and starts the zygote of the next.
    both(warm, tmp_path, ["tool.py", "--x", "1"], env=env, input_text="some input", expect="cold")
    assert warm.wait_ready(60, env=env), warm.note
    done = both(warm, tmp_path, ["tool.py", "--x", "1"], env=env, input_text="some input")
    assert done.returncode == 3 and "seen" in done.stdout and "SOME INPUT" in done.stdout


def test_a_script_in_a_subfolder_gets_that_folder_as_path0(warm, tmp_path):
    write(tmp_path, "sub/helper.py", "VALUE = 'from sub'\n")
    write(tmp_path, "sub/tool.py", "import sys, helper\nprint(sys.path[0], helper.VALUE, sys.argv[0])\n")
    assert "from sub" in both(warm, tmp_path, ["sub/tool.py"]).stdout


@pytest.mark.parametrize("body", [
    "def f():\n    raise ValueError('boom')\nf()\n",
    "import sys\nsys.exit('a message')\n",
    "raise SystemExit\n",
    "import json\njson.loads('{')\n",
    "try:\n    1/0\nexcept ZeroDivisionError as e:\n    raise KeyError('chained') from e\n",
])
def test_errors_print_and_exit_as_cold(warm, tmp_path, body):
    write(tmp_path, "bad.py", body)
    both(warm, tmp_path, ["bad.py"])


def test_threads_are_joined_and_atexit_runs_at_the_end(warm, tmp_path):
    write(tmp_path, "late.py", """
        import atexit, threading, time
        atexit.register(lambda: print("atexit ran"))
        threading.Thread(target=lambda: (time.sleep(0.5), print("thread finished"))).start()
        print("main done")
    """)
    assert both(warm, tmp_path, ["late.py"]).stdout == "main done\nthread finished\natexit ran\n"


def test_python_m_runs_a_package_module_with_relative_imports(warm, tmp_path):
    write(tmp_path, "pipeline/__init__.py", "")
    write(tmp_path, "pipeline/common.py", "NAME = 'common'\n")
    write(tmp_path, "pipeline/monitor.py", """
        import sys
        from .common import NAME
        print(__name__, __spec__.name, sys.argv, sys.path[0], NAME)
        if __name__ == "__main__":
            raise SystemExit(len(sys.argv))
    """)
    assert both(warm, tmp_path, ["-m", "pipeline.monitor", "a", "b"]).returncode == 3
    both(warm, tmp_path, ["-m", "pipeline.missing"])


@pytest.mark.parametrize("module, script, source", [
    ("json", "tool.py", "import json\nprint(json.MARK)\n"),  # in the script's own folder
    # in the working folder, which a script in a subfolder puts on sys.path itself
    ("csv", "scripts/run.py", "import os, sys\nsys.path.insert(0, os.getcwd())\nimport csv\nprint(csv.MARK)\n"),
])
def test_a_workspace_module_named_like_a_preloaded_one_runs_cold(warm, tmp_path, module, script, source):
    write(tmp_path, f"{module}.py", f"MARK = 'the candidate {module}'\n")
    write(tmp_path, script, source)
    assert f"the candidate {module}" in both(warm, tmp_path, [script], expect="cold").stdout


def test_other_interpreter_options_and_python_variables_run_cold(warm, tmp_path):
    write(tmp_path, "tool.py", "import sys\nprint(sys.flags.optimize, sys.path[1] if len(sys.path) > 1 else '')\n")
    both(warm, tmp_path, ["-O", "tool.py"], expect="cold")
    both(warm, tmp_path, ["tool.py"], expect="cold", env={**ENV, "PYTHONPATH": str(tmp_path / "extra")})


def test_each_warm_command_draws_fresh_randomness(warm, tmp_path):
    write(tmp_path, "draw.py", "import random\nprint(random.random())\n")
    kw = {"timeout": 30, "cwd": tmp_path, "env": dict(ENV), "check": False, "contain": True}
    draws = {warm.run([sys.executable, "draw.py"], **kw).stdout for _ in range(3)}
    assert len(draws) == 3


def _started_then_hung(tmp_path: Path) -> None:
    write(tmp_path, "hang.py", """
        import os, subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
        open("child.pid", "w").write(str(child.pid))
        print("started", flush=True)
        time.sleep(120)
    """)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not can_contain(), reason="needs pid namespaces (root)")
def test_a_timeout_ends_the_whole_tree_even_what_left_the_session(warm, tmp_path):
    _started_then_hung(tmp_path)
    t0 = time.monotonic()
    done = warm.run([sys.executable, "hang.py"], timeout=3, cwd=tmp_path, env=dict(ENV), check=False,
                    contain=True)
    assert done.timed_out and done.stdout == "started\n" and time.monotonic() - t0 < 20
    # The child's pid is its namespace's; the namespace is gone, so nothing of it runs anywhere.
    leftovers = [p for p in Path("/proc").iterdir() if p.name.isdigit() and "time.sleep(120)" in _cmdline(p)]
    assert not [p for p in leftovers if _alive(int(p.name))]


def test_abort_stops_the_command_with_the_reason(warm, tmp_path):
    _started_then_hung(tmp_path)
    t0 = time.monotonic()
    done = warm.run([sys.executable, "hang.py"], timeout=60, cwd=tmp_path, env=dict(ENV), check=False,
                    contain=True, abort=lambda: "mlflow is down" if time.monotonic() - t0 > 2 else "")
    assert done.aborted == "mlflow is down" and not done.timed_out and time.monotonic() - t0 < 20


@pytest.mark.skipif(not can_contain(), reason="needs pid namespaces (root)")
def test_a_contained_command_sees_only_its_own_processes(warm, tmp_path):
    write(tmp_path, "ps.py", "import os\nprint(os.getpid(), sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))\n")
    assert both(warm, tmp_path, ["ps.py"]).stdout == "1 [1]\n"


def test_a_dead_zygote_means_cold_runs_not_lost_commands(tmp_path):
    runner = WarmRunner(PRELOAD, base_env=dict(ENV), folder=tmp_path)
    runner.start()
    assert runner.wait_ready(60), runner.note
    zygote = next(iter(runner._zygotes.values()))
    DEFAULT_RUNNER.terminate(zygote.pid, grace_s=2)
    write(tmp_path, "tool.py", "print('ran')\n")
    done = runner.run([sys.executable, "tool.py"], timeout=30, cwd=tmp_path, env=dict(ENV), check=False,
                      contain=True)
    assert done.stdout == "ran\n" and runner.counts == {"warm": 0, "cold": 1} and "stopped answering" in runner.note
    runner.stop()


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@pytest.mark.skipif(not can_contain(), reason="needs pid namespaces (root)")
def test_an_uncaught_keyboard_interrupt_exits_as_cold(warm, tmp_path):
    write(tmp_path, "interrupted.py", "raise KeyboardInterrupt\n")
    assert both(warm, tmp_path, ["interrupted.py"]).returncode == 130


def test_main_has_the_module_attributes_of_a_cold_main(warm, tmp_path):
    write(tmp_path, "names.py", "print(__annotations__, sorted(k for k in globals() if k.startswith('__')))\n")
    both(warm, tmp_path, ["names.py"])


def test_a_folder_reached_through_a_symlink_shows_its_real_path(warm, tmp_path):
    write(tmp_path, "real/pkg/__init__.py", "")
    write(tmp_path, "real/pkg/__main__.py", "import os, sys\nprint(__file__, sys.argv[0], sys.path[0], os.getcwd())\n")
    write(tmp_path, "real/t.py", "import os, sys\nprint(__file__, sys.path[0], os.getcwd())\n")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    both(warm, tmp_path / "link", ["t.py"])
    both(warm, tmp_path / "link", ["-m", "pkg"])


def test_a_relative_pythonpath_runs_cold(warm, tmp_path):
    write(tmp_path, "src/helper.py", "NAME = 'helper from src'\n")
    write(tmp_path, "t.py", "import helper\nprint(helper.NAME)\n")
    env = {**ENV, "PYTHONPATH": "src"}
    assert warm.plan([sys.executable, "t.py"], cwd=tmp_path, env=env, contain=True).startswith("a relative PYTHONPATH")


def test_candidate_code_cannot_use_the_zygote(warm, tmp_path):
    """Only the grader may ask the zygote for a command: a candidate's program that finds its
    socket (it is a file on this machine) is refused, so it can neither start a process that
    outlives its run nor stand in for the zygote to fake later commands' results."""
    write(tmp_path, "intrude.py", """
        import json, os, socket, struct, sys
        answers = []
        for path in sys.argv[1:]:
            with socket.socket(socket.AF_UNIX) as conn:
                try:
                    conn.connect(path)
                    body = json.dumps({"argv": ["x.py"], "cwd": "/", "env": {}, "module": None,
                                       "script": "/dev/null", "path0": "/"}).encode()
                    null = os.open(os.devnull, os.O_RDWR)
                    socket.send_fds(conn, [struct.pack("!I", len(body))], [null, null, null])
                    conn.sendall(body)
                    conn.settimeout(5)
                    answers.append(conn.recv(4096))
                except OSError as exc:
                    answers.append(type(exc).__name__.encode())
        print(len(answers), [a for a in answers if a.startswith(b"{")])
    """)
    sockets = [z.socket for z in warm._zygotes.values() if z.socket]
    done = warm.run([sys.executable, "intrude.py", *sockets], timeout=30, cwd=tmp_path, env=dict(ENV), check=False,
                    contain=True)
    found, accepted = done.stdout.split(" ", 1)
    assert int(found) >= 1 and accepted.strip() == "[]", done.stdout + done.stderr


@pytest.fixture(scope="module")
def preload_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("preload")
    write(folder, "marks_env.py", "import os\nos.environ['SET_ON_IMPORT'] = 'yes'\n")
    write(folder, "holds_loop.py", "import asyncio\nLOOP = asyncio.new_event_loop()\n")
    return folder


def test_what_preloaded_modules_set_up_on_import_is_the_commands_own(preload_dir, tmp_path):
    """Environment variables a module sets on import stay set; an event loop it made is the
    command's own (a fork would share its epoll fd with every other command)."""
    env = {**ENV, "PYTHONPATH": str(preload_dir)}
    runner = WarmRunner(["marks_env", "holds_loop"], base_env=env, folder=tmp_path / "z", cold=DEFAULT_RUNNER)
    (tmp_path / "z").mkdir()
    runner.start()
    try:
        assert runner.wait_ready(60), runner.note
        write(tmp_path, "probe.py", """
            import os, marks_env, holds_loop
            epolls = [f for f in os.listdir("/proc/self/fd") if "eventpoll" in os.path.realpath(f"/proc/self/fd/{f}")
                      or "eventpoll" in (os.readlink(f"/proc/self/fd/{f}") if os.path.islink(f"/proc/self/fd/{f}") else "")]
            print(os.environ.get("SET_ON_IMPORT"), len(epolls), holds_loop.LOOP.is_closed())
        """)
        kw = {"timeout": 30, "cwd": tmp_path, "env": env, "check": False, "contain": True}
        hot, cold = runner.run([sys.executable, "probe.py"], **kw), DEFAULT_RUNNER.run([sys.executable, "probe.py"], **kw)
        assert runner.counts["warm"] == 1 and hot.stdout == cold.stdout == "yes 1 False\n", (hot, cold)
    finally:
        runner.stop()
