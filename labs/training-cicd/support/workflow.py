"""The candidate's GitHub Actions workflow, read the way GitHub reads it.

Finds the workflow that calls the pipeline's stages, validates it against GitHub's
workflow JSON schema (the copy check-jsonschema vendors from SchemaStore), and
answers structural questions: which job runs which stage, what runs after what,
which actions are pinned, where secrets come from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

WORKFLOWS_DIR = Path(".github/workflows")
STAGES = ("test", "validate", "train", "evaluate", "register", "deploy")
# (before, after): `after` may only run once `before` has succeeded.
ORDER = (
    ("test", "train"),
    ("validate", "train"),
    ("train", "evaluate"),
    ("evaluate", "register"),
    ("register", "deploy"),
    ("evaluate", "deploy"),
)
CHAIN = "test + validate -> train -> evaluate -> register -> deploy"
STAGE_COMMAND = re.compile(r"\bpython3?\s+-m\s+pipeline\s+(" + "|".join(STAGES) + r")\b")
FULL_SHA = re.compile(r"^[^@\s]+@[0-9a-f]{40}$")
SECRET_NAME = re.compile(r"(TOKEN|PASSWORD|PASSWD|SECRET|API_?KEY|ACCESS_?KEY|CREDENTIAL)", re.I)
SECRET_REFERENCE = re.compile(r"^\$\{\{\s*secrets\.[A-Za-z_][A-Za-z0-9_]*\s*\}\}$")
# Assignments of a literal to a secret-looking variable inside a shell script.
INLINE_SECRET = re.compile(
    r"\b\w*(?:TOKEN|PASSWORD|SECRET|API_?KEY)\w*\s*=\s*['\"]?(?!\$)[A-Za-z0-9_\-./+]{8,}", re.I
)


class WorkflowError(Exception):
    """The workspace has no workflow the grader can read; the message says why."""


@dataclass(frozen=True)
class Step:
    index: int
    name: str
    uses: str | None
    run: str | None
    condition: Any
    continue_on_error: bool
    env: dict[str, Any]

    @property
    def stages(self) -> list[str]:
        return STAGE_COMMAND.findall(self.run or "")


@dataclass(frozen=True)
class Job:
    id: str
    needs: tuple[str, ...]
    condition: Any
    continue_on_error: bool
    env: dict[str, Any]
    steps: tuple[Step, ...]
    uses: str | None = None  # a reusable workflow


@dataclass
class Workflow:
    path: Path
    raw: dict[str, Any]
    env: dict[str, Any]
    jobs: dict[str, Job] = field(default_factory=dict)

    @property
    def rel(self) -> str:
        return f"{WORKFLOWS_DIR.as_posix()}/{self.path.name}"

    def stage_steps(self, stage: str) -> list[tuple[Job, Step]]:
        return [(job, step) for job in self.jobs.values() for step in job.steps if stage in step.stages]

    def ancestors(self, job_id: str) -> set[str]:
        seen: set[str] = set()
        todo = list(self.jobs[job_id].needs) if job_id in self.jobs else []
        while todo:
            current = todo.pop()
            if current in seen or current not in self.jobs:
                continue
            seen.add(current)
            todo.extend(self.jobs[current].needs)
        return seen

    def runs_after(self, before: str, after: str) -> bool:
        """Every step running `after` waits for a step running `before` (earlier in its job, or in a needed job)."""
        firsts = self.stage_steps(before)
        lasts = self.stage_steps(after)
        if not firsts or not lasts:
            return False
        for job, step in lasts:
            earlier = any(j.id == job.id and s.index < step.index for j, s in firsts)
            upstream = any(j.id in self.ancestors(job.id) for j, _ in firsts)
            if not (earlier or upstream):
                return False
        return True

    def execution_order(self) -> list[Job]:
        """Jobs in an order GitHub could run them (needs first, then file order)."""
        done: list[str] = []
        pending = list(self.jobs)
        while pending:
            ready = [j for j in pending if all(n in done or n not in self.jobs for n in self.jobs[j].needs)]
            if not ready:  # a cycle: GitHub refuses such a file; run nothing more
                break
            done.append(ready[0])
            pending.remove(ready[0])
        return [self.jobs[j] for j in done]


def load_yaml(path: Path) -> Any:
    """YAML as GitHub reads it: the key `on` stays a string (YAML 1.1 would make it true)."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    if isinstance(raw, dict) and True in raw and "on" not in raw:
        raw["on"] = raw.pop(True)
    return raw


