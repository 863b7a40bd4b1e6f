"""Pushes a change through the candidate's workflows, as GitHub would, and notes what it did.

For each change, the grader makes a clean checkout of the workspace (a fresh git
repository: the workspace as its first commit, the change as the second) and plays the
workflows on it with act (support/engine.py) for a push to main or a pull request into
it. Afterwards it reads which stages ran and how they ended (with the MLflow runs each
logged while it ran), and what the registry holds.
"""

from __future__ import annotations

import os
import re
import secrets as token_source
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from labkit.grading import InfraError
from labkit.workspace import sha256_file
from support import engine
from support.changes import TRAIN_CSV, Change
from support.provision import CHAMPION_ALIAS, MODEL_NAME

# Never part of a clean checkout: what .gitignore keeps out, caches, labkit's own folder.
NOT_IN_GIT = {".labkit", ".git", "build", "mlruns", "__pycache__", ".pytest_cache", ".venv", "venv",
              ".mypy_cache", ".ruff_cache", "mlartifacts"}
TOKEN_VAR = "MLFLOW_TRACKING_TOKEN"
PULL_REQUEST, PR_BRANCH = 7, "week-47"
# MLflow's download bars: noise in feedback, never the reason a stage failed.
PROGRESS_BAR = re.compile(r"\d+%\|")
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
    workflow: str
    returncode: int
    start_ms: int
    end_ms: int
    saw_secret: bool  # MLFLOW_TRACKING_TOKEN held the repository secret
    runs: list[RunRecord] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.returncode == 0

    def describe(self) -> str:
        return f"{self.stage} {'passed' if self.passed else f'failed (exit status {self.returncode})'}"


@dataclass
class PipelineRun:
    change: Change
    sha: str
    data_sha256: str
    tree: str = ""  # the commit's tree: a pull request's test merge builds the same files as the push
    stages: list[StageRun] = field(default_factory=list)
    workflows: list[engine.WorkflowRun] = field(default_factory=list)
    problem: str = ""  # the workflow could not be played at all
    event: str = "push"
    champion_before: str | None = None
    champion_after: str | None = None
    versions_before: set[str] = field(default_factory=set)
    versions_after: set[str] = field(default_factory=set)

    def ran(self, stage: str) -> bool:
        return any(s.stage == stage for s in self.stages)

    def stage(self, stage: str) -> StageRun | None:
        """The last call of ``stage`` (a workflow may retry one)."""
        return next((s for s in reversed(self.stages) if s.stage == stage), None)

    @property
    def new_versions(self) -> list[str]:
        return sorted(self.versions_after - self.versions_before, key=int)

    def summary(self) -> str:
        if self.problem:
            return self.problem
        if not self.workflows:
            return f"no workflow runs on {'a pull request' if self.event == 'pull_request' else 'this push'}"
        ran = ", ".join(s.describe() for s in self.stages) or "no stage ran"
        skipped = [f"{j}" for w in self.workflows for j, r in w.jobs.items() if r == "skipped"]
        failed = [f"{j}" for w in self.workflows for j, r in w.jobs.items() if r == "failure"]
        return ran + (f"; jobs failed: {', '.join(failed)}" if failed else "") + \
            (f"; jobs skipped: {', '.join(skipped)}" if skipped else "")

    def failure_output(self) -> str:
        """The output of the first job that failed (its last lines), or what act said."""
        for workflow in self.workflows:
            for job, result in workflow.jobs.items():
                if result == "failure":
                    lines = [line for line in workflow.log.get(job, []) if not PROGRESS_BAR.search(line)]
                    return f"\n--- output of job {job} (last lines) ---\n{_tail(chr(10).join(lines))}"
        engine_output = next((w.engine_output for w in self.workflows if w.conclusion == "failure" and w.engine_output), "")
        return f"\n--- the runner said ---\n{_tail(engine_output)}" if engine_output else ""


