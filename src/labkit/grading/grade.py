"""`labkit grade`: run the checks against the running lab and always write the report.

Whatever happens inside — a crashed engine, a missing service, a bug in labkit,
Ctrl-C — the caller gets a GradeResult and a report on disk; the failure is in the
report. Ctrl-C writes the partial grade (the checks reached, the rest ``error``
"interrupted") and then exits 130.
"""

from __future__ import annotations

import json
import signal
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from labkit import __version__
from labkit.catalog import load_lab, require_sources
from labkit.grading.reports import default_filename, render
from labkit.grading.results import GradeResult, Status
from labkit.grading.runner import GradeInterrupted, run_checks
from labkit.destinations import check_file_destination, check_folder_destination
from labkit.errors import BadInput, Interrupted
from labkit.lifecycle import require_session_here
from labkit.session import Session, write_json_atomic
from labkit.ui import UI
from labkit.workspace import META_DIR

LAST_GRADE = "last-grade.json"
GRADE_LOG = "grades.jsonl"  # one line per grade, in the workspace: submit reports every grade's time


@dataclass
class GradeOutcome:
    result: GradeResult
    record_path: Path  # the JSON record labkit keeps of every grade
    report_path: Path | None  # --out, when given


def grade_lab(
    *, hidden: bool, fmt: str, out: Path | None, ui: UI, timeout_s: float | None = None, select: tuple[str, ...] = (),
    session: Session | None = None, stop_at_first_fail: bool = False,
) -> GradeOutcome:
    """Grade ``session`` (a caller that already chose it: submit), else the running lab's,
    which must be the workspace the user stands in, if any."""
    session = session or require_session_here(command="labkit grade", ui=ui)
    if out is not None:  # before the grade: minutes of checks must not end in an unwritable --out
        _check_report_destination(out)
    if hidden:  # before anything runs: a "hidden" grade of the visible checks alone would mislead
        require_sources(load_lab(session.lab_id), hidden_checks=True, command="labkit grade --hidden")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-%f")
    grade_dir = session.state_path / "grades" / f"{stamp}-{'hidden' if hidden else 'visible'}"
    try:
        with ui.step(f"grading {session.lab_id} ({'all checks' if hidden else 'visible checks'})"):
            result = _grade_safely(session, hidden, grade_dir, timeout_s, select, stop_at_first_fail)
    except GradeInterrupted as stop:  # the grader and the candidate's processes are gone: save what it reached
        result = stop.result
    record = grade_dir / "grade.json"
    with _sigint_deferred() as interrupted:  # a second Ctrl-C must not lose the partial grade
        write_json_atomic(record, result.to_dict())
        if not hidden and not select:
            # The candidate's own copy (submit packs it); hidden results never enter the workspace.
            write_json_atomic(session.workspace_path / META_DIR / LAST_GRADE, result.to_dict())
        log_grade(session.workspace_path, result, select)
        report_path = None
        if out is not None:
            report_path = out / default_filename(fmt) if out.is_dir() else out
            try:
                report_path.parent.mkdir(parents=True, exist_ok=True)
                report_path.write_text(render(result, fmt))
            except OSError as exc:  # it changed during the grade; the record above stands
                raise BadInput(f"--out {report_path}: {exc.strerror or exc}",
                               hint=f"the grade is recorded in {record}") from None
    if result.interrupted or interrupted:
        where = f"{record}" + (f" and {report_path}" if report_path is not None else "")
        raise Interrupted(f"interrupted: the grader and the candidate's processes were stopped; the partial "
                          f"grade ({result.count(Status.PASS) + result.count(Status.FAIL)} of {len(result.checks)} "
                          f"checks reached) is in {where}")
    return GradeOutcome(result, record, report_path)


def _check_report_destination(out: Path) -> None:
    """--out is a folder (the report goes inside, under its format's name) or a file."""
    if out.is_dir():
        check_folder_destination(out, option="--out")
    else:
        check_file_destination(out, option="--out")


@contextmanager
def _sigint_deferred() -> Iterator[list[int]]:
    """Hold Ctrl-C while the grade is written; the list it yields is non-empty if one came."""
    seen: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield seen
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: seen.append(signum))
    try:
        yield seen
    finally:
        signal.signal(signal.SIGINT, previous)


def log_grade(workspace: Path, result: GradeResult, select: tuple[str, ...]) -> None:
    """Append the grade's time and score (never its check outputs) to the workspace's log."""
    line = {"finished_at": result.finished_at or datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "hidden": result.hidden, "selected": list(select), "score": result.score,
            "max_score": result.max_score, "complete": result.complete}
    try:
        with open(workspace / META_DIR / GRADE_LOG, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(line) + "\n")
    except OSError:
        pass  # the grade stands without its log line


def _grade_safely(
    session: Session, hidden: bool, grade_dir: Path, timeout_s: float | None, select: tuple[str, ...],
    stop_at_first_fail: bool = False,
) -> GradeResult:
    try:
        lab = load_lab(session.lab_id)
        return run_checks(
            lab, workspace=session.workspace_path, seed=session.seed, state_dir=session.state_path,
            services=session.service_urls(), hidden=hidden, grade_dir=grade_dir, timeout_s=timeout_s,
            select=select, runtime_context=session.runtime_context(), stop_at_first_fail=stop_at_first_fail,
        )
    except Exception as exc:  # noqa: BLE001 - a grade must always produce a report
        return GradeResult(
            lab_id=session.lab_id, seed=session.seed, hidden=hidden, labkit_version=__version__,
            engine_error=f"labkit failed while grading: {exc!r}\n{traceback.format_exc(limit=5)}",
        )
