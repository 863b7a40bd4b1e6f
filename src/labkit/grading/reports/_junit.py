"""JUnit XML, the format CI dashboards (GitLab, Jenkins, GitHub actions) ingest.

ElementTree escapes markup but happily writes characters XML 1.0 forbids, such
as the ANSI escapes in captured pytest output; those would make the whole file
unparseable, so they are stripped first.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from labkit.grading.reports import _common
from labkit.grading.results import GradeResult, Status

_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str) -> str:
    return _XML_ILLEGAL.sub("", _common.plain(text))


def render(result: GradeResult) -> str:
    errors = result.count(Status.ERROR) + (1 if result.engine_error else 0)
    suite = ET.Element(
        "testsuite",
        {
            "name": _clean(f"labkit.{result.lab_id}"),
            "tests": str(len(result.checks) + (1 if result.engine_error else 0)),
            "failures": str(result.count(Status.FAIL)),
            "errors": str(errors),
            "skipped": "0",
            "time": f"{sum(c.duration_s for c in result.checks):.3f}",
        },
    )
    timestamp = result.started_at or result.finished_at
    if timestamp:
        suite.set("timestamp", _clean(timestamp))
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("seed", result.seed),
        ("hidden", str(result.hidden).lower()),
        ("labkit_version", result.labkit_version),
    ):
        ET.SubElement(properties, "property", {"name": name, "value": _clean(str(value))})

    for check in result.checks:
        case = ET.SubElement(
            suite,
            "testcase",
            {
                "classname": _clean(result.lab_id),
                "name": _clean(check.check_id),
                "time": f"{check.duration_s:.3f}",
            },
        )
        # The message is what CI summaries show: what was seen first, the author's hint after.
        message = " | ".join(_common.detail(check))
        if check.status is Status.FAIL:
            outcome = ET.SubElement(case, "failure", {"message": _clean(message)})
        elif check.status is Status.ERROR:
            message = message or "infrastructure error (not the candidate's fault; regrade)"
            outcome = ET.SubElement(
                case, "error", {"message": _clean(message), "type": "infrastructure"}
            )
        else:
            if check.output:
                ET.SubElement(case, "system-out").text = _clean(check.output)
            continue
        outcome.text = _clean(check.output)

    if result.engine_error:
        case = ET.SubElement(
            suite,
            "testcase",
            {"classname": _clean(result.lab_id), "name": "labkit.engine", "time": "0.000"},
        )
        message = _clean(result.engine_error)
        error = ET.SubElement(case, "error", {"message": message, "type": "engine"})
        error.text = message

    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True)
