"""The pytest plugin labkit grades with (``-p labkit.grading.plugin``).

It reads the grade's context from $LABKIT_GRADE_CONTEXT, gives checks their fixtures,
and streams one JSON line per finished check to the results file, so that a grader
killed half-way still leaves every result it reached.

It also watches the lab's services for the whole grade (``labkit.grading.health``): a
check that fails while a service is or was down is an ``error`` naming the outage, a
service down now stops the candidate's commands and errors the remaining checks at
once, and the start and end of every candidate command go to the results file too, so
the parent can tell the grader's own time from time spent in candidate commands (which
have timeouts of their own).
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from labkit.grading import InfraError
from labkit.grading.health import HealthWatch, Outage, describe
from labkit.grading.results import Status, Visibility

CONTEXT_ENV = "LABKIT_GRADE_CONTEXT"
OUTPUT_LIMIT = 4000


@dataclass(frozen=True)
class GradeContext:
    lab_id: str
    seed: int
    lab_dir: Path
    workspace: Path
    state_dir: Path
    services: dict[str, str]
    hidden: bool
    results_path: Path
    select: tuple[str, ...] = ()  # check function names; empty means every check
    runtime: dict[str, Any] = field(default_factory=dict)  # Session.runtime_context()
    sandbox: dict[str, Any] | None = None  # set by `labkit review`: confine the candidate's commands
    warm_imports: tuple[str, ...] = ()  # the warm interpreter's preload; empty: candidate commands run cold
    # labkit verify's mutants: one failed check is the verdict, so the grade stops there
    # (an error does not stop it: it proves nothing about the candidate's code).
    stop_at_first_fail: bool = False

    @classmethod
    def load(cls) -> GradeContext:
        data = json.loads(Path(os.environ[CONTEXT_ENV]).read_text())
        return cls(
            lab_id=data["lab_id"], seed=int(data["seed"]), lab_dir=Path(data["lab_dir"]),
            workspace=Path(data["workspace"]), state_dir=Path(data["state_dir"]),
            services=dict(data["services"]), hidden=bool(data["hidden"]), results_path=Path(data["results_path"]),
            select=tuple(data.get("select", ())), runtime=dict(data.get("runtime") or {}),
            sandbox=data.get("sandbox") or None, warm_imports=tuple(data.get("warm_imports") or ()),
            stop_at_first_fail=bool(data.get("stop_at_first_fail", False)),
        )


@dataclass(frozen=True)
class CheckInfo:
    check_id: str
    title: str
    points: float
    visibility: Visibility
    feedback: str


_INFO: dict[str, CheckInfo] = {}
_REPORTED: set[str] = set()


def _context() -> GradeContext:
    if _CONTEXT is None:
        raise InfraError(f"labkit's grade context is missing (${CONTEXT_ENV} not set)")
    return _CONTEXT


def _load_context() -> GradeContext | None:
    """At import: -p loads this plugin before the lab's conftest.py, which may import
    the lab's own modules (``support``), so the lab folder must be on sys.path first."""
    if CONTEXT_ENV not in os.environ:
        return None
    context = GradeContext.load()
    sys.path.insert(0, str(context.lab_dir))
    return context


_CONTEXT = _load_context()


_WATCH: HealthWatch | None = None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "check(points, title, feedback, visibility): a graded check")


def pytest_sessionstart(session: pytest.Session) -> None:
    """Start watching the lab's services, after a first synchronous look at each."""
    global _WATCH
    if _CONTEXT is None:
        return
    _WATCH = HealthWatch({name: (url, health_url(name, url)) for name, url in _CONTEXT.services.items()},
                         on_change=_report_outage)
    _WATCH.check_now()
    _WATCH.start()


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _WATCH is not None:
        _WATCH.stop()


def health_url(service: str, url: str) -> str:
    """Where a lab service says it is healthy (the same path on every runtime)."""
    from labkit.runtimes.local import SERVICES

    definition = SERVICES.get(service)
    return url + definition.health_path if definition is not None else url


