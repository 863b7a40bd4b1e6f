"""The wording every human-readable format shares.

Text, Markdown, HTML and Gradescope must never disagree about what a grade
means -- above all about whose fault an error is and what a self-check leaves
out -- so those sentences are written once, here.
"""

from __future__ import annotations

import re

from labkit.grading.results import CheckResult, GradeResult, Status

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")

STATUS_LABEL = {Status.PASS: "✔ PASS", Status.FAIL: "✘ FAIL", Status.ERROR: "⚠ ERROR"}

INFRA_HEADING = "Infrastructure errors (not the candidate's fault; regrade)"
ENGINE_HEADING = "Grader error: this grade is incomplete"
SCOPE_NOTE = (
    "Visible checks only: hidden checks are not included here "
    "and will also be run by reviewers."
)


def plain(text: str) -> str:
    """Drop terminal colour codes that captured pytest output may carry; outside a
    terminal they are noise (and the ESC byte is not even legal XML)."""
    return _ANSI.sub("", text)


def points(value: float) -> str:
    """``2.0`` reads as ``2`` but ``1.5`` keeps its fraction."""
    return f"{value:g}"


def check_points(check: CheckResult) -> str:
    return f"{points(check.score)}/{points(check.points)}"


def score(result: GradeResult) -> str:
    return f"{points(result.score)}/{points(result.max_score)} ({result.percent:.1f}%)"


def summary(result: GradeResult) -> str:
    return (
        f"Score: {score(result)} — "
        f"{result.count(Status.PASS)} passed, {result.count(Status.FAIL)} failed, "
        f"{result.count(Status.ERROR)} errored"
    )


def verdict(result: GradeResult) -> str:
    """One sentence a reviewer can trust; it claims success only for what actually ran."""
    if result.engine_error:
        return (
            "Incomplete: the grader itself failed, "
            "so checks may be missing and the score is not final."
        )
    errored = result.count(Status.ERROR)
    if errored:
        return (
            f"Incomplete: {errored} check(s) could not run because of infrastructure errors; "
            "regrade before judging the score."
        )
    if not result.checks:
        return "Incomplete: no checks ran."
    scope = "" if result.hidden else "visible "
    failed = result.count(Status.FAIL)
    if failed:
        return f"{failed} of {len(result.checks)} {scope}checks failed."
    if result.hidden:
        return "All checks passed."
    return "All visible checks passed; hidden checks have not been run."


def brief(check: CheckResult, limit: int = 160) -> str:
    """What went wrong (the check's own message: the symptom) and, after it, the
    author's generic hint — each its first meaningful line, short enough for a cell."""
    symptom, hint = _first_line(check.output, limit), _first_line(check.feedback, limit)
    if symptom and hint:
        return f"{symptom} — hint: {hint}"
    return symptom or hint


def observed(check: CheckResult, lines: int = 3, limit: int = 200) -> list[str]:
    """What the grader saw, first lines first: a failed check's symptom, or the evidence a
    passed one recorded. A reviewer must be able to tell a real flaw from a grader's false
    positive or a timing flake without opening result.json."""
    out = [ln.strip() for ln in plain(check.output).splitlines() if ln.strip()][:lines]
    return [ln if len(ln) <= limit else ln[: limit - 1] + "…" for ln in out]


def detail(check: CheckResult) -> list[str]:
    """The lines a report puts beside a check: what was seen, then (unless it passed) the
    author's hint."""
    seen = observed(check)
    if check.status is Status.PASS:
        return seen
    hint = [ln.strip() for ln in plain(check.feedback).splitlines() if ln.strip()]
    if hint and seen:
        hint[0] = f"hint: {hint[0]}"
    return [*seen, *hint]


def _first_line(text: str, limit: int) -> str:
    line = next((ln.strip() for ln in plain(text).splitlines() if ln.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


def candidate_checks(result: GradeResult) -> list[CheckResult]:
    """Checks whose outcome is the candidate's doing (passed or failed)."""
    return [c for c in result.checks if c.status is not Status.ERROR]


def infra_checks(result: GradeResult) -> list[CheckResult]:
    """Checks that could not run; listed apart so nobody reads them as failures."""
    return [c for c in result.checks if c.status is Status.ERROR]
