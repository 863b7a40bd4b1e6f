"""Runs a lab's checks in a pytest child process and reads back a GradeResult.

The child is isolated on purpose: a candidate's code that crashes, hangs or
exhausts memory takes down the child, not labkit, and whatever the child reported
before it died is kept. A check that never reported is an ``error`` (the grader
stopped), never a pass and never the candidate's fail.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from labkit import __version__
from labkit.catalog import Lab
from labkit.errors import CommandError
from labkit.grading.plugin import CONTEXT_ENV
from labkit.grading.results import CheckResult, GradeResult, Status, Visibility
from labkit.proc import DEFAULT_RUNNER, ProcessRunner
from labkit.session import write_json_atomic

# pytest exit codes: 0 all passed, 1 some failed, 5 none collected; others mean the run itself broke.
_RUN_COMPLETED = {0, 1, 5}
_INI = "[pytest]\naddopts = -p no:cacheprovider\npython_files = test_*.py\n"


def run_checks(
    lab: Lab, *, workspace: Path, seed: int, state_dir: Path, services: dict[str, str], hidden: bool,
    grade_dir: Path, timeout_s: float | None = None, select: tuple[str, ...] = (),
    runtime_context: dict[str, Any] | None = None, runner: ProcessRunner = DEFAULT_RUNNER,
    sandbox: dict | None = None,
) -> GradeResult:
    """Run the lab's checks (visible, or all when hidden; only ``select`` by name if given).

    With ``sandbox`` (a review), candidate commands are confined (labkit.sandbox.runner)
    and may write only to the workspace, a scratch folder and pytest's temp folder,
    which is therefore placed inside the grade folder; results.jsonl stays read-only to them.
    """
    grade_dir.mkdir(parents=True, exist_ok=True)
    results_path = grade_dir / "results.jsonl"
    results_path.unlink(missing_ok=True)
    context_path = grade_dir / "context.json"
    basetemp = grade_dir / "tmp"
    if sandbox is not None:
        sandbox = _confine_spec(sandbox, lab=lab, grade_dir=grade_dir, basetemp=basetemp, services=services)
    write_json_atomic(context_path, {
        "lab_id": lab.id, "seed": seed, "lab_dir": str(lab.path), "workspace": str(workspace),
        "state_dir": str(state_dir), "services": services, "hidden": hidden, "results_path": str(results_path),
        "select": list(select), "runtime": runtime_context or {}, "sandbox": sandbox,
    })
    ini = grade_dir / "pytest.ini"
    ini.write_text(_INI)
    checks_dir = lab.path / "checks"
    targets = [checks_dir] if hidden else [checks_dir / "visible"]
    # -P: the grade folder (cwd), which holds the candidate's writable scratch and temp
    # folders, is not on the import path; the lab's checks come from the lab folder alone.
    argv = [sys.executable, "-P", "-m", "pytest", *map(str, targets), "-c", str(ini), "--rootdir", str(checks_dir), "--confcutdir", str(checks_dir),
            "-p", "labkit.grading.plugin", "-q", "--no-header", "-rN", "--tb=short"]
    if sandbox is not None:
        argv += ["--basetemp", str(basetemp)]
    env = {**os.environ, CONTEXT_ENV: str(context_path), "PYTHONDONTWRITEBYTECODE": "1"}
    result = GradeResult(lab_id=lab.id, seed=seed, hidden=hidden, started_at=_now(), labkit_version=__version__)
    timeout = timeout_s or lab.spec.grading.timeout_s
    try:
        proc = runner.run(argv, timeout=timeout, cwd=grade_dir, env=env, check=False)
        (grade_dir / "pytest.log").write_text(proc.stdout + proc.stderr)
        if proc.timed_out:
            result.engine_error = f"the grader timed out after {timeout:g}s; checks it had not finished are errors"
        elif proc.returncode not in _RUN_COMPLETED:
            result.engine_error = f"the check engine failed (pytest exit {proc.returncode}):\n{_tail(proc.stdout + proc.stderr)}"
    except CommandError as exc:
        result.engine_error = f"the check engine could not start: {exc}"
    collected, reported = read_results(results_path)
    result.checks = merge(collected, reported)
    if not result.checks and not result.engine_error:
        result.engine_error = "no checks were collected for this lab"
    result.finished_at = _now()
    return result


def _confine_spec(sandbox: dict, *, lab: Lab, grade_dir: Path, basetemp: Path,
                  services: dict[str, str]) -> dict:
    """The review's sandbox, completed for this grade: the commands' folders, the services
    they reach, and what they must not read: every labs folder (hidden checks, solutions,
    wrong fixes of every lab) and this grade's own files, but for the lab's candidate copy."""
    from labkit.catalog import candidate_copy, labs_roots
    from labkit.sandbox.runner import ConfineSpec

    spec = {**sandbox, "scratch": str(grade_dir / "scratch"), "rw": [str(basetemp)], "services": dict(services),
            "hide": [*map(str, labs_roots()), str(lab.path), str(grade_dir)],
            "show": [str(p) for p in candidate_copy(lab.path)]}
    return ConfineSpec.from_dict(spec).to_dict()  # a typo in a key fails here, not in the child


def read_results(path: Path) -> tuple[list[dict], dict[str, dict]]:
    """The collected list and the results by check id; a torn last line is ignored."""
    collected: list[dict] = []
    reported: dict[str, dict] = {}
    if not path.exists():
        return collected, reported
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("event") == "collected":
            collected = record["checks"]
        elif record.get("event") == "result":
            reported[record["check_id"]] = record
    return collected, reported


def merge(collected: list[dict], reported: dict[str, dict]) -> list[CheckResult]:
    checks = []
    for info in collected:
        record = reported.get(info["check_id"])
        if record is None:
            record = {**info, "status": Status.ERROR.value, "output": "did not run: the grader stopped before it"}
        checks.append(CheckResult(
            check_id=info["check_id"], title=info["title"], points=float(info["points"]),
            status=Status(record["status"]), visibility=Visibility(info["visibility"]),
            feedback=info.get("feedback", ""), output=record.get("output", ""),
            duration_s=float(record.get("duration_s", 0.0)),
        ))
    return checks


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
