"""The review's parts on their own: sandbox settings from grader/sandbox.yaml, the docker
command they become, the unpacker's limits, and the CLI's exit statuses."""

from __future__ import annotations

import io
import json
import os
import tarfile

import pytest

from labkit.bundles.unpack import UnpackLimits, UnsafeArchive, safe_unpack
from labkit.cli import main
from labkit.errors import ExitStatus
from labkit.review.sandbox import docker_argv
from labkit.sandbox.enforcement import unshare_works
from labkit.sandbox.spec import load_policy, parse_size
from tests.conftest import REPO


def test_the_policy_is_read_from_grader_sandbox_yaml():
    policy = load_policy(REPO / "grader" / "sandbox.yaml")
    assert (policy.cpus, policy.memory_bytes, policy.pids) == (2.0, 3 * 1024**3, 512)
    assert (policy.grade_timeout_s, policy.total_timeout_s, policy.network) == (900.0, 1800.0, "none")
    assert parse_size("512m") == 512 * 1024**2 and parse_size(10) == 10
    with pytest.raises(ValueError):
        parse_size("lots")


def test_docker_argv_maps_every_limit_and_mounts_labs_read_only(tmp_path):
    policy = load_policy(REPO / "grader" / "sandbox.yaml")
    argv = docker_argv(policy, job_dir=tmp_path, labs_roots=[REPO / "labs"], job_file="job.json", name="r1")
    text = " ".join(argv)
    for flag in ("--network none", "--cpus 2", f"--memory {3 * 1024**3}", f"--memory-swap {3 * 1024**3}",
                 "--pids-limit 512", "--read-only", "--cap-drop ALL", "no-new-privileges", "--user 10001:10001",
                 f"{REPO / 'labs'}:/labs/0:ro", f"{tmp_path}:/review", "labkit.review.worker /review/job.json"):
        assert flag in text, flag

    # Candidate namespaces (the default): a profile that allows unshare but keeps the dangerous
    # calls refused, and a /proc the candidate's pid namespace can mount over.
    profile = json.loads((tmp_path / "seccomp.json").read_text())
    assert f"seccomp={tmp_path / 'seccomp.json'}" in text and "systempaths=unconfined" in text
    refused = {n for rule in profile["syscalls"] if rule["action"] == "SCMP_ACT_ERRNO" for n in rule["names"]}
    assert {"bpf", "keyctl", "ptrace", "setns", "io_uring_setup", "perf_event_open"} <= refused
    assert not {"unshare", "mount", "clone"} & refused and profile["defaultAction"] == "SCMP_ACT_ALLOW"


def test_without_candidate_namespaces_docker_keeps_its_default_profile_and_every_report_warns(tmp_path, monkeypatch):
    from dataclasses import replace

    from labkit.sandbox import enforcement

    policy = replace(load_policy(REPO / "grader" / "sandbox.yaml"), candidate_namespaces=False)
    text = " ".join(docker_argv(policy, job_dir=tmp_path, labs_roots=[], job_file="job.json", name="r1"))
    assert "seccomp=" not in text and "systempaths" not in text and not (tmp_path / "seccomp.json").exists()
    monkeypatch.setattr(enforcement, "docker_ready", lambda policy: (True, ""))
    assert enforcement.choose_enforcement(policy, sandbox="docker").warnings == [enforcement.DOCKER_SOURCES_WARNING]
    confined = enforcement.choose_enforcement(replace(policy, candidate_namespaces=True), sandbox="docker")
    assert (confined.mode, confined.unshare, confined.warnings) == ("docker", True, [])


def test_a_worker_that_cannot_make_namespaces_it_promised_refuses_to_grade(monkeypatch):
    from types import SimpleNamespace

    from labkit.errors import RuntimeUnavailable
    from labkit.review import worker
    from labkit.sandbox import enforcement

    monkeypatch.setattr(enforcement, "unshare_works", lambda: False)
    with pytest.raises(RuntimeUnavailable, match="would see the lab's hidden checks"):
        worker._require_namespaces(SimpleNamespace(confine={"unshare": True}))
    worker._require_namespaces(SimpleNamespace(confine={"unshare": False}))  # nothing promised: grades