def workflow_files(root: Path) -> list[Path]:
    folder = root / WORKFLOWS_DIR
    return sorted(p for p in folder.glob("*") if p.suffix in (".yml", ".yaml") and p.is_file()) if folder.is_dir() else []


def pipeline_workflow(root: Path) -> Workflow:
    """The workflow that calls the most stages (``python -m pipeline STAGE``)."""
    files = workflow_files(root)
    if not files:
        raise WorkflowError(f"there is no workflow file in {WORKFLOWS_DIR}/")
    best: Workflow | None = None
    problems = []
    for path in files:
        try:
            workflow = parse(path)
        except (yaml.YAMLError, WorkflowError) as exc:
            problems.append(f"{path.name}: {exc}")
            continue
        count = len({s for j in workflow.jobs.values() for st in j.steps for s in st.stages})
        best_count = len({s for j in best.jobs.values() for st in j.steps for s in st.stages}) if best else -1
        if count > best_count:
            best = workflow
    if best is None:
        raise WorkflowError("no workflow could be read: " + "; ".join(problems))
    return best


def parse(path: Path) -> Workflow:
    raw = load_yaml(path)
    if not isinstance(raw, dict) or not isinstance(raw.get("jobs"), dict):
        raise WorkflowError("it has no `jobs` mapping")
    workflow = Workflow(path=path, raw=raw, env=_mapping(raw.get("env")))
    for job_id, spec in raw["jobs"].items():
        spec = spec if isinstance(spec, dict) else {}
        needs = spec.get("needs") or ()
        needs = (needs,) if isinstance(needs, str) else tuple(str(n) for n in needs)
        steps = tuple(
            Step(
                index=i,
                name=str(step.get("name") or step.get("uses") or (step.get("run") or "").strip()[:40]),
                uses=step.get("uses"),
                run=step.get("run"),
                condition=step.get("if"),
                continue_on_error=step.get("continue-on-error") is True
                or str(step.get("continue-on-error")).strip().lower() == "true",
                env=_mapping(step.get("env")),
            )
            for i, step in enumerate(spec.get("steps") or [])
            if isinstance(step, dict)
        )
        workflow.jobs[str(job_id)] = Job(
            id=str(job_id), needs=needs, condition=spec.get("if"),
            continue_on_error=spec.get("continue-on-error") is True, env=_mapping(spec.get("env")),
            steps=steps, uses=spec.get("uses"),
        )
    return workflow


def schema_problems(raw: Any) -> list[str]:
    """Errors of the workflow against GitHub's workflow schema (SchemaStore, as check-jsonschema ships it)."""
    from check_jsonschema.builtin_schemas import get_builtin_schema
    from jsonschema import Draft7Validator
    from jsonschema.exceptions import best_match

    validator = Draft7Validator(get_builtin_schema("vendor.github-workflows"))
    problems = []
    for error in sorted(validator.iter_errors(raw), key=lambda e: list(map(str, e.absolute_path))):
        # oneOf/anyOf errors are long and vague; the most relevant sub-error says what is wrong.
        best = best_match([error])
        where = ".".join(str(p) for p in best.absolute_path) or "top level"
        message = best.message if len(best.message) < 200 else best.message[:200] + "…"
        problems.append(f"{where}: {message}")
    return problems


