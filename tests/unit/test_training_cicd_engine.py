"""training-cicd's engine: small workflows played on the pinned act, as the grade plays them.

Each test is one act run of a few shell steps (well under a second of act on an idle
machine). They prove what the lab's checks rely on: the environment and `github` context
a step sees are GitHub's (no act tell), the stand-ins behave as the real actions do,
filters and workflow_run chains start what GitHub would start, and an action with no
stand-in is named rather than skipped.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from labkit.kube.tools import find_tool
from labkit.proc import DEFAULT_RUNNER

LAB = Path(__file__).resolve().parents[2] / "labs" / "training-cicd"
ACT = find_tool("act")
pytestmark = pytest.mark.skipif(ACT is None, reason="act is not installed (bash infra/offline/17-act.sh)")
CHECKOUT = "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683"
TOKEN = "mlf-ci-test-0123456789"

# What a GitHub-hosted ubuntu-latest runner sets in a `run:` step of a push (docs.github.com,
# "Store information in variables" > default environment variables, and the runner's own).
GITHUB_VARIABLES = {
    "CI", "GITHUB_ACTION", "GITHUB_ACTION_REF", "GITHUB_ACTION_REPOSITORY", "GITHUB_ACTIONS", "GITHUB_ACTOR",
    "GITHUB_ACTOR_ID", "GITHUB_API_URL", "GITHUB_BASE_REF", "GITHUB_ENV", "GITHUB_EVENT_NAME", "GITHUB_EVENT_PATH",
    "GITHUB_GRAPHQL_URL", "GITHUB_HEAD_REF", "GITHUB_JOB", "GITHUB_OUTPUT", "GITHUB_PATH", "GITHUB_REF",
    "GITHUB_REF_NAME", "GITHUB_REF_PROTECTED", "GITHUB_REF_TYPE", "GITHUB_REPOSITORY", "GITHUB_REPOSITORY_ID",
    "GITHUB_REPOSITORY_OWNER", "GITHUB_REPOSITORY_OWNER_ID", "GITHUB_RETENTION_DAYS", "GITHUB_RUN_ATTEMPT",
    "GITHUB_RUN_ID", "GITHUB_RUN_NUMBER", "GITHUB_SERVER_URL", "GITHUB_SHA", "GITHUB_STATE", "GITHUB_STEP_SUMMARY",
    "GITHUB_TRIGGERING_ACTOR", "GITHUB_WORKFLOW", "GITHUB_WORKFLOW_REF", "GITHUB_WORKFLOW_SHA", "GITHUB_WORKSPACE",
    "ImageOS", "ImageVersion", "RUNNER_ARCH", "RUNNER_ENVIRONMENT", "RUNNER_NAME", "RUNNER_OS", "RUNNER_PERFLOG",
    "RUNNER_TEMP", "RUNNER_TOOL_CACHE", "RUNNER_TRACKING_ID",
}
TELL_PREFIXES = ("GITHUB_", "RUNNER_", "ACT", "ACTIONS_", "Image")


@pytest.fixture
def lab(lab_support):
    return lab_support("training-cicd", "support.engine", "support.ci")


def _run(argv, *, timeout, cwd, env):
    return DEFAULT_RUNNER.run(argv, timeout=timeout, cwd=cwd, env=env, check=False)


def repository(tmp_path: Path, workflows: dict[str, str], files: dict[str, str] | None = None) -> Path:
    workspace = tmp_path / "workspace"
    for rel, text in {**{f".github/workflows/{k}": v for k, v in workflows.items()}, **(files or {})}.items():
        (workspace / rel).parent.mkdir(parents=True, exist_ok=True)
        (workspace / rel).write_text(text)
    return workspace


def play(lab, tmp_path: Path, workspace: Path, *, event: str = "push", change=None):
    engine, ci = lab
    change = change or ci.Change("data", "Add the shipments of week 47", "new data",
                                 lambda repo: (repo / "data").mkdir(exist_ok=True) or (repo / "data" / "train.csv").write_text("x\n"))
    repo, _ = ci.make_checkout(workspace, tmp_path / "play" / "repo", change)
    github_event = ci.make_pull_request(repo, change) if event == "pull_request" else ci.push_event(repo, change)
    runner = engine.Engine(_run, ACT, secrets={"MLFLOW_TRACKING_TOKEN": TOKEN}, variables={"MLFLOW_TRACKING_URI": "http://mlflow:5000"})
    return runner.play(repo, github_event, tmp_path / "play" / "runs"), github_event


DUMP = """\
name: dump
on: push
jobs:
  dump:
    runs-on: ubuntu-latest
    steps:
      - uses: %s
      - run: |
          env -0 | python -c 'import json,sys; print(json.dumps(dict(l.split("=",1) for l in sys.stdin.read().split("\\0") if "=" in l)))' > "$RUNNER_TEMP/../../../../env.json"
          echo '${{ toJSON(github) }}' > /dev/null
      - run: python -c 'import json,sys; json.dump(json.loads(sys.argv[1]), open(sys.argv[2], "w"))' '${{ toJSON(github) }}' "$RUNNER_TEMP/../../../../github.json"
      - run: test ! -t 0 && test ! -t 1 && test ! -t 2   # GitHub gives steps pipes, not a terminal
      - shell: python
        run: import sys; sys.exit(sys.stdin.isatty() or sys.stdout.isatty())