def _tar(path, members):
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_unpack_reports_every_problem_at_once_and_writes_nothing(tmp_path):
    archive = _tar(tmp_path / "a.tar.gz", [("/etc/x", b"1"), ("a/../../b", b"2"), ("ok.txt", b"3" * 100)])
    with pytest.raises(UnsafeArchive) as caught:
        safe_unpack(archive, tmp_path / "out", UnpackLimits(max_member_bytes=50))
    assert len(caught.value.problems) == 3 and "ok.txt: 100 bytes, over the 50 bytes limit" in str(caught.value)
    assert not (tmp_path / "out").exists()


def test_unpack_extracts_regular_files_within_limits(tmp_path):
    archive = _tar(tmp_path / "a.tar.gz", [("w/x.py", b"print(1)\n"), ("./w/y.txt", b"y")])
    result = safe_unpack(archive, tmp_path / "out")
    assert (result.files, result.bytes) == (2, 10)
    assert (tmp_path / "out" / "w" / "y.txt").read_text() == "y"


def test_review_cli_exit_statuses_and_visible_only(labkit_home, tmp_path, capsys):
    assert main(["review", str(tmp_path / "missing.tar.gz")]) == ExitStatus.NOT_FOUND
    assert main(["start", "adder", "--seed", "2", "--workspace", str(tmp_path / "ws")]) == 0
    assert main(["solve"]) == 0
    assert main(["submit", "--out", str(tmp_path / "subs" / "s.tar.gz")]) == 0
    assert main(["stop"]) == 0
    (tmp_path / "subs" / "junk.tar.gz").write_text("junk")
    capsys.readouterr()
    code = main(["review", str(tmp_path / "subs"), "--out", str(tmp_path / "r"), "--visible-only",
                 "--sandbox", "subprocess", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == ExitStatus.OK  # a rejected submission is a finished review, not a failure
    reviewed = next(r for r in data["leaderboard"] if r["status"] == "reviewed")
    assert (reviewed["score"], reviewed["max_score"]) == (2, 2)  # visible checks only
    assert {r["status"] for r in data["leaderboard"]} == {"reviewed", "rejected"}
    assert data["sandbox"]["mode"] == "subprocess" and data["sandbox"]["warnings"]


def test_confine_refuses_to_remount_in_the_reviewers_own_namespace(tmp_path):
    """Run without unshare by mistake, the child must not touch the host's mounts: fail closed."""
    import os
    import subprocess
    import sys

    from labkit.sandbox.confine import CONFINE_FAILED, mount_namespace

    before = open("/proc/self/mountinfo").read()
    spec = {"rw": [str(tmp_path)], "mount": True, "host_mnt_ns": mount_namespace(), "cpu_s": 5,
            "memory": 2**30, "fsize": 2**20, "nofile": 64, "pids": 8, "cgroup": "", "cwd": str(tmp_path),
            "nproc": os.geteuid() != 0}
    done = subprocess.run([sys.executable, "-m", "labkit.sandbox.confine", json.dumps(spec), "--", "true"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == CONFINE_FAILED and "refusing to remount" in done.stderr
    assert open("/proc/self/mountinfo").read() == before


@pytest.mark.skipif(not unshare_works(), reason="needs unshare (root or user namespaces)")
def test_a_confined_command_reaches_the_labs_service_and_nothing_else(tmp_path):
    import http.server
    import sys
    import threading

    from labkit.sandbox.limits import SandboxPolicy
    from labkit.sandbox.runner import run_confined

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    for s in (server, other):
        threading.Thread(target=s.serve_forever, daemon=True).start()
    code = (f"import urllib.request as u\nprint(u.urlopen('http://127.0.0.1:{server.server_port}/', timeout=10).status)\n"
            f"try:\n    u.urlopen('http://127.0.0.1:{other.server_port}/', timeout=5)\n    print('other reached')\n"
            "except OSError as e:\n    print('other refused')\n")
    (tmp_path / "ws").mkdir()
    spec = {**SandboxPolicy().to_dict(), "unshare": True, "cgroup": False, "scratch": str(tmp_path / "scratch"),
            "rw": [], "services": {"mlflow": f"http://127.0.0.1:{server.server_port}"}}
    try:
        done = run_confined([sys.executable, "-c", code], cwd=tmp_path / "ws", env={}, timeout=60, spec=spec)
    finally:
        server.shutdown()
        other.shutdown()
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["200", "other", "refused"]


@pytest.mark.skipif(not unshare_works(), reason="needs unshare (root or user namespaces)")
def test_a_confined_background_process_serves_on_a_unix_socket_and_reaches_extra_services(tmp_path):
    """A grade's long-lived candidate process (an API): the grader reaches it through a Unix
    socket in the workspace, it reaches a private service the grade started, and stop() ends it."""
    import http.client
    import http.server
    import socket
    import sys
    import threading
    import time

    from labkit.sandbox.limits import SandboxPolicy
    from labkit.sandbox.runner import start_confined

    private = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=private.serve_forever, daemon=True).start()
    ws = tmp_path / "ws"
    ws.mkdir()
    code = ("import http.server, socketserver, urllib.request as u\n"
            f"status = u.urlopen('http://127.0.0.1:{private.server_port}/', timeout=10).status\n"
            "class H(http.server.BaseHTTPRequestHandler):\n"
            "    def do_GET(self):\n"
            "        self.send_response(200); self.end_headers(); self.wfile.write(str(status).encode())\n"
            "    def address_string(self): return 'unix'\n"
            "class S(socketserver.UnixStreamServer): pass\n"
            "S('api.sock', H).serve_forever()\n")
    spec = {**SandboxPolicy().to_dict(), "unshare": True, "cgroup": False, "scratch": str(tmp_path / "scratch"),
            "rw": [], "services": {}}

    class UnixConnection(http.client.HTTPConnection):
        def connect(self):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(str(ws / "api.sock"))

    process = start_confined([sys.executable, "-c", code], cwd=ws, env={}, lifetime_s=60, spec=spec,
                             log_path=tmp_path / "api.log",
                             extra_services={"private": f"http://127.0.0.1:{private.server_port}"})
    try:
        deadline = time.monotonic() + 30
        while not (ws / "api.sock").exists() and process.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        connection = UnixConnection("localhost", timeout=10)
        connection.request("GET", "/")
        answer = connection.getresponse().read().decode()
    finally:
        process.stop()
        private.shutdown()
    assert answer == "200", process.output()
    assert not process.alive()


# ---- what a review refuses before it reads or starts anything -----------------------------------


@pytest.mark.timeout(120)  # a hang guard, not a timing: on the old code the open waited forever
def test_a_fifo_given_as_a_submission_is_refused_unread(run, tmp_path):
    fifo = tmp_path / "pipe.tar.gz"
    os.mkfifo(fifo)
    code, out, err = run("review", str(fifo), "--out", str(tmp_path / "out"), "--visible-only",
                         "--sandbox", "subprocess", "--json")
    assert code == ExitStatus.OK, err
    (row,) = json.loads(out)["leaderboard"]
    assert row["status"] == "rejected" and "a FIFO (named pipe), not a regular file; refused unread" in row["reason"]


class FakeKind:
    """`kind get clusters` answered from a list; records every argv (nothing real runs)."""

    def __init__(self, clusters: list[str]):
        self.clusters, self.calls = clusters, []

    def run(self, argv, *, timeout, check=True, **kwargs):
        from labkit.proc import Completed

        self.calls.append(list(argv))
        assert argv[1:] == ["get", "clusters"], argv  # the guard only looks
        return Completed(list(argv), 0, "\n".join(self.clusters) + "\n", "", 0.0)


@pytest.fixture
def fake_kind_tool(monkeypatch):
    from labkit.kube import tools

    monkeypatch.setattr(tools, "find_tool", lambda name: f"/fake/bin/{name}")
    monkeypatch.delenv("LABKIT_KIND_CLUSTER", raising=False)
    monkeypatch.delenv("LABKIT_KIND_CONFIG", raising=False)


def test_a_review_of_a_kind_lab_is_refused_while_the_reviewers_kind_lab_runs(fake_kind_tool):
    from labkit.errors import LabRunning
    from labkit.review.running import guard_kind_review

    kind = FakeKind(["labkit"])
    running = {"lab": "broken-deployment", "runtime": "kind", "workspace": "/home/r/bd", "home": "/home/r/.labkit",
               "cluster": "labkit"}
    with pytest.raises(LabRunning) as refused:
        guard_kind_review("broken-deployment", running_lab=running, runner=kind,
                          list_namespaces=lambda name: pytest.fail("the session already says"))
    message = str(refused.value)
    assert "your lab broken-deployment is running (workspace /home/r/bd)" in message and "'labkit'" in message
    assert "labkit stop" in message and refused.value.status == ExitStatus.STATE_CONFLICT == 12
    assert refused.value.holder == running


def test_a_review_of_a_kind_lab_is_refused_while_the_cluster_holds_labkit_namespaces(fake_kind_tool):
    from labkit.errors import LabRunning
    from labkit.review.running import guard_kind_review

    local_lab = {"lab": "adder", "runtime": "local", "workspace": "/w", "home": "/h", "cluster": ""}
    asked = []
    with pytest.raises(LabRunning) as refused:  # a lab started from another LABKIT_HOME
        guard_kind_review("kube-echo", running_lab=local_lab, runner=FakeKind(["other", "labkit"]),
                          list_namespaces=lambda name: asked.append(name) or ["labkit", "broken-deployment"])
    assert asked == ["labkit"]
    assert "holds labkit's namespace(s) broken-deployment, labkit" in str(refused.value)
    assert refused.value.holder == {"cluster": "labkit", "namespaces": ["broken-deployment", "labkit"]}
    # An empty cluster (or none at all) is the review's to use: no refusal.
    guard_kind_review("kube-echo", running_lab=local_lab, runner=FakeKind(["labkit"]), list_namespaces=lambda n: [])
    guard_kind_review("kube-echo", running_lab=None, runner=FakeKind([]),
                      list_namespaces=lambda n: pytest.fail("no cluster, nothing to list"))


def test_the_review_of_a_kind_lab_leaves_the_reviewers_running_kind_lab_alone(run, tmp_path, labkit_home, monkeypatch):
    """The whole path: the reviewer's session says a kind lab runs; `labkit review` of a kind-lab
    submission exits 12 with an error row naming it, and the session is untouched. kind is
    hidden from this test (HOME and PATH), so nothing could reach a real cluster even if the
    guard failed: the review would then fail as 'kind is not installed' instead."""
    import shutil

    from labkit import lifecycle
    from labkit.bundles.submit import build_submission
    from labkit.session import Session, write_json_atomic
    from labkit.ui import UI

    ws = tmp_path / "ws"
    lifecycle.start_lab(lab_id="adder", seed=9, workspace=ws, ui=UI())
    lifecycle.stop_lab(ui=UI())
    adder, _ = build_submission(workspace=ws, out=tmp_path / "adder.tar.gz")
    with tarfile.open(adder) as src, tarfile.open(tmp_path / "subs.tar.gz", "w:gz") as dst:
        for member in src.getmembers():  # the same submission, claiming the kind-only lab kube-echo
            data = src.extractfile(member).read()
            if member.name == "submission.json":
                data = json.dumps({**json.loads(data), "lab": "kube-echo"}).encode()
            member.size = len(data)
            dst.addfile(member, io.BytesIO(data))
    session = Session("broken-deployment", 3, "kind", str(tmp_path / "bd"), str(tmp_path / "state"), "2026-12-01T00:00:00",
                      runtime_info={"cluster": {"name": "labkit", "kubeconfig": "/nowhere", "context": "kind-labkit"}})
    write_json_atomic(labkit_home / "session.json", session.to_dict())
    before = (labkit_home / "session.json").read_bytes()
    monkeypatch.setenv("HOME", str(tmp_path / "nohome"))  # no ~/go/bin/kind, no offline cache
    monkeypatch.delenv("LABKIT_CACHE", raising=False)
    monkeypatch.setenv("PATH", ":".join(p for p in os.environ["PATH"].split(":") if not shutil.which("kind", path=p)))
    code, out, err = run("review", str(tmp_path / "subs.tar.gz"), "--out", str(tmp_path / "out"), "--visible-only",
                         "--sandbox", "subprocess", "--json")
    assert code == ExitStatus.STATE_CONFLICT, (out, err)
    (row,) = json.loads(out)["leaderboard"]
    assert row["status"] == "error" and "your lab broken-deployment is running" in row["reason"]
    result = json.loads(next((tmp_path / "out" / "submissions").glob("*/result.json")).read_text())
    assert result["blocked_by"]["lab"] == "broken-deployment" and not result["final"]
    assert (labkit_home / "session.json").read_bytes() == before


# ---- the review package's shape ------------------------------------------------------------------

REVIEW_LAYERS = [  # lowest first: a module imports labkit.review modules of lower layers only
    {"jobs"}, {"report", "intake", "running"}, {"worker"}, {"kube_entry", "backends.local", "backends.k8s"},
    {"backends"}, {"batch"},
]


def _review_imports(module: str) -> set[str]:
    """labkit.review modules `module` imports, at the top or inside functions."""
    import ast

    path = REPO / "src" / "labkit" / "review" / (module.replace(".", "/") + ("/__init__.py" if module == "backends" else ".py"))
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) else (
            [a.name for a in node.names] if isinstance(node, ast.Import) else [])
        found |= {n.removeprefix("labkit.review.") for n in names if n.startswith("labkit.review.")}
    return found


def test_review_modules_import_only_downwards_and_backends_come_from_the_table():
    import inspect

    from labkit.review.backends import BACKENDS, Backend

    layer_of = {m: i for i, layer in enumerate(REVIEW_LAYERS) for m in layer}
    for module, layer in layer_of.items():
        for imported in _review_imports(module):
            if imported in layer_of:
                assert layer_of[imported] < layer, f"{module} imports {imported}: not below it"
    assert not {"backends.local", "backends.k8s"} & _review_imports("batch")  # only through BACKENDS
    assert set(BACKENDS) == {"local", "k8s"}
    for name, cls in BACKENDS.items():
        assert cls.name == name and callable(getattr(cls, "review", None)), name
        assert inspect.signature(cls.review) == inspect.signature(Backend.review), name  # the one interface
        assert inspect.signature(cls.__init__) == inspect.signature(Backend.__init__), name


def test_a_record_and_a_job_round_trip_through_one_schema_and_refuse_strangers(tmp_path):
    from labkit.review.jobs import JobFolder, ReviewJob, ReviewRecord, SchemaError

    job = ReviewJob(id="x", job_dir="/review", archive="/review/x.tar.gz", archive_sha256="ab", hidden=True,
                    policy={"grade_timeout_s": 9}, confine={"unshare": False}, sandbox={"mode": "subprocess"})
    folder = JobFolder(tmp_path / "x")
    folder.reset()
    folder.write_job(job)
    assert folder.read_job() == job
    record = ReviewRecord.error(job, archive="/subs/x.tar.gz", reason="r").with_(flags=["f"])
    folder.write_result(record.with_(status="rejected", final=True))
    assert folder.finished(hidden=True) == record.with_(status="rejected", final=True)
    assert json.loads(folder.result_file.read_text())["flags"] == ["f"]
    with pytest.raises(SchemaError, match="unknown field"):
        ReviewJob.from_dict({**job.to_dict(), "polcy": {}})
    with pytest.raises(SchemaError, match="status"):
        ReviewRecord.from_dict({**record.to_dict(), "status": "passed"})
    folder.result_file.write_text(json.dumps({**record.to_dict(), "surprise": 1}))
    assert folder.read_result() is None  # not ours: the review is redone, not trusted
