"""Plays the candidate's workflow the way GitHub would on a push to main, stage by stage.

For each change, the grader makes a clean checkout of the workspace (a fresh git
repository: the workspace as its first commit, the change as the second), reads the
workflow from it, and walks its jobs in `needs` order. A job runs when GitHub would
run it (its needs succeeded, its `if:` holds); within a job, steps run in order until
one fails. Only the lines that call a stage (`python -m pipeline STAGE`) are executed:
checkouts, setup and artifact steps have nothing to do in a single clean checkout.
After every stage the grader notes which MLflow runs it created and what they logged.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from labkit.grading import InfraError
from labkit.workspace import sha256_file
from support import expressions
from support.changes import TRAIN_CSV, Change
from support.provision import CHAMPION_ALIAS, MODEL_NAME
from support.workflow import STAGE_COMMAND, Job, Workflow, WorkflowError, pipeline_workflow

STAGE_TIMEOUT_S = 300
# Never part of a clean checkout: what .gitignore keeps out, caches, labkit's own folder.
NOT_IN_GIT = {".labkit", ".git", "build", "mlruns", "__pycache__", ".pytest_cache", ".venv", "venv",
              ".mypy_cache", ".ruff_cache", "mlartifacts"}
GRADER_TOKEN = "grader-" + "0" * 8  # what the grader's "repository secret" holds
TOKEN_VAR = "MLFLOW_TRACKING_TOKEN"
# The GitHub events the grader plays: a push to main, and a pull request into main.
EVENTS = {
    "push": {"event_name": "push", "ref": "refs/heads/main", "ref_name": "main", "base_ref": "", "head_ref": ""},
    "pull_request": {"event_name": "pull_request", "ref": "refs/pull/7/merge", "ref_name": "7/merge",
                     "base_ref": "main", "head_ref": "week-47"},
}
COMMIT_DATE = "2026-11-23T09:30:00+00:00"
GIT = ["git", "-c", "user.name=teammate", "-c", "user.email=teammate@example.com", "-c", "commit.gpgsign=false"]


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    metrics: dict[str, float]
    params: dict[str, str]
    tags: dict[str, str]

    @property
    def logged(self) -> dict[str, str]:
        return {**self.params, **self.tags}


@dataclass
class StageRun:
    stage: str
    job: str
    returncode: int | None
    timed_out: bool
    output: str
    duration_s: float
    runs: list[RunRecord] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def describe(self) -> str:
        if self.timed_out:
            return f"{self.stage} timed out after {STAGE_TIMEOUT_S} s"
        return f"{self.stage} {'passed' if self.passed else f'failed (exit status {self.returncode})'}"


@dataclass
class PipelineRun:
    change: Change
    sha: str
    data_sha256: str
    stages: list[StageRun] = field(default_factory=list)
    jobs: dict[str, str] = field(default_factory=dict)  # job id -> success | failure | skipped
    problem: str = ""  # the workflow could not be played at all
    event: str = "push"
    champion_before: str | None = None
    champion_after: str | None = None
    versions_before: set[str] = field(default_factory=set)
    versions_after: set[str] = field(default_factory=set)

    def ran(self, stage: str) -> bool:
        return any(s.stage == stage for s in self.stages)

    def stage(self, stage: str) -> StageRun | None:
        return next((s for s in self.stages if s.stage == stage), None)

    @property
    def new_versions(self) -> list[str]:
        return sorted(self.versions_after - self.versions_before, key=int)

    def summary(self) -> str:
        if self.problem:
            return self.problem
        ran = ", ".join(s.describe() for s in self.stages) or "no stage ran"
        skipped = [j for j, r in self.jobs.items() if r == "skipped"]
        return ran + (f"; jobs skipped: {', '.join(skipped)}" if skipped else "")

    def failure_output(self) -> str:
        failed = next((s for s in self.stages if not s.passed), None)
        return "" if failed is None else f"\n--- output of {failed.stage} (last lines) ---\n{_tail(failed.output)}"


class PipelinePlayer:
    """Clean checkouts of the workspace, changes committed on top, the workflow played through."""

    def __init__(self, run: Callable[..., Any], workspace: Path, root: Path, client: Any, tracking_uri: str):
        self._run, self._workspace, self._root = run, workspace, root
        self._client, self._tracking_uri = client, tracking_uri

    def checkout(self, change: Change, name: str | None = None) -> tuple[Path, str]:
        return make_checkout(self._workspace, self._root / (name or change.name), change)

    def play(self, change: Change, *, repo: Path | None = None, sha: str = "", until: str | None = None,
             event: str = "push") -> PipelineRun:
        """Run the workflow on ``event`` (a push to main, or a pull request) carrying ``change``;
        stop after the stage ``until`` if given."""
        if repo is None:
            repo, sha = self.checkout(change)
        data_file = repo / TRAIN_CSV
        result = PipelineRun(change, sha, sha256_file(data_file) if data_file.is_file() else "", event=event)
        result.champion_before, result.versions_before = self.registry()
        try:
            workflow = pipeline_workflow(repo)
        except WorkflowError as exc:
            result.problem = f"the workflow could not be read: {exc}"
        else:
            self._play_jobs(workflow, repo, sha, result, until)
        result.champion_after, result.versions_after = self.registry()
        return result

    def registry(self) -> tuple[str | None, set[str]]:
        from mlflow.exceptions import MlflowException

        try:
            versions = {v.version for v in self._client.search_model_versions(f"name='{MODEL_NAME}'")}
        except MlflowException as exc:
            raise InfraError(f"cannot read the model registry: {exc}") from exc
        try:
            champion = self._client.get_model_version_by_alias(MODEL_NAME, CHAMPION_ALIAS).version
        except MlflowException:
            champion = None
        return champion, {str(v) for v in versions}

    # ---- playing the workflow ------------------------------------------------------------------

    def _play_jobs(self, workflow: Workflow, repo: Path, sha: str, result: PipelineRun, until: str | None) -> None:
        context = {
            "github": {**EVENTS[result.event], "sha": sha, "repository": "acme/late-delivery",
                       "workspace": str(repo), "actor": "teammate"},
            "secrets": {TOKEN_VAR: GRADER_TOKEN},
            "vars": {"MLFLOW_TRACKING_URI": self._tracking_uri},
            "env": {},
            "needs": {},
        }
        for job in workflow.execution_order():
            if until and result.ran(until):
                return
            needs = [result.jobs.get(n, "skipped") for n in job.needs]
            status = {"success": all(r == "success" for r in needs), "failure": any(r == "failure" for r in needs),
                      "always": True, "cancelled": False}
            context["needs"] = {n: {"result": result.jobs.get(n, "skipped")} for n in job.needs}
            if not self._holds(job.condition, context, status):
                result.jobs[job.id] = "skipped"
                continue
            result.jobs[job.id] = self._play_job(workflow, job, repo, context, result)

    def _play_job(self, workflow: Workflow, job: Job, repo: Path, context: dict, result: PipelineRun) -> str:
        failed = False
        for step in job.steps:
            status = {"success": not failed, "failure": failed, "always": True, "cancelled": False}
            if not self._holds(step.condition, context, status):
                continue
            env_spec = {**workflow.env, **job.env, **step.env}
            env = {k: expressions.substitute(v, {**context, "env": env_spec}) for k, v in env_spec.items()}
            for line in _stage_lines(step.run or ""):
                line = expressions.substitute(line, {**context, "env": env_spec})
                ok = self._run_line(line, job.id, repo, context["github"], env, result)
                if not ok and not step.continue_on_error:
                    failed = True
                    break
        return "failure" if failed and not job.continue_on_error else "success"

    def _holds(self, condition: Any, context: dict, status: dict[str, bool]) -> bool:
        if condition is None:
            return status["success"]
        try:
            return expressions.evaluate_condition(condition, context, status)
        except expressions.ExpressionError:
            return status["success"]  # as if the condition were absent

    def _run_line(self, line: str, job_id: str, repo: Path, github: dict, env: dict[str, str], result: PipelineRun) -> bool:
        stages = STAGE_COMMAND.findall(line)
        env = {
            **env,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_SHA": github["sha"], "GITHUB_REF": github["ref"],
            "GITHUB_REF_NAME": github["ref_name"], "GITHUB_EVENT_NAME": github["event_name"],
            "GITHUB_BASE_REF": github["base_ref"], "GITHUB_HEAD_REF": github["head_ref"], "GITHUB_WORKSPACE": str(repo),
            "GITHUB_JOB": job_id, "MLFLOW_TRACKING_URI": self._tracking_uri,
        }
        env.setdefault(TOKEN_VAR, GRADER_TOKEN)
        started_ms = int(time.time() * 1000)
        proc = self._run(["bash", "-e", "-o", "pipefail", "-c", line], cwd=repo, env=env, timeout=STAGE_TIMEOUT_S)
        runs = self._runs_since(started_ms)
        for stage in stages:
            result.stages.append(StageRun(stage, job_id, proc.returncode, proc.timed_out,
                                          (proc.stdout or "") + (proc.stderr or ""), proc.duration_s, runs))
        return proc.returncode == 0 and not proc.timed_out

    def _runs_since(self, started_ms: int) -> list[RunRecord]:
        from mlflow.entities import ViewType
        from mlflow.exceptions import MlflowException

        try:
            experiments = [e.experiment_id for e in self._client.search_experiments(view_type=ViewType.ALL)]
            runs = self._client.search_runs(experiments, filter_string=f"attributes.start_time >= {started_ms}",
                                            run_view_type=ViewType.ALL, max_results=200) if experiments else []
        except MlflowException as exc:
            raise InfraError(f"cannot search the MLflow runs: {exc}") from exc
        return [RunRecord(r.info.run_id, dict(r.data.metrics), dict(r.data.params), dict(r.data.tags)) for r in runs]


def make_checkout(workspace: Path, repo: Path, change: Change) -> tuple[Path, str]:
    """A fresh git repository at ``repo``: the workspace as its first commit, ``change`` as the second."""
    if shutil.which("git") is None:
        raise InfraError("git is not installed: the grader needs it to make clean checkouts")
    if repo.exists():
        shutil.rmtree(repo)
    shutil.copytree(workspace, repo, symlinks=True, ignore=_not_in_git)
    _git(repo, "init", "-q")
    _git(repo, "symbolic-ref", "HEAD", "refs/heads/main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "--allow-empty", "-m", "The repository as the candidate left it")
    if change.message:
        change.apply(repo)
        _git(repo, "add", "-A")
        _git(repo, "commit", "-q", "--allow-empty", "-m", change.message)
    return repo, _git(repo, "rev-parse", "HEAD").strip()


def _git(repo: Path, *args: str) -> str:
    # Fixed dates: the same workspace and change always make the same commit (the same sha).
    env = {**os.environ, "GIT_AUTHOR_DATE": COMMIT_DATE, "GIT_COMMITTER_DATE": COMMIT_DATE}
    proc = subprocess.run([*GIT, *args], cwd=repo, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise InfraError(f"git {' '.join(args)} failed in the clean checkout: {proc.stderr.strip()[:500]}")
    return proc.stdout


def _stage_lines(script: str) -> list[str]:
    """The logical lines of a run script that call a stage (continuation lines joined)."""
    joined = re.sub(r"\\\n\s*", " ", script)
    return [line.strip() for line in joined.splitlines() if STAGE_COMMAND.search(line)]


def _not_in_git(_dir: str, names: list[str]) -> set[str]:
    return {n for n in names if n in NOT_IN_GIT or n.endswith(".pyc")}


def _tail(text: str, lines: int = 12) -> str:
    return "\n".join((text or "").strip().splitlines()[-lines:])
