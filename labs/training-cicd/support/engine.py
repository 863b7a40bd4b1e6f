"""The candidate's workflows played on nektos/act, as GitHub would play them for one event.

GitHub itself cannot run here, so the grader uses act, the established local runner of
GitHub Actions (pinned in infra/offline/versions.env), in its host mode: no Docker, the
steps run as the candidate's commands (``run_in_workspace``, confined under `labkit
review`). What act leaves to the caller, this module does as GitHub does:

- which workflow files an event starts: each file whose ``on:`` accepts the event, its
  ``branches``/``paths``/``tags`` filters applied to the pushed ref and changed files;
  files started by ``workflow_run`` are played after the runs they wait for;
- the event's payload (``-e``), ids, actor, repository, secrets and variables, and an
  environment with no act tell (see ``SHELL_SHIM``);
- the actions: act cannot download any, so each known action is replaced by a stand-in
  (support/standins) whatever ref it is pinned to; a workflow using another action is
  not played, and the run says which action it was.

Stage calls (``python -m pipeline STAGE``) are recorded by the ``python`` first on PATH:
when each started and ended, its exit status, and whether it saw the repository secret.
"""

from __future__ import annotations

import json
import re
import secrets as token_source
import shutil
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from labkit.grading import InfraError

STANDINS = Path(__file__).with_name("standins")
# owner/repo -> stand-in folder (support/standins/<folder>)
KNOWN_ACTIONS = {
    "actions/checkout": "checkout",
    "actions/setup-python": "setup-python",
    "actions/cache": "cache",
    "actions/upload-artifact": "upload-artifact",
    "actions/download-artifact": "download-artifact",
}
RUNNER_LABELS = ("ubuntu-latest", "ubuntu-24.04", "ubuntu-22.04")
OWNER, REPOSITORY = "acme", "late-delivery"
FULL_NAME = f"{OWNER}/{REPOSITORY}"
SERVER_URL = "https://github.com"
DEFAULT_BRANCH = "main"
ACTOR = "teammate"
ACT_TIMEOUT_S = 900
# An expression that reads act's own variable (GitHub never sets it): the workflow would
# behave differently here than on GitHub, by design. Such a workflow is not played.
ACT_TELL = re.compile(r"\benv\s*(?:\.\s*ACT\b|\[\s*['\"]ACT['\"]\s*\])")
STAGE_LINE = re.compile(r"^(?P<stage>[a-z]+)\t(?P<job>[^\t]*)\t(?P<workflow>[^\t]*)\t(?P<start>\d+)\t(?P<end>\d+)"
                        r"\t(?P<status>\d+)\t(?P<token>yes|no)$")

