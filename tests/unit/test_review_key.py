"""The review key: where it lives, what it derives, and that candidate code never gets it."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

from labkit.errors import BadInput
from labkit.grading.results import Status
from labkit.grading.review_key import KEY_ENV, hidden_seed, key_path, review_key
from labkit.grading.runner import run_checks
from labkit.review.sandbox import SandboxPolicy, unshare_works
from tests.conftest import adder_with_checks

KEY = "k" * 32


def test_the_key_is_made_once_readable_by_its_owner_only(labkit_home, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    first = review_key()
    assert key_path() == labkit_home / "review.key" and stat.S_IMODE(key_path().stat().st_mode) == 0o600
    assert review_key() == first and len(first) >= 32
    monkeypatch.setenv(KEY_ENV, KEY)
    assert review_key() == KEY  # the variable wins: a team shares one key without files


def test_no_key_or_a_short_one_is_bad_input(labkit_home, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(BadInput, match="no review key"):
        review_key(create=False)
    monkeypatch.setenv(KEY_ENV, "short")
    with pytest.raises(BadInput, match="at least 16"):
        review_key()


def test_the_hidden_seed_depends_on_key_lab_and_seed():
    seed = hidden_seed(KEY, "drift-detection", 2026)
    assert seed == hidden_seed(KEY, "drift-detection", 2026) and 0 <= seed < 2**63
    others = {hidden_seed("x" * 32, "drift-detection", 2026), hidden_seed(KEY, "other-lab", 2026),
              hidden_seed(KEY, "drift-detection", 2027)}
    assert seed not in others and len(others) == 3


KEY_CHECK = '''
import os
import sys

import pytest


@pytest.mark.check(points=1, title="key")
def test_key(hidden_seed, run_in_workspace, state_dir):
    (state_dir / "hidden_seed").write_text(str(hidden_seed))
    done = run_in_workspace(["python", "-c", "import os; print(os.environ.get('LABKIT_REVIEW_KEY', 'absent'))"])
    (state_dir / "candidate_saw").write_text(done.stdout.strip())
'''


def _key_lab(tmp_path: Path):
    return adder_with_checks(tmp_path, "test_key.py", KEY_CHECK)


def test_hidden_checks_get_the_hidden_seed_and_candidate_code_never_the_key(tmp_path, labkit_home, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    lab, workspace, state = _key_lab(tmp_path)
    result = run_checks(lab, workspace=workspace, seed=5, state_dir=state, services={}, hidden=True,
                        grade_dir=tmp_path / "grade", select=("test_key",))
    assert {c.check_id.split("::")[-1]: c.status for c in result.checks} == {"test_key": Status.PASS}, result.to_dict()
    assert int((state / "hidden_seed").read_text()) == hidden_seed(KEY, "adder", 5)
    assert (state / "candidate_saw").read_text() == "absent"


SCENARIO_CHECK = '''
import pytest


@pytest.mark.check(points=1, title="scenario seed")
def test_scenario_seed(scenario_seed, state_dir):
    (state_dir / "scenario_seed").write_text(str(scenario_seed))
'''


@pytest.mark.parametrize("hidden", [True, False])
def test_shared_fixtures_draw_from_the_hidden_seed_in_a_hidden_grade_only(tmp_path, labkit_home, monkeypatch, hidden):
    monkeypatch.setenv(KEY_ENV, KEY)
    lab, workspace, state = _key_lab(tmp_path)
    (tmp_path / "labs" / "adder" / "checks" / "visible" / "test_scenario.py").write_text(SCENARIO_CHECK)
    result = run_checks(lab, workspace=workspace, seed=5, state_dir=state, services={}, hidden=hidden,
                        grade_dir=tmp_path / "grade", select=("test_scenario_seed",))
    assert [c.status for c in result.checks] == [Status.PASS], result.to_dict()
    expected = hidden_seed(KEY, "adder", 5) if hidden else 5
    assert int((state / "scenario_seed").read_text()) == expected


@pytest.mark.skipif(not unshare_works(), reason="needs unshare (root or user namespaces)")
def test_a_confined_command_reads_an_empty_file_where_the_key_is(tmp_path, labkit_home, monkeypatch):
    from labkit.review.jobs import _secret_files
    from labkit.sandbox.limits import SandboxPolicy
    from labkit.sandbox.runner import run_confined

    monkeypatch.delenv(KEY_ENV, raising=False)
    key = review_key()
    (tmp_path / "ws").mkdir()
    spec = {**SandboxPolicy().to_dict(), "unshare": True, "cgroup": False, "scratch": str(tmp_path / "scratch"),
            "rw": [], "services": {}, "hide": _secret_files()}
    code = f"print(repr(open({str(key_path())!r}).read()))"
    done = run_confined([sys.executable, "-c", code], cwd=tmp_path / "ws", env={}, timeout=60, spec=spec)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "''" and key not in done.stdout
    assert key_path().read_text().strip() == key  # hidden from the command only, untouched on disk


def test_a_review_hands_the_reviewers_key_to_its_worker_env_and_writes_it_nowhere(tmp_path, labkit_home, monkeypatch):
    from types import SimpleNamespace

    from labkit.review.backends import local
    from labkit.review.jobs import job_folder
    from labkit.review.sandbox import SandboxPolicy
    from labkit.ui import UI

    monkeypatch.delenv(KEY_ENV, raising=False)
    key = review_key()  # the reviewer's, in their labkit home
    seen = {}

    def run(argv, *, timeout, cwd, env, check):
        seen["env"] = env
        return SimpleNamespace(stdout="", stderr="", timed_out=False, returncode=1)

    monkeypatch.setattr(local, "DEFAULT_RUNNER", SimpleNamespace(run=run, terminate=lambda *a, **k: None))
    archive = tmp_path / "s.tar.gz"
    archive.write_bytes(b"not read by this test")
    pending = job_folder(tmp_path / "out", archive)
    job_dir = pending.folder.path
    job_dir.mkdir(parents=True)
    backend = local.LocalBackend(policy=SandboxPolicy(), sandbox="subprocess", kube=None, ui=UI(json_mode=True))
    backend._review(pending, True, None)
    assert seen["env"][KEY_ENV] == key and seen["env"]["LABKIT_HOME"] == str(pending.folder.home)
    assert not any(key in p.read_text(errors="replace") for p in job_dir.rglob("*") if p.is_file())
    assert str(key_path()) in (job_dir / "job.json").read_text()  # the file the sandbox hides


def test_the_docker_review_passes_the_key_by_name_never_its_value(tmp_path, monkeypatch):
    from labkit.review.sandbox import docker_argv

    monkeypatch.setenv(KEY_ENV, KEY)
    argv = docker_argv(SandboxPolicy(), job_dir=tmp_path, labs_roots=[], job_file="job.json", name="r")
    assert argv[argv.index(KEY_ENV) - 1] == "-e" and not any(KEY in arg for arg in argv)