def _report_outage(outage: Outage) -> None:
    _write({"event": "outage", **outage.to_dict(), "text": outage.describe()})


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A check does not start while a lab service is down: it is an error at once (before
    its fixtures, which could otherwise wait on the dead service)."""
    if _WATCH is not None and item.nodeid in _INFO:
        reason = _WATCH.reason_down()
        if reason:
            raise InfraError(f"not run: {reason}; grade again once `labkit status` shows it answering")


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    ctx = _context()
    keep, problems = [], []
    for item in items:
        info, problem = _check_info(item, ctx.lab_dir)
        if problem:
            problems.append(problem)
            continue
        if info.visibility is Visibility.HIDDEN and not ctx.hidden:
            continue
        if ctx.select and item.name not in ctx.select:
            continue
        _INFO[item.nodeid] = info
        keep.append(item)
    if problems:
        raise pytest.UsageError("lab checks are malformed:\n" + "\n".join(problems))
    unknown = set(ctx.select) - {item.name for item in keep}
    if unknown:
        raise pytest.UsageError(f"no such check here: {', '.join(sorted(unknown))}")
    items[:] = keep
    _write({"event": "collected", "checks": [_info_dict(i) for i in _INFO.values()]})


def _check_info(item: pytest.Item, lab_dir: Path) -> tuple[CheckInfo, str]:
    marker = item.get_closest_marker("check")
    path = Path(str(item.path))
    try:
        rel = path.relative_to(lab_dir / "checks")
    except ValueError:
        rel = path
    check_id = f"{rel.as_posix()}::{item.name}"
    if marker is None:
        return None, f"{check_id}: has no @pytest.mark.check(points=...) marker"  # type: ignore[return-value]
    in_hidden_folder = rel.parts[0] == "hidden"
    visibility = Visibility.HIDDEN if in_hidden_folder else Visibility.VISIBLE
    declared = marker.kwargs.get("visibility")
    if declared is not None and declared != visibility.value:
        return None, f"{check_id}: declares visibility={declared!r} but lives in the {visibility.value} folder"  # type: ignore[return-value]
    points = marker.kwargs.get("points")
    if not isinstance(points, (int, float)) or points <= 0:
        return None, f"{check_id}: points must be a positive number, got {points!r}"  # type: ignore[return-value]
    title = marker.kwargs.get("title") or item.name.removeprefix("test_").replace("_", " ")
    return CheckInfo(check_id, title, float(points), visibility, marker.kwargs.get("feedback", "")), ""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    outcome = yield
    report = outcome.get_result()
    info = _INFO.get(item.nodeid)
    if info is None or item.nodeid in _REPORTED:
        return
    status, output = _classify(report, call)
    if status is None:
        return  # a passing setup: wait for the call phase
    _REPORTED.add(item.nodeid)
    seen = _EVIDENCE.pop(item.nodeid, [])
    if seen:  # what the check saw: the whole story of a pass, the context of a fail
        output = "\n".join([*([output] if output else []), *(f"seen: {line}" for line in seen)])
    _write({
        "event": "result", **_info_dict(info), "status": status.value,
        "output": output[:OUTPUT_LIMIT], "duration_s": round(_SETUP_S.pop(item.nodeid, 0.0) + report.duration, 3),
    })
    if status is Status.FAIL and _CONTEXT is not None and _CONTEXT.stop_at_first_fail:
        item.session.shouldstop = f"stopped at the first failed check ({info.check_id})"


_SETUP_S: dict[str, float] = {}  # setup time of checks whose call phase is still to come
_EVIDENCE: dict[str, list[str]] = {}  # per check: the lines it recorded through ``evidence``


def _classify(report: pytest.TestReport, call: pytest.CallInfo) -> tuple[Status | None, str]:
    """pass/fail/error from one phase's report. Setup failures and InfraError are the
    platform's (error); anything else raised by the check is the candidate's (fail)."""
    if report.when == "setup":
        if report.passed:
            _SETUP_S[report.nodeid] = report.duration
            return None, ""
        if report.skipped:
            return Status.ERROR, f"check was skipped: {_short(call)}"
        if call.excinfo is not None and call.excinfo.errisinstance(InfraError):
            return Status.ERROR, _short(call)
        return Status.ERROR, f"could not set up the check: {_short(call)}"
    if report.when == "call":
        if report.passed:
            return Status.PASS, ""
        if report.skipped:
            return Status.ERROR, f"check was skipped: {_short(call)}"
        if call.excinfo is not None and call.excinfo.errisinstance(InfraError):
            return Status.ERROR, _short(call)
        outages = _outages()
        if outages:
            return Status.ERROR, (f"{_short(call)}\n(not counted against the candidate: {describe(outages)} "
                                  "during this grade)")
        return Status.FAIL, _short(call)
    return None, ""  # teardown problems are ignored: the verdict was already given


def _outages() -> list[Outage]:
    """The outages of this grade so far, after a last look at any service that just missed
    a probe: a failure is the candidate's only when every service stayed healthy."""
    if _WATCH is None:
        return []
    _WATCH.confirm()
    return _WATCH.outages()