# Every shell and interpreter a step can name goes through these: they remove what act
# adds and GitHub does not (ACT, a terminal), and correct what act gets wrong for
# ubuntu-latest (ImageOS). Left: expressions that read act's ACT (refused, see ACT_TELL)
# and runner.name / runner.environment in expressions (empty under act).
SHELL_SHIM = """#!/bin/bash
unset ACT
export ImageOS=ubuntu24 ImageVersion=20261123.1.0
[ -n "${GITHUB_ACTION_PATH-}" ] || unset GITHUB_ACTION_PATH
# act runs host steps on a terminal; GitHub's runner gives them pipes and no input.
if [ -t 0 ] || [ -t 1 ] || [ -t 2 ]; then "$0" "$@" < /dev/null 2>&1 | cat; exit "${PIPESTATUS[0]}"; fi
"""
PYTHON_SHIM = SHELL_SHIM + r"""REAL=@REAL@
if [ "${1-}" = -m ] && [ "${2-}" = pipeline ] && [[ "${3-}" =~ ^[a-z]+$ ]]; then
  start=$(date +%s%3N)
  "$REAL" "$@"; status=$?
  end=$(date +%s%3N)
  token=no; [ "${MLFLOW_TRACKING_TOKEN-}" = @SECRET@ ] && token=yes
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$3" "${GITHUB_JOB-}" "$(printf %s "${GITHUB_WORKFLOW-}" | tr '\t\n' '  ')" \
    "$start" "$end" "$status" "$token" >> @RECORDS@
  exit $status
fi
if [ "${1-}" = -m ] && [ "${2-}" = pip ]; then shift 2; exec @PIP@ "$@"; fi
exec "$REAL" "$@"
"""
# pip: the runner has the lab's packages (requirements.txt) already; installing is checked,
# never done (the grade must not change the lab's own environment).
PIP_SHIM = SHELL_SHIM + r"""REAL=@REAL@
if [ "${1-}" != install ]; then exec "$REAL" -m pip "$@"; fi
shift
# Requirement files the grader already found met (by content): no interpreter to start.
if [ "$#" = 2 ] && { [ "$1" = -r ] || [ "$1" = --requirement ]; } && [ -f "$2" ]; then
  case " @MET@ " in *" $(sha256sum "$2" | cut -c1-64) "*) echo "Requirement already satisfied: every requirement of $2"; exit 0 ;; esac
fi
exec "$REAL" @CHECK@ "$@"
"""
# What `pip install` does on the runner: every requirement it names must already be met.
PIP_CHECK = r'''
import sys
from importlib.metadata import PackageNotFoundError, version
from packaging.requirements import InvalidRequirement, Requirement

args, wanted = sys.argv[1:], []
while args:
    arg = args.pop(0)
    if arg in ("-r", "--requirement", "-c", "--constraint") and args:
        path = args.pop(0)
        wanted += [line.split("#")[0].strip() for line in open(path, encoding="utf-8") if not line.startswith("-")]
    elif arg.startswith("-r") and len(arg) > 2:
        wanted += [line.split("#")[0].strip() for line in open(arg[2:], encoding="utf-8") if not line.startswith("-")]
    elif not arg.startswith("-") and arg not in (".",):
        wanted.append(arg)
missing = []
for text in filter(None, wanted):
    try:
        req = Requirement(text)
    except InvalidRequirement:
        continue
    if req.marker is not None and not req.marker.evaluate():
        continue
    try:
        have = version(req.name)
    except PackageNotFoundError:
        missing.append(f"{req} (not installed)")
        continue
    if req.specifier and not req.specifier.contains(have, prereleases=True):
        missing.append(f"{req} (the runner has {have})")
    else:
        print(f"Requirement already satisfied: {req.name}=={have}")
if missing:
    print("::error::the grader's runner has the lab's packages only and installs nothing; not met: "
          + "; ".join(missing), file=sys.stderr)
    sys.exit(1)
'''
LAUNCHER = """#!/bin/bash
# act with a runner's environment, nothing of the grader's (sandbox guards are kept).
keep=(); for k in PYTHONPATH PYTHONDONTWRITEBYTECODE LABKIT_SANDBOX_NET TMPDIR; do [ -n "${!k-}" ] && keep+=("$k=${!k}"); done
exec /usr/bin/env -i PATH=@PATH@ HOME=@HOME@ LANG=C.UTF-8 USER=runner "${keep[@]}" "$@"
"""


@dataclass(frozen=True)
class Event:
    """One GitHub event on the checkout: its name, the ref and commit GitHub reports, the
    files it changed (for paths filters) and its payload."""

    name: str
    ref: str
    sha: str
    changed: tuple[str, ...]
    payload: dict[str, Any]
    base_ref: str = ""  # pull_request: the branch merged into
    head_ref: str = ""


@dataclass(frozen=True)
class StageCall:
    stage: str
    job: str
    workflow: str
    start_ms: int
    end_ms: int
    status: int
    saw_secret: bool

    @property
    def passed(self) -> bool:
        return self.status == 0


@dataclass
class WorkflowRun:
    file: str
    name: str
    event: str
    run_id: int
    conclusion: str = ""  # success | failure
    jobs: dict[str, str] = field(default_factory=dict)  # job id -> success | failure | skipped
    log: dict[str, list[str]] = field(default_factory=dict)  # job id -> its output lines
    engine_output: str = ""


@dataclass
class Played:
    """What one event did: the workflow runs it started, and every stage call in them."""

    runs: list[WorkflowRun] = field(default_factory=list)
    stages: list[StageCall] = field(default_factory=list)
    problem: str = ""  # nothing could be played; why


