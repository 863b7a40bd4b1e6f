"""What the workflow files say, read as GitHub and a security review read them.

Everything the workflows *do* is learnt by playing them (support/engine.py); this module
only answers questions about their text: does GitHub's schema accept each file, which
events start them, are the stages called in plain sight, is every action pinned to a
commit, does any file hold a credential. Files are parsed with PyYAML (as GitHub reads
them: `on` stays a key) and walked as data; no workflow semantics is re-implemented here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from support.engine import action_references, load_workflow, triggers, values_of_key, workflow_files

STAGES = ("test", "validate", "train", "evaluate", "register", "deploy")
# (before, after): `after` may only start once `before` has passed.
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
# Literal words that configure something rather than being a credential (`mask-password: "true"`).
NOT_A_CREDENTIAL = {"", "true", "false", "yes", "no", "on", "off", "none", "null", "auto", "***"}
# A quoted literal inside an expression: ${{ 'mlf-…' }} is plain text in disguise.
QUOTED_LITERAL = re.compile(r"'([^']{8,})'")
CONTEXT_INDEX = re.compile(r"[\w.\]]\s*\[\s*'[^']*'\s*\]")
# Assignments of a literal to a secret-looking variable inside a shell script.
INLINE_SECRET = re.compile(
    r"\b\w*(?:TOKEN|PASSWORD|SECRET|API_?KEY)\w*\s*=\s*['\"]?(?![$'\"\s])[A-Za-z0-9_\-./+]{8,}", re.I
)


@dataclass(frozen=True)
class WorkflowFile:
    path: Path
    raw: Any

    @property
    def rel(self) -> str:
        return f".github/workflows/{self.path.name}"


class WorkflowError(Exception):
    """The workspace has no workflow the grader can read; the message says why."""


def read_workflows(root: Path) -> list[WorkflowFile]:
    files = workflow_files(root)
    if not files:
        raise WorkflowError("there is no workflow file in .github/workflows/")
    out, problems = [], []
    for path in files:
        try:
            out.append(WorkflowFile(path, load_workflow(path)))
        except yaml.YAMLError as exc:
            problems.append(f".github/workflows/{path.name} is not valid YAML: {str(exc)[:300]}")
    if problems:
        raise WorkflowError("; ".join(problems))
    return out


def schema_problems(raw: Any) -> list[str]:
    """Errors of one workflow against GitHub's workflow schema (SchemaStore, as check-jsonschema ships it)."""
    from check_jsonschema.builtin_schemas import get_builtin_schema
    from jsonschema import Draft7Validator
    from jsonschema.exceptions import best_match

    validator = Draft7Validator(get_builtin_schema("vendor.github-workflows"))
    problems = []
    for error in sorted(validator.iter_errors(raw), key=lambda e: list(map(str, e.absolute_path))):
        best = best_match([error])  # oneOf/anyOf errors are vague; the best sub-error says what is wrong
        where = ".".join(str(p) for p in best.absolute_path) or "top level"
        message = best.message if len(best.message) < 200 else best.message[:200] + "…"
        problems.append(f"{where}: {message}")
    return problems


def events(workflows: list[WorkflowFile]) -> set[str]:
    return {event for w in workflows for event in triggers(w.raw)}


def stage_calls(root: Path) -> set[str]:
    """The stages called by a `run:` anywhere under .github/ (workflows and local actions)."""
    found: set[str] = set()
    github = root / ".github"
    for path in sorted(github.rglob("*")) if github.is_dir() else []:
        if path.suffix in (".yml", ".yaml") and path.is_file():
            try:
                raw = load_workflow(path)
            except yaml.YAMLError:
                continue
            for script in values_of_key(raw, "run"):
                found.update(STAGE_COMMAND.findall(script))
    return found


def unpinned(root: Path) -> list[str]:
    """References that a tag or branch move could change under us (local and digest-pinned ones are fine)."""
    bad = []
    for file, uses in action_references(root):
        if uses.startswith("./") or re.match(r"^docker://.+@sha256:[0-9a-f]{64}$", uses):
            continue
        if not FULL_SHA.match(uses):
            bad.append(f"{file}: {uses}")
    return bad


def secret_problems(root: Path, leaked: tuple[str, ...]) -> list[str]:
    """Credentials in plain text: the leaked token in any file, a secret-looking `env:` or
    `with:` key set to a literal, a shell script assigning one. Expressions are fine
    (`${{ secrets.X }}`, `${{ secrets['X'] }}`, `${{ steps.app.outputs.token }}`), and so are
    settings that merely name a credential (`persist-credentials: false`, `mask-password: "true"`)."""
    problems = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and ".git" not in path.parts and path.stat().st_size < 2_000_000:
            text = path.read_text(errors="replace")
            if any(secret in text for secret in leaked):
                problems.append(f"{path.relative_to(root).as_posix()} still holds the leaked MLflow token")
    github = root / ".github"
    for path in sorted(github.rglob("*")) if github.is_dir() else []:
        if path.suffix not in (".yml", ".yaml") or not path.is_file():
            continue
        try:
            raw = load_workflow(path)
        except yaml.YAMLError:
            continue
        rel = path.relative_to(root).as_posix()
        for where, key, value in _settings(raw):
            if SECRET_NAME.search(key) and _is_plain_credential(value):
                problems.append(f"{rel}: {where} sets {key} to a literal value instead of a repository secret")
        for script in values_of_key(raw, "run"):
            if INLINE_SECRET.search(script):
                problems.append(f"{rel}: a `run:` script writes a credential inline")
    return sorted(set(problems), key=problems.index)


def _is_plain_credential(value: Any) -> bool:
    if not isinstance(value, str):
        return False  # booleans and numbers configure, they do not authenticate
    text = value.strip()
    if "${{" in text:
        expressions = re.findall(r"\$\{\{(.*?)\}\}", text, re.S)
        # secrets['NAME'] indexes a context: a name, not a value
        return any(QUOTED_LITERAL.search(CONTEXT_INDEX.sub("", expr)) for expr in expressions)
    return text.lower() not in NOT_A_CREDENTIAL and len(text) >= 8 and not text.startswith("$")


def _settings(node: Any, path: tuple = ()):
    """(where, key, value) of every `env:` and `with:` entry, at any depth."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("env", "with") and isinstance(v, dict):
                for key, value in v.items():
                    yield f"{_where(path)} ({k}:)", str(key), value
            elif isinstance(v, (dict, list)):
                yield from _settings(v, (*path, k))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _settings(item, (*path, i))


def _where(path: tuple) -> str:
    job = path[path.index("jobs") + 1] if "jobs" in path and len(path) > path.index("jobs") + 1 else None
    if "steps" in path:
        return f"a step of job {job}" if job is not None else "a step"
    return f"job {job}" if job is not None else "the workflow"