class PipelinePlayer:
    """Clean checkouts of the workspace, changes committed on top, the workflows played on act."""

    def __init__(self, run: Callable[..., Any], workspace: Path, root: Path, client: Any, tracking_uri: str):
        self._workspace, self._root, self._client = workspace, root, client
        # A repository secret of its own per grade: the candidate's code cannot know it.
        self.token = "mlf-ci-" + token_source.token_hex(10)
        # GitHub gives every run its own GITHUB_TOKEN (secrets.GITHUB_TOKEN, github.token) too.
        github_token = "ghs_" + token_source.token_urlsafe(27).replace("-", "x").replace("_", "y")[:36]
        self._engine = engine.Engine(run, engine.find_act(), secrets={TOKEN_VAR: self.token, "GITHUB_TOKEN": github_token},
                                     variables={"MLFLOW_TRACKING_URI": tracking_uri})
        self._played: dict[str, tuple[engine.Event, int]] = {}

    def checkout(self, change: Change, name: str | None = None) -> tuple[Path, str]:
        return make_checkout(self._workspace, self._root / (name or change.name) / "repo", change)

    def play(self, change: Change, *, event: str = "push", name: str | None = None,
             rerun_of: str | None = None) -> PipelineRun:
        """Run the workflows on ``event`` (a push to main, or a pull request into main)
        carrying ``change``; ``rerun_of`` re-runs the push of that earlier play (the same
        commit and run id, a second attempt, in a new checkout)."""
        name = name or change.name
        repo, sha = self.checkout(change, name)
        if event == "pull_request":
            github_event = make_pull_request(repo, change)
        else:
            github_event = push_event(repo, change)
        sha = github_event.sha
        data_file = repo / TRAIN_CSV
        result = PipelineRun(change, sha, sha256_file(data_file) if data_file.is_file() else "", event=event,
                             tree=_git(repo, "rev-parse", f"{sha}^{{tree}}").strip())
        result.champion_before, result.versions_before = self.registry()
        run_id, attempt = None, 1
        if rerun_of is not None:
            earlier, run_id = self._played[rerun_of]
            if earlier.sha != sha:
                raise InfraError(f"the re-run of {rerun_of} built {sha}, not {earlier.sha}")
            attempt = 2
        played = self._engine.play(repo, github_event, self._root / name / "runs", run_id=run_id, attempt=attempt)
        if played.runs:
            self._played[name] = (github_event, played.runs[0].run_id)
        result.problem, result.workflows = played.problem, played.runs
        for call in played.stages:
            result.stages.append(StageRun(call.stage, call.job, call.workflow, call.status, call.start_ms,
                                          call.end_ms, call.saw_secret, self._runs_between(call.start_ms, call.end_ms)))
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

    def restore_champion(self) -> None:
        """@champion back on the team's model as provisioned (the registry's first version):
        a push must be judged against a known, healthy champion, not against whatever an
        earlier grade of the same lab left serving."""
        from mlflow.exceptions import MlflowException

        _, versions = self.registry()
        if versions:
            try:
                self._client.set_registered_model_alias(MODEL_NAME, CHAMPION_ALIAS, min(versions, key=int))
            except MlflowException as exc:
                raise InfraError(f"cannot set @{CHAMPION_ALIAS} in the model registry: {exc}") from exc

    def _runs_between(self, start_ms: int, end_ms: int) -> list[RunRecord]:
        from mlflow.entities import ViewType
        from mlflow.exceptions import MlflowException

        try:
            experiments = [e.experiment_id for e in self._client.search_experiments(view_type=ViewType.ALL)]
            runs = self._client.search_runs(
                experiments, filter_string=f"attributes.start_time >= {start_ms - 1} and attributes.start_time <= {end_ms + 1}",
                run_view_type=ViewType.ALL, max_results=200) if experiments else []
        except MlflowException as exc:
            raise InfraError(f"cannot search the MLflow runs: {exc}") from exc
        return [RunRecord(r.info.run_id, dict(r.data.metrics), dict(r.data.params), dict(r.data.tags)) for r in runs]