def load_workflow(path: Path) -> Any:
    """YAML as GitHub reads it: the key `on` stays a string (YAML 1.1 would make it True)."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    if isinstance(raw, dict) and True in raw and "on" not in raw:
        raw["on"] = raw.pop(True)
    return raw


def workflow_files(root: Path) -> list[Path]:
    folder = root / ".github" / "workflows"
    return sorted(p for p in folder.iterdir() if p.suffix in (".yml", ".yaml") and p.is_file()) if folder.is_dir() else []


def triggers(raw: Any) -> dict[str, Any]:
    """``on:`` as a mapping event -> its filters (None when it has none)."""
    on = raw.get("on") if isinstance(raw, dict) else None
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return {str(e): None for e in on}
    return {str(k): v for k, v in on.items()} if isinstance(on, dict) else {}


def workflow_name(path: Path, raw: Any) -> str:
    name = raw.get("name") if isinstance(raw, dict) else None
    return str(name) if name else f".github/workflows/{path.name}"


# ---- GitHub's filter patterns -----------------------------------------------------------------

def _pattern_regex(pattern: str) -> re.Pattern:
    """GitHub's filter syntax: ``*`` no slash, ``**`` anything, ``?``/``+`` repeat the
    previous character (zero-or-one / one-or-more), ``[...]`` a class."""
    out, i = "", 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
            continue
        if c == "*":
            out += "[^/]*"
        elif c in "?+" and out:
            out += c
        elif c == "[":
            end = pattern.find("]", i)
            if end == -1:
                out += re.escape(c)
            else:
                out += pattern[i:end + 1]
                i = end
        else:
            out += re.escape(c)
        i += 1
    return re.compile(f"^{out}$")


def filter_matches(patterns: Any, value: str) -> bool:
    """Patterns in order, a ``!`` pattern excluding what the earlier ones included."""
    if isinstance(patterns, str):
        patterns = [patterns]
    matched = False
    for pattern in patterns or []:
        pattern = str(pattern)
        if pattern.startswith("!"):
            if matched and _pattern_regex(pattern[1:]).match(value):
                matched = False
        elif _pattern_regex(pattern).match(value):
            matched = True
    return matched


def accepts(filters: Any, event: Event) -> bool:
    """Does an ``on.<event>`` entry (its filters) accept this event?"""
    if not isinstance(filters, dict):
        return True
    if event.name == "push":
        kind, name = ("tags", event.ref[len("refs/tags/"):]) if event.ref.startswith("refs/tags/") else \
            ("branches", event.ref[len("refs/heads/"):])
        other = "branches" if kind == "tags" else "tags"
        has_ref_filter = any(k in filters for k in (kind, f"{kind}-ignore"))
        if not has_ref_filter and any(k in filters for k in (other, f"{other}-ignore")):
            return False  # only the other kind of ref is filtered: this kind never starts it
        if kind in filters and not filter_matches(filters[kind], name):
            return False
        if f"{kind}-ignore" in filters and filter_matches(filters[f"{kind}-ignore"], name):
            return False
    elif event.name == "pull_request":
        types = filters.get("types") or ["opened", "synchronize", "reopened"]
        if event.payload.get("action") not in ([types] if isinstance(types, str) else types):
            return False
        if "branches" in filters and not filter_matches(filters["branches"], event.base_ref):
            return False
        if "branches-ignore" in filters and filter_matches(filters["branches-ignore"], event.base_ref):
            return False
    if "paths" in filters and not any(filter_matches(filters["paths"], f) for f in event.changed):
        return False
    if "paths-ignore" in filters and event.changed and all(filter_matches(filters["paths-ignore"], f)
                                                            for f in event.changed):
        return False
    return True


# ---- actions ----------------------------------------------------------------------------------

def action_references(root: Path) -> list[tuple[str, str]]:
    """(file, uses) of every action or reusable workflow referenced under .github/."""
    found = []
    github = root / ".github"
    for path in sorted(github.rglob("*")) if github.is_dir() else []:
        if path.suffix not in (".yml", ".yaml") or not path.is_file():
            continue
        try:
            raw = load_workflow(path)
        except yaml.YAMLError:
            continue
        found += [(path.relative_to(root).as_posix(), value) for value in values_of_key(raw, "uses")]
    return found


def values_of_key(node: Any, key: str):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key and isinstance(v, str):
                yield v
            else:
                yield from values_of_key(v, key)
    elif isinstance(node, list):
        for item in node:
            yield from values_of_key(item, key)


def remote_actions(root: Path) -> tuple[dict[str, str], list[str]]:
    """({owner/repo@ref: stand-in folder}, [references that have no stand-in])."""
    mapped, missing = {}, []
    for file, uses in action_references(root):
        if uses.startswith("./"):
            continue
        repo, _, ref = uses.partition("@")
        slug = "/".join(repo.split("/")[:2])
        if ref and slug in KNOWN_ACTIONS and not repo.startswith("docker://"):
            mapped[f"{slug}@{ref}"] = KNOWN_ACTIONS[slug]
        else:
            missing.append(f"{uses} (in {file})")
    return mapped, sorted(set(missing))


# ---- payloads ---------------------------------------------------------------------------------

REPOSITORY_PAYLOAD = {
    "id": 802117365, "node_id": "R_kgDOL9Xk9Q", "name": REPOSITORY, "full_name": FULL_NAME, "private": True,
    "owner": {"login": OWNER, "id": 91823410, "node_id": "O_kgDOBXkYMg", "type": "Organization",
              "html_url": f"{SERVER_URL}/{OWNER}"},
    "html_url": f"{SERVER_URL}/{FULL_NAME}", "description": "Late-delivery model: training pipeline", "fork": False,
    "url": f"https://api.github.com/repos/{FULL_NAME}", "clone_url": f"{SERVER_URL}/{FULL_NAME}.git",
    "git_url": f"git://github.com/{FULL_NAME}.git", "ssh_url": f"git@github.com:{FULL_NAME}.git",
    "default_branch": DEFAULT_BRANCH, "visibility": "private", "archived": False, "disabled": False,
    "has_issues": True, "topics": [], "language": "Python",
}
SENDER = {"login": ACTOR, "id": 58214433, "node_id": "MDQ6VXNlcjU4MjE0NDMz", "type": "User",
          "html_url": f"{SERVER_URL}/{ACTOR}", "site_admin": False}


def commit_payload(sha: str, tree: str, message: str, timestamp: str, changes: dict[str, list[str]]) -> dict:
    person = {"name": ACTOR, "email": f"{ACTOR}@example.com", "username": ACTOR}
    return {"id": sha, "tree_id": tree, "distinct": True, "message": message, "timestamp": timestamp,
            "url": f"{SERVER_URL}/{FULL_NAME}/commit/{sha}", "author": person, "committer": person, **changes}


def push_payload(*, ref: str, before: str, after: str, commit: dict) -> dict:
    return {"ref": ref, "before": before, "after": after, "created": set(before) == {"0"}, "deleted": False,
            "forced": False, "base_ref": None, "compare": f"{SERVER_URL}/{FULL_NAME}/compare/{before[:12]}...{after[:12]}",
            "commits": [commit], "head_commit": commit, "pusher": {"name": ACTOR, "email": f"{ACTOR}@example.com"},
            "repository": {**REPOSITORY_PAYLOAD, "master_branch": DEFAULT_BRANCH}, "sender": SENDER}


def pull_request_payload(*, number: int, head_ref: str, head_sha: str, base_sha: str, merge_sha: str,
                         title: str, changed_files: int) -> dict:
    side = lambda ref, sha: {"label": f"{OWNER}:{ref}", "ref": ref, "sha": sha, "user": REPOSITORY_PAYLOAD["owner"],
                             "repo": REPOSITORY_PAYLOAD}
    return {"action": "opened", "number": number, "pull_request": {
        "number": number, "state": "open", "locked": False, "title": title, "user": SENDER, "body": None,
        "html_url": f"{SERVER_URL}/{FULL_NAME}/pull/{number}", "draft": False, "merged": False,
        "merge_commit_sha": merge_sha, "head": side(head_ref, head_sha), "base": side(DEFAULT_BRANCH, base_sha),
        "author_association": "MEMBER", "commits": 1, "changed_files": changed_files},
        "repository": REPOSITORY_PAYLOAD, "sender": SENDER}


# ---- the engine -------------------------------------------------------------------------------

class Engine:
    """Plays the workflows of one checkout for one event with act; see the module docstring."""

    def __init__(self, run: Callable[..., Any], act: str, *, secrets: dict[str, str], variables: dict[str, str],
                 python: str = sys.executable) -> None:
        self._run, self._act, self._python = run, act, python
        self._secrets, self._vars = secrets, variables
        self._run_number = 40 + token_source.randbelow(60)

    def play(self, repo: Path, event: Event, work: Path, *, run_id: int | None = None, attempt: int = 1) -> Played:
        """Play every workflow file of ``repo`` that ``event`` starts, then the ones their
        completion starts (workflow_run); ``work`` is this play's own folder."""
        played = Played()
        _, missing = remote_actions(repo)
        if missing:
            played.problem = ("the workflow uses actions the grader has no stand-in for, so it was not run: "
                              + "; ".join(missing) + f" (stand-ins exist for {', '.join(sorted(KNOWN_ACTIONS))})")
            return played
        tells = [f".github/{p.relative_to(repo / '.github').as_posix()}" for p in sorted((repo / ".github").rglob("*"))
                 if p.is_file() and p.suffix in (".yml", ".yaml") and ACT_TELL.search(p.read_text(errors="replace"))]
        if tells:
            played.problem = ("the workflow reads the variable ACT, which only the act runner sets (never GitHub), "
                              f"so it was not run: {', '.join(tells)}")
            return played
        files = []
        for path in workflow_files(repo):
            try:
                raw = load_workflow(path)
            except yaml.YAMLError as exc:
                played.problem = f"GitHub cannot parse .github/workflows/{path.name}: {exc}"
                return played
            files.append((path, raw))
        started = [(p, raw) for p, raw in files if event.name in triggers(raw) and accepts(triggers(raw)[event.name], event)]
        pending: list[tuple[Path, Any, Event, int]] = [(p, raw, event, 0) for p, raw in started]
        while pending:
            path, raw, current, depth = pending.pop(0)
            run = self._play_file(repo, path, raw, current, work, run_id=run_id if depth == 0 else None,
                                  attempt=attempt if depth == 0 else 1, played=played)
            played.runs.append(run)
            if depth < 3:  # GitHub chains workflow_run at most three levels deep
                for other, other_raw in files:
                    follow = self._workflow_run_event(run, other_raw, event)
                    if follow is not None:
                        pending.append((other, other_raw, follow, depth + 1))
        return played

    def _workflow_run_event(self, run: WorkflowRun, raw: Any, origin: Event) -> Event | None:
        filters = triggers(raw).get("workflow_run")
        if "workflow_run" not in triggers(raw) or not isinstance(filters, dict):
            return None
        names = filters.get("workflows") or []
        if run.name not in ([names] if isinstance(names, str) else names):
            return None
        types = filters.get("types") or ["completed", "requested"]
        if "completed" not in ([types] if isinstance(types, str) else types):
            return None
        head_branch = origin.head_ref or origin.ref.removeprefix("refs/heads/")
        if "branches" in filters and not filter_matches(filters["branches"], head_branch):
            return None
        if "branches-ignore" in filters and filter_matches(filters["branches-ignore"], head_branch):
            return None
        payload = {"action": "completed", "workflow_run": {
            "id": run.run_id, "name": run.name, "path": f".github/workflows/{run.file}", "event": origin.name,
            "status": "completed", "conclusion": run.conclusion, "head_branch": head_branch,
            "head_sha": origin.payload.get("pull_request", {}).get("head", {}).get("sha", origin.sha),
            "run_number": self._run_number, "run_attempt": 1, "repository": REPOSITORY_PAYLOAD,
            "head_repository": REPOSITORY_PAYLOAD, "html_url": f"{SERVER_URL}/{FULL_NAME}/actions/runs/{run.run_id}"},
            "workflow": {"name": run.name, "path": f".github/workflows/{run.file}", "state": "active"},
            "repository": REPOSITORY_PAYLOAD, "sender": SENDER}
        # workflow_run runs on the default branch's latest commit, whatever started the first run.
        main_sha = origin.sha if origin.name == "push" else origin.payload["pull_request"]["base"]["sha"]
        return Event("workflow_run", f"refs/heads/{DEFAULT_BRANCH}", main_sha, (), payload)

    def _play_file(self, repo: Path, path: Path, raw: Any, event: Event, work: Path, *, run_id: int | None,
                   attempt: int, played: Played) -> WorkflowRun:
        run_id = run_id or 12_000_000_000 + token_source.randbelow(10**9)
        self._run_number += 1
        runner = work / f"runner-{len(played.runs)}"
        bin_dir, home, records = runner / "bin", runner / "home", runner / "stages.tsv"
        for folder in (bin_dir, home, runner / "artifacts", runner / "tool_cache"):
            folder.mkdir(parents=True, exist_ok=True)
        records.touch()
        # The run's artifacts are shared by the workflow runs of one event (download by run-id).
        store = work / "artifacts"
        store.mkdir(exist_ok=True)
        self._write_shims(bin_dir, records, repo)
        local = []
        mapped, _ = remote_actions(repo)
        for reference, folder in sorted(mapped.items()):
            target = runner / "actions" / reference.replace("/", "__").replace("@", "__")
            shutil.copytree(STANDINS / folder, target)
            for sub in [target, *[p for p in target.iterdir() if p.is_dir()]]:
                (sub / "grader.conf").write_text(f"ORIGIN={repo}\nARTIFACTS={store}\n")
                if folder.endswith("artifact"):
                    shutil.copy2(STANDINS / "artifacts.py", sub / "artifacts.py")
            local += ["--local-repository", f"{reference}={target}"]
        event_file = runner / "event.json"
        event_file.write_text(json.dumps(event.payload, indent=2))
        secret_file, var_file = runner / "secrets.env", runner / "vars.env"
        secret_file.write_text("".join(f"{k}={json.dumps(v)}\n" for k, v in self._secrets.items()))
        var_file.write_text("".join(f"{k}={json.dumps(v)}\n" for k, v in self._vars.items()))
        launcher = runner / "launch"
        path_value = f"{bin_dir}:{Path(self._python).parent}:/usr/local/bin:/usr/bin:/bin"
        launcher.write_text(_fill(LAUNCHER, PATH=_sh(path_value), HOME=_sh(str(home))))
        launcher.chmod(0o755)
        env = {
            "GITHUB_REF": event.ref, "GITHUB_RUN_ID": str(run_id), "GITHUB_RUN_NUMBER": str(self._run_number),
            "GITHUB_RUN_ATTEMPT": str(attempt), "GITHUB_RETENTION_DAYS": "90", "GITHUB_ACTOR_ID": str(SENDER["id"]),
            "GITHUB_TRIGGERING_ACTOR": ACTOR, "GITHUB_REPOSITORY_ID": str(REPOSITORY_PAYLOAD["id"]),
            "GITHUB_REPOSITORY_OWNER_ID": str(REPOSITORY_PAYLOAD["owner"]["id"]),
            "GITHUB_WORKFLOW_REF": f"{FULL_NAME}/.github/workflows/{path.name}@{event.ref}",
            "GITHUB_WORKFLOW_SHA": event.sha, "GITHUB_REF_PROTECTED": str(event.ref == f"refs/heads/{DEFAULT_BRANCH}").lower(),
            "RUNNER_NAME": f"GitHub Actions {1000000000 + token_source.randbelow(10**6)}",
            "RUNNER_ENVIRONMENT": "github-hosted", "RUNNER_TRACKING_ID": f"github_{uuid.uuid4()}",
            "RUNNER_PERFLOG": str(runner / "perflog"),
        }
        argv = [str(launcher), self._act, event.name, "--json", "-C", str(repo), "-W", str(path), "--no-recurse",
                "-e", str(event_file), *[a for label in RUNNER_LABELS for a in ("-P", f"{label}=-self-hosted")],
                "--action-offline-mode", "--no-cache-server", "--no-skip-checkout", "--env-file", "/dev/null",
                "--secret-file", str(secret_file), "--var-file", str(var_file), "--input-file", "/dev/null",
                "--action-cache-path", str(runner / "cache"), "--actor", ACTOR, "--defaultbranch", DEFAULT_BRANCH,
                *local, *[a for k, v in env.items() for a in ("--env", f"{k}={v}")]]
        proc = self._run(argv, cwd=work, timeout=ACT_TIMEOUT_S, env={})
        run = WorkflowRun(path.name, workflow_name(path, raw), event.name, run_id)
        engine_lines = _parse_log((proc.stdout or "") + "\n" + (proc.stderr or ""), run)
        if proc.timed_out:
            engine_lines.append(f"the workflow run was stopped after {ACT_TIMEOUT_S} s")
        run.conclusion = "success" if proc.returncode == 0 and not proc.timed_out else "failure"
        run.engine_output = "\n".join(engine_lines[-20:])
        for line in records.read_text().splitlines():
            m = STAGE_LINE.match(line)
            if m:
                played.stages.append(StageCall(m["stage"], m["job"], m["workflow"], int(m["start"]), int(m["end"]),
                                               int(m["status"]), m["token"] == "yes"))
        played.stages.sort(key=lambda s: s.start_ms)
        return run

    def _write_shims(self, bin_dir: Path, records: Path, repo: Path) -> None:
        real = _sh(self._python)
        secret = _sh(self._secrets.get("MLFLOW_TRACKING_TOKEN", ""))
        pip = _sh(str(bin_dir / "pip"))
        shims = {
            "bash": SHELL_SHIM + 'exec /bin/bash "$@"\n',
            "sh": SHELL_SHIM + 'exec /bin/sh "$@"\n',
            "python": _fill(PYTHON_SHIM, REAL=real, SECRET=secret, RECORDS=_sh(str(records)), PIP=pip),
            "pip": _fill(PIP_SHIM, REAL=real, CHECK=_sh(str(bin_dir / "pip-check.py")), MET=" ".join(_met(repo))),
        }
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        shims.update({"python3": shims["python"], f"python{version}": shims["python"], "pip3": shims["pip"]})
        (bin_dir / "pip-check.py").write_text(PIP_CHECK)
        for name, text in shims.items():
            (bin_dir / name).write_text(text)
            (bin_dir / name).chmod(0o755)


