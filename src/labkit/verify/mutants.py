"""Mutants of a lab's reference solution: the mechanical adversary a grader must survive.

A grader's authors share its blind spots, so its own wrong-fix corpus is not enough; a
mutant is a small, mechanical change to the fix (a comparison turned round, a condition
negated, a number changed, a configuration key dropped) that a sound grader should
notice. Only the lines the solution changes relative to the starter are mutated: that is
the candidate's work, the thing a grade judges.

Python is mutated with cosmic-ray's operators (pinned in the dev extra; chosen because it
exposes single mutations of source text, `mutate_code(code, operator, occurrence)`, which
is what grading a mutant as a whole program needs, where mutmut's trampolines expect its
own test runner). YAML files (manifests, workflows, monitor.yaml) get labkit's own
mutators: drop a key, change a number, flip a boolean.
"""

from __future__ import annotations

import difflib
import hashlib
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from labkit.catalog import Lab
from labkit.errors import SpecError

# Operators that change behaviour a brief can specify; the exotic binary replacements
# (Add→BitXor, …) mostly produce crashes any grade catches and would only pad the count.
PYTHON_OPERATORS = (
    "core/AddNot", "core/ReplaceAndWithOr", "core/ReplaceOrWithAnd", "core/NumberReplacer",
    "core/ReplaceTrueWithFalse", "core/ReplaceFalseWithTrue", "core/ZeroIterationForLoop",
    "core/ReplaceBreakWithContinue", "core/ReplaceContinueWithBreak", "core/ReplaceUnaryOperator_Delete_Not",
    "core/ReplaceUnaryOperator_Delete_USub", "core/ReplaceBinaryOperator_Add_Sub", "core/ReplaceBinaryOperator_Sub_Add",
    "core/ReplaceBinaryOperator_Mul_Div", "core/ReplaceBinaryOperator_Div_Mul",
    "core/ReplaceComparisonOperator_Lt_Gt", "core/ReplaceComparisonOperator_Gt_Lt",
    "core/ReplaceComparisonOperator_LtE_GtE", "core/ReplaceComparisonOperator_GtE_LtE",
    "core/ReplaceComparisonOperator_Lt_LtE", "core/ReplaceComparisonOperator_LtE_Lt",
    "core/ReplaceComparisonOperator_Gt_GtE", "core/ReplaceComparisonOperator_GtE_Gt",
    "core/ReplaceComparisonOperator_Eq_NotEq", "core/ReplaceComparisonOperator_NotEq_Eq",
    "core/ReplaceComparisonOperator_Is_IsNot", "core/ReplaceComparisonOperator_IsNot_Is",
)
EQUIVALENT_FILE = "mutants/equivalent.yaml"


@dataclass(frozen=True)
class Mutant:
    """One change to one solution file; ``id`` is stable while the solution is unchanged."""

    id: str
    path: str  # relative to the workspace
    line: int
    description: str
    text: str  # the whole mutated file

    def apply(self, workspace: Path) -> None:
        (workspace / self.path).write_text(self.text, encoding="utf-8")

    def diff(self, original: str) -> str:
        return "".join(difflib.unified_diff(original.splitlines(True), self.text.splitlines(True),
                                            f"a/{self.path}", f"b/{self.path}", n=1))