def _short(call: pytest.CallInfo) -> str:
    if call.excinfo is None:
        return ""
    text = call.excinfo.exconly()
    for prefix in ("AssertionError: ", "Failed: ", "labkit.grading.InfraError: "):
        text = text.removeprefix(prefix)
    # pytest's assertion rewriting appends "assert <expr>" lines; keep the author's message.
    return text.split("\nassert ")[0].strip()


def _info_dict(info: CheckInfo) -> dict[str, Any]:
    return {"check_id": info.check_id, "title": info.title, "points": info.points,
            "visibility": info.visibility.value, "feedback": info.feedback}


_WRITE_LOCK = threading.Lock()  # the health watcher and parallel candidate runs write too


def _write(record: dict[str, Any]) -> None:
    with _WRITE_LOCK, open(_context().results_path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
        handle.flush()


_RUN_IDS = itertools.count(1)


class _CandidateRun:
    """Marks a candidate command in the results file while it runs: the parent does not
    count that time against the grade's own timeout (the command has its own)."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout

    def __enter__(self) -> _CandidateRun:
        self.id = next(_RUN_IDS)
        _write({"event": "run", "id": self.id, "state": "start", "timeout_s": self.timeout})
        return self

    def __exit__(self, *exc: object) -> None:
        _write({"event": "run", "id": self.id, "state": "end"})


def _stopped(result: Any) -> Any:
    """A candidate command stopped because a service went down is the platform's fault."""
    if getattr(result, "aborted", ""):
        raise InfraError(f"the candidate's command was stopped: {result.aborted}; grade again once "
                         "`labkit status` shows the lab's services answering")
    if getattr(result, "timed_out", False) and _WATCH is not None:
        _WATCH.confirm()
        if _WATCH.down():
            raise InfraError(f"the candidate's command timed out while {_WATCH.reason_down()}")
    return result


# ---- fixtures handed to checks ------------------------------------------------------------


@pytest.fixture(scope="session")
def grade_context() -> GradeContext:
    return _context()


@pytest.fixture
def evidence(request: pytest.FixtureRequest) -> Any:
    """``evidence("alerted on batch 3, flagged tenure_months")``: one line of what the check
    observed. Reports show it beside a pass (so an honest pass and one that games the
    inputs read differently) and under a fail's symptom."""
    lines = _EVIDENCE.setdefault(request.node.nodeid, [])

    def record(line: str) -> None:
        lines.append(" ".join(str(line).split())[:300])

    return record


@pytest.fixture(scope="session")
def workspace(grade_context: GradeContext) -> Path:
    return grade_context.workspace


@pytest.fixture(scope="session")
def seed(grade_context: GradeContext) -> int:
    return grade_context.seed


@pytest.fixture(scope="session")
def hidden_seed(grade_context: GradeContext) -> int:
    """The seed of the hidden scenarios: the lab seed under the reviewer's key
    (labkit.grading.review_key), so a candidate, who has the seed but not the key, cannot
    regenerate them. Hidden checks only; a bad key is the reviewer's setup, an error."""
    if not grade_context.hidden:
        raise InfraError("hidden_seed is for hidden checks: a visible grade has no review key")
    return _keyed_seed(grade_context)


def _keyed_seed(grade_context: GradeContext) -> int:
    from labkit.errors import LabkitError
    from labkit.grading.review_key import hidden_seed as derive, review_key

    try:
        return derive(review_key(), grade_context.lab_id, grade_context.seed)
    except LabkitError as exc:
        raise InfraError(str(exc)) from exc


@pytest.fixture(scope="session")
def scenario_seed(grade_context: GradeContext) -> int:
    """The seed a grade draws its scenarios from, for fixtures visible and hidden checks
    share: hidden_seed in a hidden grade (the candidate cannot regenerate its data), the
    lab seed in a visible one (no key needed)."""
    return _keyed_seed(grade_context) if grade_context.hidden else grade_context.seed


@pytest.fixture(scope="session")
def lab_dir(grade_context: GradeContext) -> Path:
    return grade_context.lab_dir


@pytest.fixture(scope="session")
def state_dir(grade_context: GradeContext) -> Path:
    return grade_context.state_dir


@pytest.fixture(scope="session")
def services(grade_context: GradeContext) -> dict[str, str]:
    return grade_context.services


def _service(grade_context: GradeContext, name: str) -> str:
    from labkit.runtimes.local import http_ok

    url = grade_context.services.get(name)
    if url is None:
        raise InfraError(f"this lab runs no {name} service")
    down = [o for o in (_WATCH.down() if _WATCH is not None else []) if o.service == name]
    if down:
        raise InfraError(f"{describe(down)}; restart the lab with `labkit start`")
    if not http_ok(health_url(name, url), timeout=10):
        raise InfraError(f"{name} at {url} is not answering; restart the lab with `labkit start`")
    return url


@pytest.fixture(scope="session")
def mlflow_tracking_uri(grade_context: GradeContext) -> str:
    return _service(grade_context, "mlflow")


@pytest.fixture(scope="session")
def mlflow_client(mlflow_tracking_uri: str) -> Any:
    import mlflow

    mlflow.set_tracking_uri(mlflow_tracking_uri)
    return mlflow.MlflowClient(tracking_uri=mlflow_tracking_uri)


@pytest.fixture(scope="session")
def prefect_api_url(grade_context: GradeContext) -> str:
    return _service(grade_context, "prefect") + "/api"


@pytest.fixture(scope="session")
def kube_cluster(grade_context: GradeContext) -> Any:
    """The lab's cluster (labkit.kube.api.Cluster); an infrastructure error off the kind runtime."""
    from labkit.kube.api import Cluster, ClusterInfo

    data = grade_context.runtime.get("cluster")
    if not data:
        raise InfraError("this lab is not running on the kind runtime: start it with --runtime kind")
    return Cluster(ClusterInfo.from_dict(data))


@pytest.fixture(scope="session")
def cluster_services(grade_context: GradeContext) -> dict[str, str]:
    """How pods reach the lab's services (in-cluster URLs), on the kind runtime."""
    return dict(grade_context.runtime.get("cluster_services") or {})


@pytest.fixture(scope="session")
def candidate_runner(grade_context: GradeContext) -> Any:
    """The runner of the candidate's commands, chosen once per grade: confined
    (labkit.sandbox.runner) when the grade carries a sandbox (`labkit review`), plain
    otherwise. Both have labkit.proc.ProcessRunner's interface."""
    from labkit.sandbox.runner import candidate_runner as choose

    return choose(grade_context.sandbox)


@pytest.fixture(scope="session")
def warm_runner(grade_context: GradeContext, candidate_runner: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The candidate runner, behind a warm interpreter when the grade has one (see
    labkit.warm): started at once in the background, used from the first command it is
    ready for. None without one (a review, LABKIT_WARM=0, or a lab with no warm_imports)."""
    if not grade_context.warm_imports or grade_context.sandbox is not None:
        yield None
        return
    from labkit.warm.client import WarmRunner

    runner = WarmRunner(grade_context.warm_imports, base_env=_candidate_env(grade_context, None),
                        folder=tmp_path_factory.mktemp("warm"), cold=candidate_runner)
    runner.start()
    yield runner
    runner.stop()


@pytest.fixture(scope="session")
def run_in_workspace(grade_context: GradeContext, candidate_runner: Any, warm_runner: Any) -> Any:
    """Run the candidate's code as a candidate would, with the services in its env.

    Returns a callable; a timeout is the candidate's (their code hung), so it is
    reported through ``timed_out`` rather than raised — while the lab's services answer.
    A service that goes down stops the command at once and raises InfraError naming it;
    a check failing on a timed-out run while a service was down is an error too (see
    ``_classify``), so labs need no outage logic of their own. The command runs
    contained: whatever it started ends with it. ``cwd`` runs it in another folder
    instead of the workspace (e.g. a clean copy of it); ``extra_services`` are private
    servers the grade started (see ``start_private_service``). Under `labkit review`
    this is where the sandbox applies: checks run candidate code only through this
    fixture and ``start_in_workspace``.
    """
    from labkit.sandbox.runner import for_command

    def run(argv: list[str], *, timeout: float = 120, env: dict[str, str] | None = None,
            cwd: Path | None = None, extra_services: dict[str, str] | None = None) -> Any:
        runner = for_command(candidate_runner, extra_services=extra_services)
        if warm_runner is not None and runner is candidate_runner:
            runner = warm_runner
        with _CandidateRun(timeout):
            return _stopped(runner.run(
                _python(argv), timeout=timeout, cwd=cwd or grade_context.workspace,
                env=_candidate_env(grade_context, env), check=False, contain=True,
                abort=_WATCH.reason_down if _WATCH is not None else None))

    return run


def _python(argv: list[str]) -> list[str]:
    """"python" as a command means this interpreter (the one with the lab's stack)."""
    return [sys.executable if i == 0 and a == "python" else a for i, a in enumerate(argv)]


def _candidate_env(grade_context: GradeContext, extra: dict[str, str] | None) -> dict[str, str]:
    """The environment of a candidate command: the lab's service URLs and the check's
    additions; outside a sandbox also this process's environment, minus the grade context
    and the review key."""
    from labkit.provisioning import service_env

    from labkit.grading.review_key import KEY_ENV

    hide = (CONTEXT_ENV, KEY_ENV)  # the reviewer's key never reaches candidate code
    # Nor pytest's own variables: PYTEST_CURRENT_TEST names the check that is running.
    base = {} if grade_context.sandbox is not None else {
        k: v for k, v in os.environ.items() if k not in hide and not k.startswith("PYTEST_")}
    return {**base, **service_env(grade_context.services), **(extra or {})}


@pytest.fixture(scope="session")
def start_in_workspace(grade_context: GradeContext, candidate_runner: Any,
                       tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Start the candidate's long-lived code (a worker, a server) in the background.

    Returns a callable like ``run_in_workspace``'s, which returns a handle with
    ``alive()``, ``output()`` and ``stop()``. Whatever is still running when the grade
    ends is stopped, with every process it started (it runs contained), and it is
    stopped after ``lifetime_s`` of wall-clock time. Under `labkit review` the process is
    confined like any other candidate command, for at most ``lifetime_s`` of CPU time.
    """
    from labkit.proc import BackgroundProcess
    from labkit.sandbox.runner import for_command

    started: list[Any] = []
    logs = tmp_path_factory.mktemp("background")

    def start(argv: list[str], *, name: str, cwd: Path | None = None, env: dict[str, str] | None = None,
              extra_services: dict[str, str] | None = None, lifetime_s: float = 1800) -> Any:
        runner = for_command(candidate_runner, extra_services=extra_services, lifetime_s=lifetime_s)
        log_path = logs / f"{name}.log"
        pid = runner.spawn(_python(argv), log_path=log_path, cwd=cwd or grade_context.workspace,
                           env=_candidate_env(grade_context, env), contain=True)
        handle = BackgroundProcess(pid, log_path, runner=runner, lifetime_s=lifetime_s)
        started.append(handle)
        return handle

    yield start
    for handle in reversed(started):
        handle.stop()


@pytest.fixture(scope="session")
def start_private_service(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Start a fresh MLflow or Prefect server for this grade alone; returns its URL.

    For labs whose grade must not share state with what the candidate left running (a
    worker of theirs still listening to the lab's Prefect server). The server is
    labkit's, not the candidate's: it runs unconfined; pass its URL to the candidate's
    commands as ``extra_services`` so a review's sandbox lets them reach it.
    Failing to start is an infrastructure error, never the candidate's.
    """
    from labkit.errors import LabkitError
    from labkit.proc import DEFAULT_RUNNER
    from labkit.runtimes.local import launch_service

    started: list[tuple[str, int]] = []

    def start(service: str) -> str:
        folder = tmp_path_factory.mktemp(f"private-{service}")
        try:
            info = launch_service(service, data_dir=folder / "data", log_path=folder / "server.log",
                                  runner=DEFAULT_RUNNER)
        except LabkitError as exc:
            raise InfraError(f"could not start a private {service} server for the grade: {exc}") from exc
        name = f"private {service} #{len(started) + 1}"
        started.append((name, info.pid))
        if _WATCH is not None:  # the grade's own server: its outage is the platform's too
            _WATCH.add(name, info.url, info.url + info.health_path)
        return info.url

    yield start
    for name, pid in started:
        if _WATCH is not None:
            _WATCH.remove(name)
        DEFAULT_RUNNER.terminate(pid, grace_s=5)
