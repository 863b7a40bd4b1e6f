"""The review's parts on their own: sandbox settings from grader/sandbox.yaml, the docker
command they become, the unpacker's limits, and the CLI's exit statuses."""

from __future__ import annotations

import io
import json
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
