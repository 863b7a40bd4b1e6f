"""One wrong/ or fair/ entry of a lab graded against its running solution: what `labkit
verify`, its parallel lanes (lanes.py) and tests/labs share."""

from __future__ import annotations

import datetime

import yaml

from labkit.catalog import Lab
from labkit.errors import BadInput
from labkit.grading.results import GradeResult, Status
from labkit.verify.labrun import LabUnderTest
from labkit.verify.report import Finding


def rotating_sample(entries: list, size: int, *, day: int | None = None) -> list:
    """``size`` entries from a window that moves on by ``size`` every day (all when size is 0):
    a run that can afford only part of a corpus still grades all of it over a few days."""
    if not size or size >= len(entries):
        return list(entries)
    start = (size * (day if day is not None else datetime.date.today().toordinal())) % len(entries)
    return [entries[(start + i) % len(entries)] for i in range(size)]


def corpus(lab: Lab, kind: str) -> list[tuple[str, dict]]:
    index = lab.path / kind / "index.yaml"
    return list((yaml.safe_load(index.read_text()) or {}).items()) if index.exists() else []


def check_entry(lab: Lab, run: LabUnderTest, kind: str, name: str, meta: dict) -> Finding:
    run.restore(solved=True)
    patch = next((p for p in (lab.path / kind / f"{name}{ext}" for ext in (".patch", ".diff")) if p.exists()), None)
    if patch is None:
        return Finding(kind, name, False, f"no {kind}/{name}.patch or .diff")
    try:
        run.apply_patch(patch)
    except BadInput as exc:
        return Finding(kind, name, False, "does not apply to the solution", exc.message)
    if kind == "fair":  # an honest alternative keeps full marks (on the checks it names, if it names some)
        result = run.grade(select=tuple(meta.get("checks") or ()))
        return Finding(kind, name, result.full_marks, f"{result.percent:.0f}%",
                       "" if result.full_marks else f"{meta.get('description', '')}\n{failing_checks(result)}")
    # Only the checks that must catch this flaw (a fail among them is what takes it below 100 %),
    # and those that must not be charged with it (must_pass: one flaw, one check).
    must_fail, must_pass = tuple(meta["must_fail"]), tuple(meta.get("must_pass", ()))
    result = run.grade(select=must_fail + must_pass)
    status = {c.check_id.split("::")[-1]: c.status for c in result.checks}
    was = {c: getattr(status.get(c), "value", "not run") for c in must_fail + must_pass}
    problems = [f"{c} should fail, was {was[c]}" for c in must_fail if status.get(c) is not Status.FAIL]
    problems += [f"{c} should pass (the flaw is another check's), was {was[c]}"
                 for c in must_pass if status.get(c) is not Status.PASS]
    return Finding(kind, name, not problems and result.complete, f"{result.percent:.0f}% on {', '.join(must_fail)}",
                   (f"{'; '.join(problems)}; flaw: {meta.get('description', '')}\n{failing_checks(result)}")
                   if problems else "")


def failing_checks(result: GradeResult) -> str:
    lines = [f"{c.status.value} {c.check_id}: {c.output.splitlines()[0] if c.output else ''}"[:300]
             for c in result.checks if c.status is not Status.PASS]
    if result.engine_error:
        lines.append(f"engine: {result.engine_error.splitlines()[0]}")
    return "\n".join(lines)
