"""The bad-input corpus: malformed and malicious submissions of the `adder` test lab,
made here in test code, reviewed in ONE batch next to an honest submission.

Each case states its expected outcome (rejected with a clear reason, reviewed with a
flag, or reviewed and scored low), and the batch as a whole must leave the
reviewer's machine and the other submissions untouched: the honest submission keeps
full marks, nothing is written outside the review folder, no process survives.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from labkit import lifecycle
from labkit.bundles.submit import build_submission
from labkit.review.batch import review_submissions
from labkit.sandbox.limits import SandboxPolicy
from labkit.ui import UI
from tests.conftest import FIXTURE_LABS

SUM = "import sys\nprint(int(sys.argv[1]) + int(sys.argv[2]))\n"


def _member(name: str, data: bytes = b"", **attrs) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    for key, value in attrs.items():
        setattr(info, key, value)
    if info.type != tarfile.REGTYPE:
        info.size = 0
    return info, data


def _pack(path: Path, members: list[tuple[tarfile.TarInfo, bytes]], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if info.type == tarfile.REGTYPE else None)
    return path


class Base:
    """The honest submission's members, to copy and spoil."""

    def __init__(self, archive: Path):
        with tarfile.open(archive) as tar:
            self.files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}

    def members(self, **changes: bytes | None) -> list[tuple[tarfile.TarInfo, bytes]]:
        files = {**self.files, **changes}
        return [_member(name, data) for name, data in files.items() if data is not None]

    def with_record(self, files: dict[str, bytes] | None = None, **fields) -> list[tuple[tarfile.TarInfo, bytes]]:
        record = json.loads(self.files["submission.json"])
        record.update(fields)
        record = {k: v for k, v in record.items() if v is not None}
        return self.members(**{"submission.json": json.dumps(record).encode(), **(files or {})})


def _code(body: str) -> bytes:
    return body.encode()


# name -> (build(dir, base, outside) -> archive, expectation(record, outside))
CASES: dict[str, tuple[Callable, Callable]] = {}


def case(name: str, expect: Callable):
    def register(build: Callable) -> Callable:
        CASES[name] = (build, expect)
        return build
    return register


def rejected(*needles: str) -> Callable:
    def check(record, outside):
        assert record["status"] == "rejected" and record["final"], record
        for needle in needles:
            assert needle in record["reason"], (needle, record["reason"])
    return check


def reviewed(score: float | None = None, flag: str = "", below: float | None = None, note: str = "") -> Callable:
    def check(record, outside):
        assert record["status"] == "reviewed", record.get("reason")
        assert not note or any(note in n for n in record["notes"]), record["notes"]
        if score is not None:
            assert record["score"] == score, record["grade"]["checks"]
        if below is not None:
            assert record["score"] < below
        if flag:
            assert any(flag in f for f in record["flags"]), record["flags"]
        else:
            assert not record["flags"], record["flags"]
    return check


@case("honest", reviewed(score=6))
def _honest(d, base, outside):
    return _pack(d / "honest.tar.gz", base.members())


@case("path-traversal", rejected("a path with '..'"))
def _traversal(d, base, outside):
    return _pack(d / "traversal.tar.gz", base.members() + [_member("workspace/../../../evil.txt", b"x")])


@case("absolute-path", rejected("an absolute path"))
def _absolute(d, base, outside):
    return _pack(d / "absolute.tar.gz", base.members() + [_member(str(outside / "abs.txt"), b"x")])


@case("symlink-escape", rejected("a symlink to '/etc/passwd'"))
def _symlink(d, base, outside):
    link = _member("workspace/adder.py", type=tarfile.SYMTYPE, linkname="/etc/passwd")
    return _pack(d / "symlink.tar.gz", base.members(**{"workspace/adder.py": None}) + [link])


@case("symlink-relative-escape", rejected("outside the submission"))
def _symlink_rel(d, base, outside):
    return _pack(d / "symlink-rel.tar.gz",
                 base.members() + [_member("workspace/up", type=tarfile.SYMTYPE, linkname="../../..")])


