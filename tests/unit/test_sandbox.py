"""labkit.sandbox on its own: the typed sandbox file, the confined runner's interface, and
what a confined command can import and read (its launcher isolated from the workspace,
the full lab sources and labkit's own files hidden)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import labkit
from labkit.errors import CommandError, ExitStatus, SandboxSpecError
from labkit.proc import DEFAULT_RUNNER
from labkit.sandbox.enforcement import unshare_works
from labkit.sandbox.limits import SandboxPolicy
from labkit.sandbox.runner import ConfinedRunner, ConfineSpec, candidate_runner, run_confined
from labkit.sandbox.spec import load_policy, load_sandbox_file
from tests.conftest import REPO

needs_unshare = pytest.mark.skipif(not unshare_works(), reason="needs unshare (root or user namespaces)")

BAD_SANDBOX = """apiVersion: labkit/v1
kind: Sandbox
network: bridge
resources: {memroy: 3g, pids: -1, cpus: 2}
timeout: {grade: soon}
security: {read_only_rootfs: true}
mounts: []
"""


def test_a_sandbox_file_reports_every_problem_at_once_with_its_key_path(tmp_path):
    path = tmp_path / "sandbox.yaml"
    path.write_text(BAD_SANDBOX)
    with pytest.raises(SandboxSpecError) as caught:
        load_sandbox_file(path)
    problems = caught.value.problems
    assert len(problems) == 5, problems
    for expected in ("network: Input should be 'none'", "resources.memroy: unknown key (misspelt?)",
                     "resources.pids: Input should be greater than 0", "timeout.grade: 'soon' is not a duration",
                     "mounts: unknown key (misspelt?)"):
        assert any(p.startswith(expected) for p in problems), (expected, problems)
    assert caught.value.status == ExitStatus.BAD_INPUT


def test_the_sandbox_file_maps_onto_the_policy(tmp_path):
    path = tmp_path / "sandbox.yaml"
    path.write_text("apiVersion: labkit/v1\nkind: Sandbox\nresources: {memory: 512m, file_size: 8m}\n"
                    "timeout: {command: 30s}\nsecurity: {cap_drop: [NET_RAW], candidate_namespaces: false}\n")
    policy = load_policy(path)
    assert (policy.memory_bytes, policy.file_size_bytes, policy.command_timeout_s) == (512 * 2**20, 8 * 2**20, 30.0)
    assert policy.cap_drop == ("NET_RAW",) and policy.pids == 512  # the rest: the defaults
    assert not policy.candidate_namespaces and SandboxPolicy().candidate_namespaces
    assert load_policy(REPO / "grader" / "sandbox.yaml") == SandboxPolicy(request_cpus=1.0, request_memory_bytes=2**30)


def test_a_bad_sandbox_file_is_bad_input_for_review(run, tmp_path, monkeypatch):
    (tmp_path / "sandbox.yaml").write_text(BAD_SANDBOX)
    monkeypatch.setenv("LABKIT_SANDBOX", str(tmp_path / "sandbox.yaml"))
    (tmp_path / "subs").mkdir()
    (tmp_path / "subs" / "a.tar.gz").write_bytes(b"x")
    code, _, err = run("review", str(tmp_path / "subs"), "--out", str(tmp_path / "out"), "--visible-only")
    assert code == ExitStatus.BAD_INPUT and "resources.memroy: unknown key" in err


def _spec(tmp_path: Path, **changes) -> ConfineSpec:
    return ConfineSpec(policy=SandboxPolicy(), scratch=tmp_path / "scratch", **changes)


def test_the_runner_is_chosen_once_and_has_the_process_runners_interface(tmp_path):
    assert candidate_runner(None) is DEFAULT_RUNNER
    runner = candidate_runner(_spec(tmp_path).to_dict())
    assert isinstance(runner, ConfinedRunner)
    (tmp_path / "ws").mkdir()
    done = runner.run([sys.executable, "-c", "import sys; print('out'); sys.exit(3)"], timeout=60,
                      cwd=tmp_path / "ws", check=False)
    assert (done.returncode, done.stdout.strip(), done.argv[0]) == (3, "out", sys.executable)
    with pytest.raises(CommandError) as caught:
        runner.run([sys.executable, "-c", "print('said this'); raise SystemExit(4)"], timeout=60, cwd=tmp_path / "ws")
    assert caught.value.code == 4 and "said this" in caught.value.output and caught.value.argv[0] == sys.executable
    with pytest.raises(ValueError, match="unknown key"):
        ConfineSpec.from_dict({**_spec(tmp_path).to_dict(), "unshar": True})


SHADOW = """import pathlib
pathlib.Path({marker!r}).write_text("imported before confinement")
"""


@pytest.mark.parametrize("unshare", [False, pytest.param(True, marks=needs_unshare)])
def test_the_launcher_never_imports_from_the_workspace(tmp_path, unshare):
    """A workspace with its own labkit package and modules named like the ones the launcher
    imports (json, ctypes): none of them runs before (or instead of) the confinement."""
    ws, outside = tmp_path / "ws", tmp_path / "outside"
    outside.mkdir()
    for name in ("labkit/__init__.py", "labkit/sandbox/__init__.py", "labkit/sandbox/confine.py", "json.py",
                 "ctypes/__init__.py", "resource.py"):
        (ws / name).parent.mkdir(parents=True, exist_ok=True)
        (ws / name).write_text(SHADOW.format(marker=str(outside / name.replace("/", "_"))))
    done = run_confined([sys.executable, "-c", "print('ran')"], cwd=ws, env={}, timeout=60,
                        spec=_spec(tmp_path, unshare=unshare))
    assert done.returncode == 0 and done.stdout.strip() == "ran", done.stderr
    assert list(outside.iterdir()) == []


READER = """import pathlib, sys
for path in sys.argv[1:]:
    try:
        pathlib.Path(path).read_bytes() if pathlib.Path(path).is_file() else list(pathlib.Path(path).iterdir())[0]
        print("read", path)
    except (OSError, IndexError) as exc:
        print("hidden", path)