""" % CHECKOUT


def test_a_graded_run_sees_the_environment_and_context_of_a_github_hosted_runner(lab, tmp_path):
    played, event = play(lab, tmp_path, repository(tmp_path, {"dump.yml": DUMP}))
    assert not played.problem and [r.conclusion for r in played.runs] == ["success"], played.runs[0].engine_output
    dumps = list((tmp_path / "play" / "runs").rglob("env.json"))
    assert dumps, "the step wrote no dump"
    env = json.loads(dumps[0].read_text())
    github = json.loads(next((tmp_path / "play" / "runs").rglob("github.json")).read_text())
    runner_keys = {k for k in env if k.startswith(TELL_PREFIXES)} | ({"CI"} & set(env))
    assert runner_keys - GITHUB_VARIABLES == set(), "variables GitHub never sets"
    assert GITHUB_VARIABLES - runner_keys == set(), "variables GitHub sets that the run lacks"
    assert "ACT" not in env and env["ImageOS"] == "ubuntu24" and env["RUNNER_ENVIRONMENT"] == "github-hosted"
    assert env["GITHUB_ACTOR"] == "teammate" and env["GITHUB_REPOSITORY"] == "acme/late-delivery"
    assert int(env["GITHUB_RUN_ID"]) > 10**9 and int(env["GITHUB_RUN_NUMBER"]) > 1
    assert env["GITHUB_RETENTION_DAYS"] == "90" and env["RUNNER_TRACKING_ID"].startswith("github_")
    assert env["RUNNER_NAME"].startswith("GitHub Actions ")
    assert env["GITHUB_SHA"] == event.sha and env["GITHUB_REF"] == "refs/heads/main"
    # Nothing of the grader's own environment reaches the step.
    assert not {k for k in env if k.startswith(("LABKIT", "MLFLOW", "PYTEST", "VIRTUAL_ENV"))}
    assert github["server_url"] == "https://github.com" and github["actor"] == "teammate"
    assert github["event"]["repository"]["default_branch"] == "main"
    assert github["event"]["head_commit"]["id"] == event.sha and github["event"]["before"] != "0" * 40
    assert github["run_id"] == env["GITHUB_RUN_ID"] and github["repository_owner"] == "acme"


def test_the_checkout_stand_in_puts_the_pushed_commit_in_an_empty_workspace(lab, tmp_path):
    workflow = """\
name: co
on: [push, pull_request]
jobs:
  before:
    runs-on: ubuntu-latest
    steps:
      - run: test -z "$(ls -A)"
  after:
    runs-on: ubuntu-latest
    steps:
      - uses: %s
      - run: |
          test "$(git rev-parse HEAD)" = "$GITHUB_SHA"
          test "$(git rev-list --count HEAD)" = 1
          test -f data/train.csv
          git remote get-url origin | grep -qx "https://github.com/acme/late-delivery"
""" % CHECKOUT
    for event in ("push", "pull_request"):
        played, _ = play(lab, tmp_path / event, repository(tmp_path / event, {"co.yml": workflow}), event=event)
        assert played.runs[0].jobs == {"before": "success", "after": "success"}, played.runs[0].log


def test_outputs_summary_artifacts_and_reusable_workflows_behave_as_on_github(lab, tmp_path):
    workflow = """\