@case("hardlink-escape", rejected("a hard link to '../../etc/shadow'"))
def _hardlink(d, base, outside):
    return _pack(d / "hardlink.tar.gz",
                 base.members() + [_member("workspace/h", type=tarfile.LNKTYPE, linkname="../../etc/shadow")])


@case("device-file", rejected("a device file or FIFO"))
def _device(d, base, outside):
    dev = _member("workspace/null", type=tarfile.CHRTYPE, devmajor=1, devminor=3)
    fifo = _member("workspace/pipe", type=tarfile.FIFOTYPE)
    return _pack(d / "device.tar.gz", base.members() + [dev, fifo])


@case("member-count-bomb", rejected("more than 5000 members"))
def _many(d, base, outside):
    return _pack(d / "many.tar.gz", base.members() + [_member(f"workspace/f{i}.txt") for i in range(5001)])


@case("ratio-bomb", rejected("its packed size", "archive bomb"))
def _ratio(d, base, outside):
    zeros = bytes(30 * 1024 * 1024)
    return _pack(d / "bomb.tar.gz", base.members() + [_member(f"workspace/z{i}", zeros) for i in range(3)])


@case("huge-member", rejected("over the 64 MB limit for one file"))
def _huge(d, base, outside):
    return _pack(d / "huge.tar", base.members() + [_member("workspace/big.bin", bytes(65 * 1024 * 1024))], mode="w")


@case("zip-archive", rejected("a zip archive, not a labkit submission"))
def _zip(d, base, outside):
    path = d / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.txt", bytes(10 * 1024 * 1024))
    return path