"""


@needs_unshare
def test_a_confined_command_cannot_read_hidden_checks_or_labkits_own_files(tmp_path):
    lab = tmp_path / "labs" / "lab"
    for rel in ("lab.yaml", "starter/app.py", "checks/visible/test_v.py", "checks/hidden/batches.py",
                "solution/app.py"):
        (lab / rel).parent.mkdir(parents=True, exist_ok=True)
        (lab / rel).write_text("secret" if "hidden" in rel or "solution" in rel else "public")
    (tmp_path / "ws").mkdir()
    spec = _spec(tmp_path, unshare=True, hide=(tmp_path / "labs",),
                 show=(lab / "lab.yaml", lab / "starter", lab / "checks" / "visible"))
    package = Path(labkit.__file__).resolve().parent
    targets = [lab / "checks" / "hidden" / "batches.py", lab / "solution" / "app.py", lab / "checks" / "hidden",
               package / "grading" / "plugin.py", REPO / "tests" / "conftest.py", REPO / "pyproject.toml",
               lab / "lab.yaml", lab / "starter" / "app.py", lab / "checks" / "visible" / "test_v.py",
               package / "sandbox" / "netguard" / "sitecustomize.py"]
    done = run_confined([sys.executable, "-c", READER, *map(str, targets)], cwd=tmp_path / "ws", env={},
                        timeout=60, spec=spec)
    assert done.returncode == 0, done.stderr
    verdicts = dict(reversed(line.split(" ", 1)) for line in done.stdout.splitlines())
    assert [verdicts[str(t)] for t in targets] == ["hidden"] * 6 + ["read"] * 4, done.stdout
    assert (lab / "checks" / "hidden" / "batches.py").read_text() == "secret"  # the host's copy untouched
