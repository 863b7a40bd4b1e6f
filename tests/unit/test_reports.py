"""Report rendering: each format must tell the truth about a grade and survive hostile text.

Feedback and output come from the candidate's code, so several fixtures carry
markup, pipes and terminal escapes on purpose.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from labkit.grading.reports import FORMATS, default_filename, render
from labkit.grading.results import CheckResult, GradeResult, Status, Visibility

SRC = Path(__file__).resolve().parents[2] / "src"
INFRA = "Infrastructure errors"


def passing(check_id: str = "test_data.py::test_loads", hidden: bool = False) -> CheckResult:
    return CheckResult(
        check_id=check_id,
        title="Loads the dataset",
        points=2.0,
        status=Status.PASS,
        visibility=Visibility.HIDDEN if hidden else Visibility.VISIBLE,
        output="ok",
        duration_s=0.25,
    )


def failing() -> CheckResult:
    return CheckResult(
        check_id="test_train.py::test_accuracy",
        title="Model accuracy",
        points=3.0,
        status=Status.FAIL,
        visibility=Visibility.VISIBLE,
        feedback="accuracy 0.51 | expected >= 0.8 <script>alert(1)</script>\nsecond line",
        output="E   assert 0.51 >= 0.8\n\x1b[31mFAILED\x1b[0m & more",
        duration_s=1.5,
    )


def errored() -> CheckResult:
    return CheckResult(
        check_id="test_serve.py::test_endpoint",
        title="Serving endpoint",
        points=1.5,
        status=Status.ERROR,
        visibility=Visibility.HIDDEN,
        feedback="model registry unreachable",
        output="ConnectionRefusedError: [Errno 111]",
    )


def mixed(hidden: bool = True) -> GradeResult:
    return GradeResult(
        lab_id="lab01-churn",
        seed=1234,
        hidden=hidden,
        checks=[passing(), failing(), errored()],
        started_at="2024-05-01T10:00:00",
        finished_at="2024-05-01T10:01:00",
        labkit_version="0.1.0",
    )


def engine_failed() -> GradeResult:
    result = mixed()
    result.engine_error = "grader crashed while collecting checks"
    return result


def visible_all_pass() -> GradeResult:
    return GradeResult(lab_id="lab01-churn", seed=7, hidden=False, checks=[passing()])


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("make", [mixed, engine_failed], ids=["mixed", "engine_error"])
def test_every_format_renders_every_check(fmt: str, make) -> None:
    result = make()
    out = render(result, fmt)
    for check in result.checks:
        assert check.title in out or check.check_id in out, (fmt, check.check_id)
    if result.engine_error:
        assert result.engine_error in out


def test_unknown_format_is_rejected() -> None:
    with pytest.raises(ValueError, match="pdf"):
        render(mixed(), "pdf")
    with pytest.raises(ValueError):
        default_filename("pdf")


def test_default_filenames() -> None:
    assert {f: default_filename(f) for f in FORMATS} == {
        "text": "grade.txt",
        "json": "grade.json",
        "junit": "junit.xml",
        "gradescope": "results.json",
        "markdown": "grade.md",
        "html": "grade.html",
    }


@pytest.mark.parametrize("make", [mixed, engine_failed])
def test_json_round_trips(make) -> None:
    result = make()
    assert GradeResult.from_dict(json.loads(render(result, "json"))) == result


def test_junit_parses_and_counts_match() -> None:
    result = engine_failed()
    suite = ET.fromstring(render(result, "junit"))

    assert suite.tag == "testsuite"
    assert suite.get("name") == "labkit.lab01-churn"
    cases = suite.findall("testcase")
    assert int(suite.get("tests")) == len(cases) == 4
    assert int(suite.get("failures")) == len(suite.findall("testcase/failure")) == 1
    assert int(suite.get("errors")) == len(suite.findall("testcase/error")) == 2

    by_name = {case.get("name"): case for case in cases}
    assert all(case.get("classname") == "lab01-churn" for case in cases)
    assert by_name["test_data.py::test_loads"].find("failure") is None
    failure = by_name["test_train.py::test_accuracy"].find("failure")
    # What the grader saw leads the message a CI summary shows; the author's hint follows.
    message = failure.get("message")
    assert message.startswith("E   assert 0.51 >= 0.8") and message.endswith(failing().feedback.splitlines()[-1])
    assert "hint: " + failing().feedback.splitlines()[0] in message
    assert "assert 0.51 >= 0.8" in failure.text
    assert "FAILED & more" in failure.text
    assert "\x1b" not in failure.text and "[31m" not in failure.text
    assert by_name["test_serve.py::test_endpoint"].find("error") is not None
    assert by_name["labkit.engine"].find("error").get("message") == result.engine_error


def test_gradescope_schema_and_scores() -> None:
    result = engine_failed()
    doc = json.loads(render(result, "gradescope"))

    assert set(doc) >= {"score", "max_score", "output", "tests"}
    assert doc["score"] == result.score == 2.0
    assert doc["max_score"] == result.max_score == 6.5
    assert sum(t["score"] for t in doc["tests"]) == doc["score"]
    assert sum(t["max_score"] for t in doc["tests"]) == doc["max_score"]
    for test in doc["tests"]:
        assert set(test) >= {"name", "score", "max_score", "status", "output", "visibility"}
        assert test["status"] in {"passed", "failed"}

    tests = {t["name"]: t for t in doc["tests"]}
    assert tests["Loads the dataset"]["visibility"] == "visible"
    assert tests["Serving endpoint"]["visibility"] == "after_published"
    assert tests["Model accuracy"]["status"] == "failed"
    assert tests["Serving endpoint"]["status"] == "failed"
    assert tests["Serving endpoint"]["output"].startswith("[infrastructure error]")
    assert not tests["Model accuracy"]["output"].startswith("[infrastructure error]")
    assert result.engine_error in doc["output"]
    assert INFRA in doc["output"] and "Serving endpoint" in doc["output"]


def test_html_escapes_candidate_text_and_is_self_contained() -> None:
    out = render(mixed(), "html")
    assert "<script>" not in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert "&amp; more" in out
    assert not re.search(r"\b(src|href)\s*=|https?://", out)


def test_markdown_escapes_pipes_and_newlines_in_cells() -> None:
    out = render(mixed(), "markdown")
    row = next(line for line in out.splitlines() if "Model accuracy" in line)
    cells = re.split(r"(?<!\\)\|", row)
    assert len(cells) == 6, row  # leading and trailing edges + 4 cells
    assert r"0.51 \| expected" in row
    assert "<br>second line" in row
    assert "<script>" not in out


def test_markdown_heading_names_lab_seed_and_score() -> None:
    heading = render(mixed(), "markdown").splitlines()[0]
    assert heading.startswith("# ")
    assert "lab01-churn" in heading and "1234" in heading and "2/6.5" in heading


def test_text_self_check_does_not_claim_hidden_checks_passed() -> None:
    out = render(visible_all_pass(), "text")
    assert "hidden checks are not included" in out
    assert "all checks passed" not in out.lower()
    assert "tests passed" not in out.lower()


def test_text_full_hidden_grade_does_say_all_passed() -> None:
    checks = [passing(), passing("test_data.py::test_schema", hidden=True)]
    result = GradeResult(lab_id="lab01-churn", seed=7, hidden=True, checks=checks)
    out = render(result, "text")
    assert "All checks passed" in out
    assert "hidden checks are not included" not in out


def test_text_never_claims_success_with_failures_or_errors() -> None:
    out = render(mixed(), "text").lower()
    assert "all checks passed" not in out
    assert "incomplete" in out


@pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
def test_infrastructure_errors_have_their_own_section(fmt: str) -> None:
    out = render(mixed(), fmt)
    assert out.count(INFRA) == 1
    before, after = out.split(INFRA)
    assert "Model accuracy" in before and "Model accuracy" not in after
    assert "Serving endpoint" in after and "Serving endpoint" not in before
    assert "not the candidate" in after[:80]


@pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
def test_no_infrastructure_section_without_errors(fmt: str) -> None:
    assert INFRA not in render(visible_all_pass(), fmt)


def test_text_engine_error_is_prominent() -> None:
    out = render(engine_failed(), "text")
    assert out.index("Grader error") < out.index("Loads the dataset")
    assert "grader crashed while collecting checks" in out


def test_text_summary_counts() -> None:
    out = render(mixed(), "text")
    assert "2/6.5 (30.8%)" in out
    assert "1 passed, 1 failed, 1 errored" in out
    assert "accuracy 0.51" in out  # feedback of the failing check
    assert "0/3" in out


def test_text_colour_only_when_asked() -> None:
    assert "\x1b[" not in render(mixed(), "text", color=False)
    assert "\x1b[" in render(mixed(), "text", color=True)


def test_text_shows_candidate_markup_literally() -> None:
    check = CheckResult(
        check_id="t.py::x",
        title="[bold]title[/bold]",
        points=1.0,
        status=Status.FAIL,
        visibility=Visibility.VISIBLE,
        feedback="[red]boom[/red]",
    )
    out = render(GradeResult(lab_id="lab", seed=1, hidden=True, checks=[check]), "text")
    assert "[bold]title[/bold]" in out and "[red]boom[/red]" in out


def test_text_respects_width() -> None:
    out = render(mixed(), "text", width=60)
    assert max(len(line) for line in out.splitlines()) <= 60


def test_importing_reports_does_not_import_rich() -> None:
    code = "import sys, labkit.grading.reports; print('rich' in sys.modules)"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(SRC)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert proc.stdout.strip() == "False"


def test_every_format_shows_what_the_grader_saw_beside_pass_and_fail() -> None:
    """A manager decides from the report: the symptom of a failure (not only the generic
    hint) and the evidence of a pass are in every format, not collapsed away."""
    seen_pass = CheckResult(check_id="t.py::test_alert", title="Alerts on drift", points=2.0, status=Status.PASS,
                            visibility=Visibility.HIDDEN, output="seen: alerted on batch 3, flagged tenure_months")
    seen_fail = CheckResult(check_id="t.py::test_quiet", title="Quiet when clean", points=2.0, status=Status.FAIL,
                            visibility=Visibility.HIDDEN, feedback="Stay quiet on clean batches.",
                            output="alerted on clean batch 7 (p=0.41)\nmore detail\nstill more\nand a fourth line")
    result = GradeResult(lab_id="lab", seed=1, hidden=True, checks=[seen_pass, seen_fail])
    for fmt in FORMATS:
        out = render(result, fmt)
        assert "alerted on batch 3, flagged tenure_months" in out, fmt
        assert "alerted on clean batch 7 (p=0.41)" in out, fmt
        assert "Stay quiet on clean batches." in out, fmt
    page = render(result, "html")
    shown = re.sub(r"<details>.*?</details>", "", page, flags=re.S)  # what is visible without a click
    assert "alerted on clean batch 7 (p=0.41)" in shown and "alerted on batch 3" in shown
    failure = ET.fromstring(render(result, "junit")).find("testcase[@name='t.py::test_quiet']/failure")
    assert failure.get("message").startswith("alerted on clean batch 7 (p=0.41)")
