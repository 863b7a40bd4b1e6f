"""Runs a lab's checks in a pytest child process and reads back a GradeResult.

The child is isolated on purpose: a candidate's code that crashes, hangs or
exhausts memory takes down the child, not labkit, and whatever the child reported
before it died is kept. A check that never reported is an ``error`` (the grader
stopped), never a pass and never the candidate's fail.

The child runs contained (its own pid namespace where the machine allows it), so
stopping it — a timeout, Ctrl-C, a dead service — ends every candidate process it
started. While it runs, its results file is followed: the grade's timeout counts the
grader's own time, not time spent in candidate commands (each has a timeout of its
own, and a candidate's hang is their fail, not an incomplete grade), and a lab service
down for ``ABORT_AFTER_S`` stops the grade with the service named.
"""

from __future__ import annotations

import json
import os
import sys
import time
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
ABORT_AFTER_S = 15.0  # a service down this long (after the grader declared it down) stops the grade
RUN_GRACE_S = 30.0  # a candidate command pauses the grade's clock for at most its timeout plus this
_INI = "[pytest]\naddopts = -p no:cacheprovider\npython_files = test_*.py\n"


def _warm_imports(lab: Lab, sandbox: dict | None) -> list[str]:
    """The warm interpreter's preload for this grade: the lab's, unless the grade is a
    review (its commands start confined, cold) or LABKIT_WARM=0 says cold."""
    from labkit.warm.client import warm_enabled

    return list(lab.spec.grading.warm_imports) if sandbox is None and warm_enabled() else []


class GradeInterrupted(KeyboardInterrupt):
    """Ctrl-C during a grade, carrying the partial result (the checks reached, the rest
    errors). A KeyboardInterrupt still, so a caller that does not save partial grades
    (a review batch) stops as it did before."""

    def __init__(self, result: GradeResult) -> None:
        super().__init__("interrupted")
        self.result = result


def run_checks(
    lab: Lab, *, workspace: Path, seed: int, state_dir: Path, services: dict[str, str], hidden: bool,
    grade_dir: Path, timeout_s: float | None = None, select: tuple[str, ...] = (),
    runtime_context: dict[str, Any] | None = None, runner: ProcessRunner = DEFAULT_RUNNER,
    sandbox: dict | None = None, stop_at_first_fail: bool = False,
) -> GradeResult:
    """Run the lab's checks (visible, or all when hidden; only ``select`` by name if given).

    With ``stop_at_first_fail`` (labkit verify's mutants) the checks after the first that
    fails do not run: they are errors, "did not run", and the grade is incomplete.

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
        "warm_imports": _warm_imports(lab, sandbox), "stop_at_first_fail": stop_at_first_fail,
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
    # No plugin autoload: a grade runs the same checks the same way whatever pytest plugins
    # the machine has (pytest-randomly would reorder them and reseed random), and a second sooner.
    env = {**os.environ, CONTEXT_ENV: str(context_path), "PYTHONDONTWRITEBYTECODE": "1",
           "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    result = GradeResult(lab_id=lab.id, seed=seed, hidden=hidden, started_at=_now(), labkit_version=__version__)
    timeout = timeout_s or lab.spec.grading.timeout_s
    progress = GradeProgress(results_path)
    missing = ("did not run: the grade stopped at its first failed check" if stop_at_first_fail
               else "did not run: the grader stopped before it")
    try:
        proc = runner.run(argv, timeout=timeout, cwd=grade_dir, env=env, check=False, contain=True,
                          extra_time=progress.extra_time, abort=progress.abort)
        (grade_dir / "pytest.log").write_text(proc.stdout + proc.stderr)
        outages = progress.outage_text()
        if proc.aborted:
            result.engine_error = (f"the grade was stopped: {proc.aborted}; grade again once `labkit status` "
                                   "shows the lab's services answering")
            missing = f"did not run: {proc.aborted}"
        elif proc.timed_out:
            result.engine_error = (f"the grader timed out after {timeout:g}s of its own time; checks it had not "
                                   "finished are errors" + (f" (during the grade: {outages})" if outages else ""))
        elif proc.returncode not in _RUN_COMPLETED:
            result.engine_error = f"the check engine failed (pytest exit {proc.returncode}):\n{_tail(proc.stdout + proc.stderr)}"
    except CommandError as exc:
        result.engine_error = f"the check engine could not start: {exc}"
    except KeyboardInterrupt:
        # The runner killed the grader and, with it, every candidate process; keep what it reached.
        result.interrupted = True
        result.engine_error = "interrupted (Ctrl-C): the grade was stopped; checks it had not finished are errors"
        result.checks = merge(*read_results(results_path), missing="did not run: interrupted")
        result.finished_at = _now()
        raise GradeInterrupted(result) from None
    collected, reported = read_results(results_path)
    result.checks = merge(collected, reported, missing=missing)
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
            "hide": [*sandbox.get("hide", []), *map(str, labs_roots()), str(lab.path), str(grade_dir)],
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


class GradeProgress:
    """Follows the grader's results file while it runs (see the module's docstring)."""

    def __init__(self, path: Path, *, abort_after_s: float = ABORT_AFTER_S) -> None:
        self._path, self._offset = path, 0
        self._abort_after_s = abort_after_s
        self._runs: dict[int, float] = {}  # run id -> monotonic time it may pause the clock until
        self._paused = 0.0
        self._last = time.monotonic()
        self._down: dict[str, tuple[float, str]] = {}  # service -> (monotonic time we learnt it, text)
        self._outages: dict[tuple[str, float], str] = {}  # every outage seen, by (service, start)

    def extra_time(self) -> float:
        """Seconds the grade's timeout grows by: the time during which a candidate command ran."""
        self._poll()
        now = time.monotonic()
        if any(now <= until for until in self._runs.values()):
            self._paused += now - self._last
        self._last = now
        return self._paused

    def abort(self) -> str:
        """Why to stop the grade now: a lab service down for abort_after_s ("" otherwise)."""
        self._poll()
        now = time.monotonic()
        long_down = [text for since, text in self._down.values() if now - since >= self._abort_after_s]
        return "; ".join(long_down)

    def outage_text(self) -> str:
        self._poll()
        return "; ".join(self._outages.values())

    def _poll(self) -> None:
        try:
            with open(self._path, "rb") as handle:
                handle.seek(self._offset)
                chunk = handle.read()
        except OSError:
            return
        complete = chunk.rfind(b"\n") + 1
        self._offset += complete
        for line in chunk[:complete].splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            self._apply(record)

    def _apply(self, record: dict) -> None:
        now = time.monotonic()
        if record.get("event") == "run":
            if record.get("state") == "start":
                self._runs[int(record["id"])] = now + float(record.get("timeout_s", 0)) + RUN_GRACE_S
            else:
                self._runs.pop(int(record["id"]), None)
        elif record.get("event") == "outage":
            service, text = str(record.get("service")), str(record.get("text", ""))
            self._outages[(service, float(record.get("started", 0)))] = text
            if record.get("ended") is None:
                self._down.setdefault(service, (now, text))
            else:
                self._down.pop(service, None)


def merge(collected: list[dict], reported: dict[str, dict], *,
          missing: str = "did not run: the grader stopped before it") -> list[CheckResult]:
    checks = []
    for info in collected:
        record = reported.get(info["check_id"])
        if record is None:
            record = {**info, "status": Status.ERROR.value, "output": missing}
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