def triggers(raw: dict[str, Any]) -> set[str]:
    on = raw.get("on")
    if isinstance(on, str):
        return {on}
    if isinstance(on, list):
        return {str(x) for x in on}
    if isinstance(on, dict):
        return {str(x) for x in on}
    return set()


def order_problems(workflow: Workflow) -> list[str]:
    missing = [stage for stage in STAGES if not workflow.stage_steps(stage)]
    if missing:
        return [f"no job runs `python -m pipeline {stage}`" for stage in missing]
    return [
        f"`{after}` can run without waiting for `{before}` to succeed"
        for before, after in ORDER
        if not workflow.runs_after(before, after)
    ]


def action_references(root: Path) -> list[tuple[str, str]]:
    """(file, uses) of every action or reusable workflow referenced under .github/."""
    found = []
    for path in sorted((root / ".github").rglob("*")) if (root / ".github").is_dir() else []:
        if path.suffix not in (".yml", ".yaml") or not path.is_file():
            continue
        try:
            raw = load_yaml(path)
        except yaml.YAMLError:
            continue
        for value in _values_of_key(raw, "uses"):
            found.append((path.relative_to(root).as_posix(), str(value)))
    return found


def unpinned(references: list[tuple[str, str]]) -> list[str]:
    """References that a tag or branch move could change under us (local and digest-pinned ones are fine)."""
    bad = []
    for file, uses in references:
        if uses.startswith("./") or re.match(r"^docker://.+@sha256:[0-9a-f]{64}$", uses):
            continue
        if not FULL_SHA.match(uses):
            bad.append(f"{file}: {uses}")
    return bad


def secret_problems(workflow: Workflow, root: Path, leaked: tuple[str, ...], token_var: str) -> list[str]:
    problems = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and ".git" not in path.parts and path.stat().st_size < 2_000_000:
            text = path.read_text(errors="replace")
            if any(secret in text for secret in leaked):
                problems.append(f"{path.relative_to(root).as_posix()} still holds the leaked MLflow token")
    for where, key, value in _env_entries(workflow):
        if SECRET_NAME.search(key) and not SECRET_REFERENCE.match(str(value).strip()) and not re.match(
            r"^\$\{\{\s*github\.token\s*\}\}$", str(value).strip()
        ):
            problems.append(f"{where} sets {key} to something other than a repository secret")
    for job in workflow.jobs.values():
        for step in job.steps:
            if step.run and INLINE_SECRET.search(step.run):
                problems.append(f"a `run:` script of job {job.id} writes a credential inline")
    for stage in ("train", "evaluate", "register", "deploy"):
        for job, step in workflow.stage_steps(stage):
            env = {**workflow.env, **job.env, **step.env}
            if not SECRET_REFERENCE.match(str(env.get(token_var, "")).strip()):
                problems.append(f"job {job.id} runs `{stage}` without {token_var} from the repository's secrets")
    return sorted(set(problems), key=problems.index)


def _env_entries(workflow: Workflow):
    for key, value in workflow.env.items():
        yield "the workflow's env", key, value
    for job in workflow.jobs.values():
        for key, value in job.env.items():
            yield f"job {job.id}'s env", key, value
        for step in job.steps:
            for key, value in step.env.items():
                yield f"a step of job {job.id}", key, value
        spec = workflow.raw["jobs"].get(job.id) or {}
        for step in spec.get("steps") or []:
            if isinstance(step, dict) and isinstance(step.get("with"), dict):
                for key, value in step["with"].items():
                    yield f"a step of job {job.id} (with:)", str(key), value


def _values_of_key(node: Any, key: str):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key and isinstance(v, str):
                yield v
            else:
                yield from _values_of_key(v, key)
    elif isinstance(node, list):
        for item in node:
            yield from _values_of_key(item, key)


def _mapping(value: Any) -> dict[str, Any]:
    return {str(k): v for k, v in value.items()} if isinstance(value, dict) else {}