def push_event(repo: Path, change: Change) -> engine.Event:
    """A push of the checkout's last commit to main (the first push of main when it has one)."""
    sha = _git(repo, "rev-parse", "HEAD").strip()
    parents = _git(repo, "rev-list", "--parents", "-n", "1", "HEAD").split()[1:]
    before = parents[0] if parents else "0" * 40
    changes = _changes(repo, before if parents else None, sha)
    commit = engine.commit_payload(sha, _git(repo, "rev-parse", "HEAD^{tree}").strip(),
                                   change.message or "The repository as the candidate left it", COMMIT_DATE, changes)
    ref = f"refs/heads/{engine.DEFAULT_BRANCH}"
    return engine.Event("push", ref, sha, tuple(sorted({f for files in changes.values() for f in files})),
                        engine.push_payload(ref=ref, before=before, after=sha, commit=commit))


def make_pull_request(repo: Path, change: Change) -> engine.Event:
    """Turn the checkout into a pull request: main at the first commit, the change on a
    branch, and GitHub's test merge of the two at refs/pull/N/merge (what CI builds)."""
    head = _git(repo, "rev-parse", "HEAD").strip()
    base = _git(repo, "rev-parse", "HEAD~1").strip()
    _git(repo, "branch", "-f", PR_BRANCH, head)
    _git(repo, "checkout", "-q", "--detach", head)
    _git(repo, "update-ref", f"refs/heads/{engine.DEFAULT_BRANCH}", base)
    tree = _git(repo, "rev-parse", f"{head}^{{tree}}").strip()
    merge = _git(repo, "commit-tree", tree, "-p", base, "-p", head, "-m",
                 f"Merge {head} into {base}").strip()
    _git(repo, "update-ref", f"refs/pull/{PULL_REQUEST}/head", head)
    _git(repo, "update-ref", f"refs/pull/{PULL_REQUEST}/merge", merge)
    _git(repo, "checkout", "-q", "--detach", merge)
    changes = _changes(repo, base, head)
    files = tuple(sorted({f for group in changes.values() for f in group}))
    payload = engine.pull_request_payload(number=PULL_REQUEST, head_ref=PR_BRANCH, head_sha=head, base_sha=base,
                                          merge_sha=merge, title=change.message, changed_files=len(files))
    return engine.Event("pull_request", f"refs/pull/{PULL_REQUEST}/merge", merge, files, payload,
                        base_ref=engine.DEFAULT_BRANCH, head_ref=PR_BRANCH)


def _changes(repo: Path, before: str | None, after: str) -> dict[str, list[str]]:
    if before is None:
        files = _git(repo, "ls-tree", "-r", "--name-only", after).split()
        return {"added": files, "removed": [], "modified": []}
    out: dict[str, list[str]] = {"added": [], "removed": [], "modified": []}
    for line in _git(repo, "diff", "--name-status", "--no-renames", before, after).splitlines():
        status, _, path = line.partition("\t")
        out[{"A": "added", "D": "removed"}.get(status[:1], "modified")].append(path)
    return out


def make_checkout(workspace: Path, repo: Path, change: Change) -> tuple[Path, str]:
    """A fresh git repository at ``repo``: the workspace as its first commit, ``change`` as the second."""
    if shutil.which("git") is None:
        raise InfraError("git is not installed: the grader needs it to make clean checkouts")
    if repo.exists():
        shutil.rmtree(repo)
    shutil.copytree(workspace, repo, symlinks=True, ignore=_not_in_git)
    _git(repo, "init", "-q")
    _git(repo, "symbolic-ref", "HEAD", "refs/heads/main")
    _git(repo, "remote", "add", "origin", f"{engine.SERVER_URL}/{engine.FULL_NAME}.git")
    _git(repo, "config", "uploadpack.allowAnySHA1InWant", "true")
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


def _not_in_git(_dir: str, names: list[str]) -> set[str]:
    return {n for n in names if n in NOT_IN_GIT or n.endswith(".pyc")}


def _tail(text: str, lines: int = 12) -> str:
    return "\n".join((text or "").strip().splitlines()[-lines:])