def _met(repo: Path) -> list[str]:
    """sha256 of each requirements file of the checkout whose every requirement this Python meets."""
    import hashlib
    from importlib.metadata import PackageNotFoundError, version

    from packaging.requirements import InvalidRequirement, Requirement

    met = []
    for path in sorted(repo.glob("requirements*.txt")):
        try:
            lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
            ok = True
            for req in (Requirement(line) for line in lines if line and not line.startswith("-")):
                if req.marker is not None and not req.marker.evaluate():
                    continue
                if req.specifier and not req.specifier.contains(version(req.name), prereleases=True):
                    ok = False
                else:
                    version(req.name)
        except (OSError, InvalidRequirement, PackageNotFoundError):
            ok = False
        if ok:
            met.append(hashlib.sha256(path.read_bytes()).hexdigest())
    return met


def _fill(template: str, **values: str) -> str:
    for key, value in values.items():
        template = template.replace(f"@{key}@", value)
    return template


def _sh(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def _parse_log(text: str, run: WorkflowRun) -> list[str]:
    """act's JSON log: job results and each job's output lines; other lines are act's own."""
    engine = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            if line.strip():
                engine.append(line)
            continue
        if not isinstance(entry, dict):
            continue
        job = str(entry.get("jobID") or "")
        if "jobResult" in entry and job:
            run.jobs[job] = str(entry["jobResult"])
        elif entry.get("raw_output") and job:
            run.log.setdefault(job, []).append(str(entry.get("msg", "")).rstrip("\n"))
        elif job and (entry.get("stepResult") == "failure" or entry.get("level") in ("error", "warning")):
            # a failed step, or an ::error::/::warning:: annotation (not echoed as output)
            run.log.setdefault(job, []).append(str(entry.get("msg", "")).strip())
        elif entry.get("level") in ("error", "fatal") or (not job and entry.get("level") == "warning"):
            engine.append(str(entry.get("msg", "")))
    return engine


def find_act() -> str:
    from labkit.kube.tools import find_tool, offline_versions

    path = find_tool("act")
    if path is None:
        version = offline_versions().get("ACT_VERSION", "v0.2.89")
        raise InfraError("act (nektos/act), the engine this lab plays workflows on, is not installed: run "
                         f"`bash infra/offline/17-act.sh` or `go install github.com/nektos/act@{version}`")
    return path