name: ci
on: push
jobs:
  make:
    runs-on: ubuntu-latest
    outputs:
      verdict: ${{ steps.gate.outputs.verdict }}
    steps:
      - id: gate
        run: |
          echo "verdict=passed" >> "$GITHUB_OUTPUT"
          echo "## gate" | tee -a "$GITHUB_STEP_SUMMARY"
          mkdir -p build && echo 42 > build/result.txt
      - uses: actions/upload-artifact@b4b15b8c7c6ac21ea08fcf65892d2ee8f75cf882
        with: {name: build, path: build/}
  use:
    needs: make
    if: needs.make.outputs.verdict == 'passed' && github.ref == format('refs/heads/{0}', github.event.repository.default_branch)
    uses: ./.github/workflows/release.yml
    secrets: inherit
"""
    release = """\
name: release
on: workflow_call
jobs:
  release:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/download-artifact@fa0a91b85d4f404e444e00e005971372dc801d16
        with: {name: build, path: build/}
      - run: test "$(cat build/result.txt)" = 42 && test "$TOKEN" = '%s'
        env:
          TOKEN: ${{ secrets.MLFLOW_TRACKING_TOKEN }}
""" % TOKEN
    played, _ = play(lab, tmp_path, repository(tmp_path, {"ci.yml": workflow, "release.yml": release}))
    run = played.runs[0]
    assert [r.file for r in played.runs] == ["ci.yml"]  # workflow_call is no event
    assert run.conclusion == "success" and run.jobs.get("make") == "success", run.log
    assert any(result == "success" for job, result in run.jobs.items() if job != "make"), run.jobs


def test_a_stage_call_is_recorded_with_its_status_and_whether_it_saw_the_secret(lab, tmp_path):
    workflow = """\
name: stages
on: push
jobs:
  gates:
    runs-on: ubuntu-latest
    steps:
      - uses: %s
      - run: if python -m pipeline test; then echo ok; fi
      - run: python -m pipeline validate
        env:
          MLFLOW_TRACKING_TOKEN: ${{ secrets.MLFLOW_TRACKING_TOKEN }}
""" % CHECKOUT
    files = {"pipeline/__init__.py": "", "pipeline/__main__.py": "import sys\nsys.exit(0 if sys.argv[1] == 'validate' else 3)\n"}
    played, _ = play(lab, tmp_path, repository(tmp_path, {"stages.yml": workflow}, files))
    calls = {(s.stage, s.status, s.saw_secret) for s in played.stages}
    assert calls == {("test", 3, False), ("validate", 0, True)}, played.runs[0].log


def test_workflow_run_chains_and_path_filters_start_what_github_starts(lab, tmp_path):
    ci = """\
name: CI
on:
  push:
    paths: ["**.py"]
  pull_request:
jobs:
  t:
    runs-on: ubuntu-latest
    steps:
      - run: "true"
"""
    data = """\
name: data
on:
  push:
    paths: ["data/**"]
jobs:
  t:
    runs-on: ubuntu-latest
    steps:
      - run: "true"
"""
    cd = """\
name: CD
on:
  workflow_run:
    workflows: [data]
    types: [completed]
    branches: [main]
jobs:
  deploy:
    if: github.event.workflow_run.conclusion == 'success' && github.event.workflow_run.event == 'push'
    runs-on: ubuntu-latest
    steps:
      - run: test "$GITHUB_EVENT_NAME" = workflow_run && test "$GITHUB_REF" = refs/heads/main
"""
    workspace = repository(tmp_path, {"ci.yml": ci, "data.yml": data, "cd.yml": cd})
    played, _ = play(lab, tmp_path / "push", workspace)
    assert [(r.file, r.conclusion) for r in played.runs] == [("data.yml", "success"), ("cd.yml", "success")]
    assert played.runs[1].jobs == {"deploy": "success"}, played.runs[1].log
    played, _ = play(lab, tmp_path / "pr", workspace, event="pull_request")
    assert [r.file for r in played.runs] == ["ci.yml"]


def test_an_action_without_a_stand_in_or_a_read_of_act_s_variable_is_named_not_skipped(lab, tmp_path):
    workflow = """\