def solution_mutants(lab: Lab, starter_root: Path) -> list[Mutant]:
    """Every mutant of the lines the solution changes; ``starter_root`` is the rendered starter."""
    out: list[Mutant] = []
    solution = lab.path / "solution"
    for path in sorted(p for p in solution.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        rel = path.relative_to(solution).as_posix()
        text = path.read_text(encoding="utf-8")
        before_path = starter_root / rel
        before = before_path.read_text(encoding="utf-8") if before_path.is_file() else ""
        if text == before:
            continue
        changed = _changed_lines(before, text)
        if path.suffix == ".py":
            out += _python_mutants(rel, text, changed)
        elif path.suffix in (".yaml", ".yml"):
            out += _yaml_mutants(rel, text, before)
    return out


def sample(mutants: list[Mutant], count: int | None, *, seed: int = 0) -> list[Mutant]:
    """A fixed sample (the same for the same solution and seed), in file order."""
    if count is None or count >= len(mutants):
        return mutants
    chosen = set(random.Random(seed).sample(range(len(mutants)), count))
    return [m for i, m in enumerate(mutants) if i in chosen]


def equivalents(lab: Lab) -> dict[str, str]:
    """Mutants the lab's author judged harmless, each with its one-line reason."""
    path = lab.path / EQUIVALENT_FILE
    if not path.is_file():
        return {}
    raw = yaml.safe_load(path.read_text()) or {}
    problems = [f"{key}: needs a one-line reason" for key, why in (raw.items() if isinstance(raw, dict) else [])
                if not isinstance(why, str) or not why.strip()]
    if not isinstance(raw, dict):
        problems = ["the file must map mutant ids to one-line reasons"]
    if problems:
        raise SpecError(str(path), problems)
    return {str(k): str(v) for k, v in raw.items()}


def _changed_lines(before: str, after: str) -> set[int]:
    """1-based numbers of the lines of ``after`` that ``before`` does not have in place."""
    changed: set[int] = set()
    matcher = difflib.SequenceMatcher(a=before.splitlines(), b=after.splitlines(), autojunk=False)
    for tag, _, _, j1, j2 in matcher.get_opcodes():
        if tag in ("replace", "insert"):
            changed.update(range(j1 + 1, j2 + 1))
    return changed


def _python_mutants(rel: str, text: str, changed: set[int]) -> list[Mutant]:
    from cosmic_ray.ast import get_ast
    from cosmic_ray.mutating import mutate_code
    from cosmic_ray.plugins import get_operator

    out = []
    for name in PYTHON_OPERATORS:
        operator = get_operator(name)()
        for occurrence, line in enumerate(_positions(get_ast(text), operator)):
            if line not in changed:
                continue
            mutated = mutate_code(text, operator, occurrence)
            if mutated is None or mutated == text:
                continue
            short = name.removeprefix("core/")
            out.append(Mutant(f"{rel}:{line}:{short}:{occurrence}", rel, line, f"{short} on line {line}", mutated))
    return out


def _positions(tree: Any, operator: Any) -> list[int]:
    """The start line of each occurrence, in the order cosmic-ray counts occurrences."""
    lines: list[int] = []

    def walk(node: Any) -> None:
        for (start, _end) in operator.mutation_positions(node):
            lines.append(start[0])
        for child in getattr(node, "children", []):
            walk(child)

    walk(tree)
    return lines


def _yaml_mutants(rel: str, text: str, before: str) -> list[Mutant]:
    try:
        docs = list(yaml.safe_load_all(text))
        old_docs = list(yaml.safe_load_all(before)) if before else []
    except yaml.YAMLError:
        return []
    old_leaves = {(i, p): v for i, doc in enumerate(old_docs) for p, v in _leaves(doc)}
    out = []
    for index, doc in enumerate(docs):
        for path, value in _leaves(doc):
            if old_leaves.get((index, path), object()) == value:
                continue  # the starter had it: not the candidate's change
            for how, new in _yaml_changes(value):
                mutated_docs = [_with(d, path, new) if i == index else d for i, d in enumerate(docs)]
                mutated = yaml.safe_dump_all(mutated_docs, sort_keys=False)
                where = ".".join(str(p) for p in path)
                key = hashlib.sha256(f"{index}:{where}:{how}".encode()).hexdigest()[:8]
                out.append(Mutant(f"{rel}:{where}:{how}:{key}", rel, 0, f"{how} at {where}", mutated))
    return out


_DROP = object()


def _yaml_changes(value: Any) -> list[tuple[str, Any]]:
    changes: list[tuple[str, Any]] = [("drop", _DROP)]
    if isinstance(value, bool):
        changes.append(("flip", not value))
    elif isinstance(value, (int, float)):
        changes += [("zero", type(value)(0))] if value else []
        changes.append(("scale", value * 10 if value else 1))
    return changes


def _leaves(node: Any, path: tuple = ()) -> list[tuple[tuple, Any]]:
    if isinstance(node, dict):
        return [leaf for key, value in node.items() for leaf in _leaves(value, (*path, key))]
    if isinstance(node, list):
        return [leaf for i, value in enumerate(node) for leaf in _leaves(value, (*path, i))]
    return [(path, node)] if path else []


def _with(doc: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(doc, dict):
        copy = dict(doc)
        if not rest and new is _DROP:
            copy.pop(head, None)
        else:
            copy[head] = _with(doc[head], rest, new)
        return copy
    copy_list = list(doc)
    if not rest and new is _DROP:
        copy_list.pop(head)
    else:
        copy_list[head] = _with(doc[head], rest, new)
    return copy_list