@case("truncated", rejected("truncated or corrupt"))
def _truncated(d, base, outside):
    whole = _pack(d / "whole.tmp", base.members()).read_bytes()
    (d / "whole.tmp").unlink()
    path = d / "truncated.tar.gz"
    path.write_bytes(whole[: len(whole) * 2 // 3])
    return path


@case("not-an-archive", rejected("not a tar archive"))
def _not_archive(d, base, outside):
    path = d / "notes.tar.gz"
    path.write_text("my solution is in the email\n")
    return path


@case("duplicate-member", rejected("appears twice"))
def _duplicate(d, base, outside):
    return _pack(d / "dup.tar.gz", base.members() + [_member("workspace/adder.py", _code(SUM))])


@case("missing-manifest", rejected("submission.json: missing"))
def _no_manifest(d, base, outside):
    return _pack(d / "nomanifest.tar.gz", base.members(**{"submission.json": None}))


@case("bad-json", rejected("submission.json: not valid JSON"))
def _bad_json(d, base, outside):
    return _pack(d / "badjson.tar.gz", base.members(**{"submission.json": b"{'lab': adder"}))


@case("unknown-lab", rejected("no lab named 'no-such-lab'"))
def _unknown_lab(d, base, outside):
    return _pack(d / "unknownlab.tar.gz", base.with_record(lab="no-such-lab"))


@case("seed-missing", rejected("seed: missing or not a non-negative integer"))
def _no_seed(d, base, outside):
    return _pack(d / "noseed.tar.gz", base.with_record(seed=None))


DEEP = 100_000  # levels: far past Python's recursion limit


@case("deeply-nested-manifest", rejected("submission.json: nested too deeply to read"))
def _deep_manifest(d, base, outside):
    return _pack(d / "deepmanifest.tar.gz", base.members(**{"submission.json": b"[" * DEEP + b"]" * DEEP}))


@case("deeply-nested-integrity", rejected("integrity.json: nested 201 levels deep (limit 32 levels)"))
def _deep_integrity(d, base, outside):
    # Under the recursion limit, so it parses: the depth limit still refuses it (claims travel on in the record).
    return _pack(d / "deepintegrity.tar.gz", base.members(**{"integrity.json": b'{"a":' * 200 + b"{}" + b"}" * 200}))


@case("deeply-nested-packed-manifest", rejected("workspace/.labkit/manifest.json: nested too deeply to read"))
def _deep_packed_manifest(d, base, outside):
    return _pack(d / "deeppacked.tar.gz",
                 base.members(**{"workspace/.labkit/manifest.json": b'{"a":' * DEEP + b"1" + b"}" * DEEP}))


@case("member-2000-folders-deep", rejected("nested 2001 folders deep", "(limit 64 folders"))
def _deep_member(d, base, outside):
    return _pack(d / "deepmember.tar.gz", base.members() + [_member("workspace/" + "a/" * 2000 + "f.txt", b"x")])


@case("fifo-among-the-submissions", rejected("pipe.tar.gz: a FIFO (named pipe), not a regular file; refused unread"))
def _fifo(d, base, outside):
    os.mkfifo(d / "pipe.tar.gz")  # opening it for reading would wait for a writer forever
    return d / "pipe.tar.gz"


@case("names-a-fixture-lab-without-hidden-checks",
      rejected("hidden checks of platform", "it is not a candidate copy", "--visible-only"))
def _fixture_lab(d, base, outside):
    # tests/fixtures/labs/platform has a solution and no hidden checks: not the wheel's candidate copy.
    return _pack(d / "fixturelab.tar.gz", base.with_record(lab="platform"))


@case("tampered-protected-file", reviewed(score=6, flag="protected file changed: data/numbers.txt"))
def _protected(d, base, outside):
    return _pack(d / "protected.tar.gz", base.members(**{"workspace/data/numbers.txt": b"1 1 1\n"}))


@case("edited-after-submit", reviewed(score=6, flag="differ from the hashes recorded at submit"))
def _edited(d, base, outside):
    return _pack(d / "edited.tar.gz", base.members(**{"workspace/adder.py": _code(SUM + "# later\n")}))


@case("seed-changed", reviewed(flag="the workspace was rendered for adder seed 9, but the submission says adder seed 10"))
def _seed_changed(d, base, outside):
    return _pack(d / "seedchanged.tar.gz", base.with_record(seed=10))


@case("inflated-self-check", reviewed(below=6, flag="self-check claimed 2 visible points"))
def _inflated(d, base, outside):
    starter = (FIXTURE_LABS / "adder" / "starter" / "adder.py").read_bytes()
    return _pack(d / "inflated.tar.gz", base.with_record(
        files={"workspace/adder.py": starter}, last_grade={"score": 2, "max_score": 2, "percent": 100}))


@case("ran-hidden-checks", reviewed(score=6, flag="ran the hidden checks 2 time(s)"))
def _ran_hidden(d, base, outside):
    grades = [{"finished_at": "2026-11-25T10:00:00+00:00", "hidden": h, "score": 1} for h in (True, False, True)]
    stamps = {**json.loads(base.files["submission.json"])["timestamps"], "grades": grades}
    return _pack(d / "ranhidden.tar.gz", base.with_record(timestamps=stamps))


@case("path-collides-with-a-file", rejected("data/numbers.txt: is both a file and a folder"))
def _collide(d, base, outside):
    return _pack(d / "collide.tar.gz", base.members(**{"workspace/data/numbers.txt/inner.txt": b"x"}))


@case("path-collides-with-the-lab", reviewed(below=6, flag="differ from the hashes", note="not placed: adder.py/inner.txt"))
def _collide_lab(d, base, outside):
    # adder.py is gone and a folder of that name is shipped: it cannot be placed over the
    # lab's adder.py, which is then removed as the candidate deleted it: a note, a low score.
    return _pack(d / "collidelab.tar.gz", base.members(**{"workspace/adder.py": None,
                                                          "workspace/adder.py/inner.txt": b"x"}))


TAMPERED_CHECK = b"import pytest\n\n@pytest.mark.check(points=100)\ndef test_free():\n    pass\n"


@case("tampered-checks", reviewed(below=6, flag="adds test or pytest files the starter did not have"))
def _tampered_checks(d, base, outside):
    starter = (FIXTURE_LABS / "adder" / "starter" / "adder.py").read_bytes()
    return _pack(d / "checks.tar.gz", base.members(**{
        "workspace/adder.py": starter, "workspace/checks/hidden/test_hidden.py": TAMPERED_CHECK,
        "workspace/conftest.py": b"def pytest_collection_modifyitems(items):\n    items.clear()\n"}))


def _candidate(name: str, source: str):
    """A submission whose adder.py is ``source``, packed as `labkit submit` would (hashes match)."""
    def build(d, base, outside):
        code = source.replace("OUTSIDE", str(outside))
        integrity = json.loads(base.files["integrity.json"])
        integrity["current"]["adder.py"] = __import__("hashlib").sha256(code.encode()).hexdigest()
        return _pack(d / f"{name}.tar.gz", base.members(**{"workspace/adder.py": _code(code),
                                                          "integrity.json": json.dumps(integrity).encode()}))
    return build


HARD_CODED = "import sys\nprint({('2', '3'): 5, ('7', '0'): 7}.get(tuple(sys.argv[1:3]), 0))\n"
case("hard-coded-outputs", reviewed(score=4))(_candidate("hardcoded", HARD_CODED))  # visible pass, hidden fail

FORK_BOMB = """import os, sys, time
if len(sys.argv) > 1 and sys.argv[1] == '2':
    while True:
        try:
            os.fork()
        except OSError:
            time.sleep(0.5)
"""
NETWORK = """import socket
try:
    socket.create_connection(("1.1.1.1", 80), timeout=3)
    raise SystemExit("reached the network")
except OSError:
    pass
"""
ESCAPE = """import os, pathlib
for target in ("OUTSIDE/escaped.txt", os.path.expanduser("~/escaped.txt"), "/tmp/labkit-corpus-escaped.txt"):
    try:
        pathlib.Path(target).write_text("was here")
    except OSError:
        pass
"""
LOOP = "import sys\nif sys.argv[1] == '2':\n    while True:\n        pass\n"
HUGE_OUTPUT = "import sys\nif sys.argv[1] == '2':\n    sys.stdout.write('x' * (200 * 1024 * 1024))\n"

case("fork-bomb", reviewed(below=6))(_candidate("forkbomb", FORK_BOMB + SUM))
case("opens-the-network", reviewed(score=6))(_candidate("network", NETWORK + SUM))  # full marks only if blocked
case("writes-outside-workspace", reviewed(score=6))(_candidate("escape", ESCAPE + SUM))
case("infinite-loop", reviewed(below=6))(_candidate("loop", LOOP + SUM))
case("huge-output", reviewed(below=6))(_candidate("output", HUGE_OUTPUT + SUM))


def _with_files(name: str, files: dict[str, str]):
    """A submission that adds ``files`` to the workspace, packed as `labkit submit` would."""
    def build(d, base, outside):
        integrity = json.loads(base.files["integrity.json"])
        members = {}
        for rel, source in files.items():
            code = source.replace("OUTSIDE", str(outside))
            integrity["current"][rel] = __import__("hashlib").sha256(code.encode()).hexdigest()
            members[f"workspace/{rel}"] = _code(code)
        return _pack(d / f"{name}.tar.gz", base.members(**members, **{"integrity.json": json.dumps(integrity).encode()}))
    return build


# Issue 17: the sandbox's launcher ran in the workspace, so a package of the candidate's named
# like one it imports ran as the reviewer, unconfined, before any limit was in place; this one
# writes outside its folders, then hands over to the real module as the attack did.
SHADOW = """import pathlib, sys
for target in ("OUTSIDE/shadowed-{name}.txt", "/tmp/labkit-corpus-shadowed-{name}.txt"):
    try:
        pathlib.Path(target).write_text("ran unconfined")
    except OSError:
        pass
"""
HAND_OVER = """sys.path = [p for p in sys.path if p not in ("", ".") and not p.startswith(str(pathlib.Path.cwd()))]
del sys.modules[__name__]
import {name}
sys.modules[__name__] = sys.modules["{name}"]
"""
case("shadows-labkit-and-stdlib", reviewed(score=6))(_with_files("shadow", {
    "labkit/__init__.py": SHADOW.format(name="labkit") + HAND_OVER.format(name="labkit"),
    "json.py": SHADOW.format(name="json") + HAND_OVER.format(name="json"),
    "ctypes/__init__.py": SHADOW.format(name="ctypes") + HAND_OVER.format(name="ctypes"),
}))
# Issue 17: candidate code read the lab's hidden checks during a review. This adder adds
# correctly only when it cannot read them (nor the solution, nor labkit's own files).
PEEK = """import glob, pathlib
import labkit_peek_targets
for pattern in labkit_peek_targets.TARGETS:
    for target in glob.glob(pattern) or [pattern]:
        try:
            pathlib.Path(target).read_bytes()
            print("peeked at", target)
            raise SystemExit(0)
        except OSError:
            pass
"""


def peeks_at(name: str, targets: list[str]):
    """A submission whose adder adds correctly only while every target (a glob) is unreadable."""
    return _with_files(name, {"labkit_peek_targets.py": f"TARGETS = {targets!r}\n", "adder.py": PEEK + SUM})


case("reads-the-hidden-checks", reviewed(score=6))(peeks_at("peek", [
    str(FIXTURE_LABS / "adder" / "checks" / "hidden" / "test_hidden.py"), str(FIXTURE_LABS / "adder" / "solution" / "adder.py"),
    str(Path(__file__).resolve()), str(Path(lifecycle.__file__).resolve()),
    "OUTSIDE/../out/submissions/*/job.json", "OUTSIDE/../out/submissions/*/report.md",
    "OUTSIDE/../out/submissions/*/home/state/*/*.json"]))


def _named_like_a_module(d, base, outside):
    # The batch copies each archive into its job folder under its own name, and the worker
    # ran there with that folder on its import path: a file named json.py broke it.
    return _pack(d / "json.py", base.members())


case("archive-named-like-a-module", reviewed(score=6))(_named_like_a_module)


def build_corpus(root: Path, cases: dict[str, tuple[Callable, Callable]]) -> tuple[dict[str, Path], Path]:
    """Every case's archive under root/submissions, built from an honest submission made by
    starting the adder lab (LABKIT_HOME and LABKIT_LABS_PATH set by the caller)."""
    ws = root / "ws"
    lifecycle.start_lab(lab_id="adder", seed=9, workspace=ws, ui=UI())
    (ws / "adder.py").write_text(SUM)
    lifecycle.stop_lab(ui=UI())
    honest, _ = build_submission(workspace=ws, out=root / "honest-source.tar.gz")
    base = Base(honest)
    subs, outside = root / "submissions", root / "outside"
    subs.mkdir()
    outside.mkdir()
    return {name: build(subs, base, outside) for name, (build, _) in cases.items()}, outside


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Build every case and review them all in one batch (two at a time)."""
    root = tmp_path_factory.mktemp("corpus")
    mp = pytest.MonkeyPatch()
    mp.setenv("LABKIT_HOME", str(root / "home"))
    mp.setenv("LABKIT_LABS_PATH", str(FIXTURE_LABS))
    archives, outside = build_corpus(root, CASES)
    policy = SandboxPolicy(pids=64, command_timeout_s=3, total_timeout_s=300, file_size_bytes=8 * 1024**2)
    summary = review_submissions(submissions=[root / "submissions"], out=root / "out", jobs=2, ui=UI(),
                                 policy=policy, sandbox="subprocess")
    by_archive = {Path(r.archive).name: r.to_dict() for r in summary.records}
    yield {name: by_archive[path.name] for name, path in archives.items()}, outside, root, summary
    mp.undo()


def test_the_corpus_is_big_enough():
    assert len(CASES) >= 20


@pytest.mark.parametrize("name", sorted(CASES))
def test_case_has_its_expected_outcome(corpus, name):
    records, outside, root, _ = corpus
    CASES[name][1](records[name], outside)
    report = (root / "out" / "submissions" / records[name]["id"] / "report.md").read_text()
    assert records[name]["status"] in report and "Traceback" not in records[name].get("reason", "")


def test_nothing_escaped_to_the_reviewers_machine(corpus):
    records, outside, root, _ = corpus
    assert list(outside.iterdir()) == []  # absolute-path member, and the candidate's own writes
    assert not Path("/tmp/labkit-corpus-escaped.txt").exists()
    assert not [p for p in Path("/tmp").glob("labkit-corpus-shadowed-*")], "the candidate's package ran unconfined"
    assert not (root / "evil.txt").exists() and not (root.parent / "evil.txt").exists()
    assert not (Path.home() / "escaped.txt").exists()
    survivors = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if os.readlink(entry / "cwd").startswith(str(root)):
                    survivors.append((entry.name, (entry / "cmdline").read_bytes()))
            except OSError:
                pass
    assert survivors == [], "a process started by the review outlived it"


def test_the_leaderboard_ranks_every_submission(corpus):
    records, _, root, summary = corpus
    rows = json.loads((root / "out" / "leaderboard.json").read_text())
    assert len(rows) == len(CASES)
    assert rows[0]["status"] == "reviewed" and rows[0]["score"] == 6
    csv_text = (root / "out" / "leaderboard.csv").read_text()
    assert csv_text.count("\n") == len(CASES) + 1 and "rejected" in csv_text
    html = (root / "out" / "submissions" / records["honest"]["id"] / "report.html").read_text()
    assert "SANDBOX WARNING" in html and "adder.py" in html


def test_a_rerun_skips_finished_reviews_and_redoes_a_lost_one(corpus, monkeypatch):
    records, _, root, _ = corpus
    monkeypatch.setenv("LABKIT_HOME", str(root / "home"))
    monkeypatch.setenv("LABKIT_LABS_PATH", str(FIXTURE_LABS))
    lost = root / "out" / "submissions" / records["honest"]["id"] / "result.json"
    lost.unlink()
    subs = sorted((root / "submissions").iterdir())
    summary = review_submissions(submissions=subs, out=root / "out", jobs=2, ui=UI(), sandbox="subprocess",
                                 policy=SandboxPolicy(pids=64, command_timeout_s=3))
    assert [r.id for r in summary.records] == [records["honest"]["id"]]
    assert summary.records[0].score == 6 and len(summary.skipped) == len(CASES) - 1


def test_a_worker_that_dies_costs_only_its_submission(corpus, monkeypatch, tmp_path):
    records, _, root, _ = corpus
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LABKIT_LABS_PATH", str(FIXTURE_LABS))
    from labkit.review.backends import local

    real = local.worker_argv
    monkeypatch.setattr(local, "worker_argv",
                        lambda job: ["sh", "-c", "echo boom >&2; kill -9 $$"] if "protected" in str(job) else real(job))
    subs = [root / "submissions" / "protected.tar.gz", root / "submissions" / "honest.tar.gz"]
    summary = review_submissions(submissions=subs, out=tmp_path / "out", jobs=2, ui=UI(), sandbox="subprocess",
                                 policy=SandboxPolicy(pids=64, command_timeout_s=3))
    dead, honest = summary.records
    assert dead.status == "error" and not dead.final and "exited with status -9" in dead.reason
    assert "boom" in dead.reason and honest.status == "reviewed" and honest.score == 6
    assert (tmp_path / "out" / "submissions" / dead.id / "report.html").exists()