name: w
on: push
jobs:
  a:
    runs-on: ubuntu-latest
    steps:
      - uses: %s
      - uses: aws-actions/configure-aws-credentials@e3dd6a429d7300a6a4c196c26e071d42e0343502
""" % CHECKOUT
    played, _ = play(lab, tmp_path / "a", repository(tmp_path / "a", {"w.yml": workflow}))
    assert not played.runs and "aws-actions/configure-aws-credentials@e3dd6a4" in played.problem
    sneaky = """\
name: w
on: push
jobs:
  a:
    runs-on: ubuntu-latest
    steps:
      - run: python -m pipeline test
        if: ${{ env.ACT != 'true' }}
"""
    played, _ = play(lab, tmp_path / "b", repository(tmp_path / "b", {"w.yml": sneaky}))
    assert not played.runs and "ACT" in played.problem


def test_actionlint_reports_nothing_on_the_reference_solution(tmp_path):
    actionlint = find_tool("actionlint")
    if actionlint is None:
        pytest.skip("actionlint is not installed (go install github.com/rhysd/actionlint/cmd/actionlint@v1.7.12)")
    root = tmp_path / "solution"
    subprocess.run(["cp", "-r", str(LAB / "solution"), str(root)], check=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    proc = subprocess.run([actionlint, "-shellcheck=", "-pyflakes="], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_pip_install_checks_the_requirements_and_installs_nothing(lab, tmp_path):
    workflow = """\
name: deps
on: push
jobs:
  met:
    runs-on: ubuntu-latest
    steps:
      - uses: %s
      - run: pip install -r requirements.txt && python -m pip install --upgrade pip
  unmet:
    runs-on: ubuntu-latest
    steps:
      - uses: %s
      - run: pip install -r requirements-extra.txt
""" % (CHECKOUT, CHECKOUT)
    files = {"requirements.txt": "pyyaml\npytest>=1\n", "requirements-extra.txt": "no-such-package-for-labkit==1.0\n"}
    played, _ = play(lab, tmp_path, repository(tmp_path, {"deps.yml": workflow}, files))
    run = played.runs[0]
    assert run.jobs == {"met": "success", "unmet": "failure"}, run.log
    assert any("no-such-package-for-labkit" in line for line in run.log["unmet"]), run.log["unmet"]


def test_the_engine_plays_a_workflow_as_a_confined_candidate_command(lab, tmp_path):
    """Under `labkit review` act and every step run confined (read-only root, no network, own
    pid namespace): the engine must need nothing outside its own folder."""
    import shutil

    from labkit.sandbox.runner import run_confined

    if shutil.which("unshare") is None:
        pytest.skip("no unshare on this machine")
    engine, ci = lab
    spec = {"scratch": str(tmp_path / "scratch"), "memory_bytes": 3 * 1024**3, "file_size_bytes": 64 * 1024**2,
            "open_files": 1024, "pids": 512, "unshare": True, "cgroup": False, "rw": [str(tmp_path)],
            "command_timeout_s": 300, "output_bytes": 1024**2}

    def confined(argv, *, timeout, cwd, env):
        return run_confined(argv, cwd=cwd, timeout=timeout, spec=spec, env=env)

    workflow = """\
name: w
on: push
jobs:
  a:
    runs-on: ubuntu-latest
    outputs: {v: "${{ steps.s.outputs.v }}"}
    steps:
      - uses: %s
      - id: s
        run: echo v=1 >> "$GITHUB_OUTPUT" && test -f x.txt
  b:
    needs: a
    runs-on: ubuntu-latest
    steps:
      - run: test "${{ needs.a.outputs.v }}" = 1
""" % CHECKOUT
    change = ci.Change("c", "a change", "x.txt", lambda repo: (repo / "x.txt").write_text("x"))
    repo, _ = ci.make_checkout(repository(tmp_path, {"w.yml": workflow}), tmp_path / "play" / "repo", change)
    runner = engine.Engine(confined, ACT, secrets={"MLFLOW_TRACKING_TOKEN": TOKEN}, variables={})
    played = runner.play(repo, ci.push_event(repo, change), tmp_path / "play" / "runs")
    assert [(r.conclusion, r.jobs) for r in played.runs] == [("success", {"a": "success", "b": "success"})], played.runs
