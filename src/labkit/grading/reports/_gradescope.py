"""Gradescope autograder ``results.json``.

Gradescope has no "error" status, so an errored check is reported as failed
with an output that starts with ``[infrastructure error]`` for the reviewer to
spot. Hidden checks become ``after_published`` so candidates only see them once
grades are released. The top-level ``score`` overrides Gradescope's own sum of
test scores, so it is always set explicitly.
"""

from __future__ import annotations

import json
from typing import Any

from labkit.grading.reports import _common
from labkit.grading.results import CheckResult, GradeResult, Status, Visibility

INFRA_PREFIX = "[infrastructure error]"
_INFRA_EXPLANATION = (
    "This check could not run; it is not the candidate's fault and will be regraded."
)


def _test_output(check: CheckResult) -> str:
    # What the grader saw first (a student reads the top), the author's hint after it.
    parts = [_common.plain(check.output), "" if check.status is Status.PASS else check.feedback]
    if check.status is Status.ERROR:
        parts.insert(0, f"{INFRA_PREFIX} {_INFRA_EXPLANATION}")
    return "\n\n".join(p for p in parts if p)


def _test(check: CheckResult) -> dict[str, Any]:
    return {
        "name": check.title,
        "score": check.score,
        "max_score": check.points,
        "status": "passed" if check.status is Status.PASS else "failed",
        "output": _test_output(check),
        "visibility": "visible" if check.visibility is Visibility.VISIBLE else "after_published",
    }


def _summary_output(result: GradeResult) -> str:
    lines = [_common.summary(result), _common.verdict(result)]
    if result.engine_error:
        lines += ["", f"{_common.ENGINE_HEADING}:", result.engine_error]
    errors = _common.infra_checks(result)
    if errors:
        lines += ["", f"{_common.INFRA_HEADING}:"]
        for check in errors:
            detail = _common.brief(check)
            lines.append(f"- {check.title} ({check.check_id})" + (f": {detail}" if detail else ""))
    if not result.hidden:
        lines += ["", _common.SCOPE_NOTE]
    return "\n".join(lines)


def render(result: GradeResult) -> str:
    document = {
        "score": result.score,
        "max_score": result.max_score,
        "output": _summary_output(result),
        "tests": [_test(c) for c in result.checks],
    }
    return json.dumps(document, indent=2)
