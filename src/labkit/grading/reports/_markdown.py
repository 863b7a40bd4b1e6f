"""A Markdown report for pull requests, issues and CI job summaries.

Feedback is candidate-controlled and lands inside table cells, so a stray
``|`` or newline would break the table and raw HTML would be rendered by
GitHub-style viewers; :func:`_cell` neutralises all three.
"""

from __future__ import annotations

import html
import re

from labkit.grading.reports import _common
from labkit.grading.results import CheckResult, GradeResult, Status


def _cell(text: str) -> str:
    text = html.escape(_common.plain(text), quote=False).replace("\\", "\\\\").replace("|", "\\|")
    return "<br>".join(text.splitlines())


def _fenced(text: str) -> str:
    """A code block whose fence is longer than any backtick run inside ``text``."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{text}\n{fence}"


def _row(check: CheckResult) -> str:
    cells = (_common.STATUS_LABEL[check.status], check.title, _common.check_points(check),
             "\n".join(_common.detail(check)))
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _table(checks: list[CheckResult], last_column: str) -> list[str]:
    return [
        f"| status | check | points | {last_column} |",
        "| --- | --- | ---: | --- |",
        *(_row(c) for c in checks),
    ]


def render(result: GradeResult) -> str:
    heading = f"Grade: {result.lab_id} (seed {result.seed}) — {_common.score(result)}"
    lines = [f"# {_cell(heading)}", ""]
    if result.engine_error:
        lines += [f"> **⚠ {_common.ENGINE_HEADING}**", "", _fenced(result.engine_error), ""]
    lines += [f"**{_cell(_common.verdict(result))}**", "", _cell(_common.summary(result)), ""]
    if not result.hidden:
        lines += [f"> {_common.SCOPE_NOTE}", ""]

    checks = _common.candidate_checks(result)
    if checks:
        lines += ["## Checks", "", *_table(checks, "what the grader saw"), ""]
    errors = _common.infra_checks(result)
    if errors:
        lines += [f"## {_cell(_common.INFRA_HEADING)}", "", *_table(errors, "detail"), ""]
    return "\n".join(lines)
