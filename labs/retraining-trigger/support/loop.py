"""Plays scenarios through the candidate's retraining loop and records what happened.

The grader copies the workspace, gives the copy its own data and retrain.yaml values
(a model name of its own, registered with a fresh champion; a short cooldown; a window
of one batch), starts the candidate's worker and API from the copy against a Prefect
server of the grade's own, then delivers batches the way production does: it writes
the batch file and runs the candidate's monitor on it. What the checks judge is only
what can be observed: model versions and their tags, the champion alias, flow runs on
the Prefect server, and the API's answers.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import tempfile
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import yaml

from labkit.grading import InfraError, expect
from support import data
from support.provision import CHAMPION_ALIAS, register_champion

# What the grader sets in its copy of retrain.yaml (BRIEF.md says so).
COOLDOWN_S = 15
GRADE_SETTINGS = {"retrain": {"window_batches": 1, "cooldown_seconds": COOLDOWN_S, "min_auc_gain": 0.02},
                  "serving": {"reload_seconds": 3}}
BATCH_ROWS = 1000
RETRAIN_WAIT_S = 120  # from a drift event to its model version
# A scenario is over when the grade's Prefect server has no flow run scheduled, pending or
# running and nothing (versions, the alias, flow runs) has changed for a quiet window: after
# a retrain, QUIET_S (every event of the scenario reached the server long before its first
# flow run finished); when none is expected, QUIET_NO_RETRAIN_S after the last monitor
# returned (enough for an event to reach the server and a trigger to create a flow run).
QUIET_S = 4
QUIET_NO_RETRAIN_S = 8
# After the last event: a Prefect server still with runs to start or finish means the grade cannot
# say which scenario their versions belong to (under load ~20 on 2 cores the starter's retrains
# took 220 s from event to end), so the scenario's checks end error.
SETTLE_CAP_S = 420
SERVING_WAIT_S = 45  # from a promotion to the API answering with the new champion
HOLD_POLLS, HOLD_GAP_S = 3, 2.0  # after a rejected retrain: the API must keep answering with the champion
MONITOR_TIMEOUT_S = 120
EVENT_SPREAD_S = COOLDOWN_S - 3  # an episode's events must land within this, or its verdict is unknowable
# The scenarios, in the order they are played (checks/conftest.py plays them).
ORDER = ["clean", "episode", "serving", "poisoned", "margin", "burst"]
MARGIN_STREAMS = 90_000
ACTIVE_STATES = ["SCHEDULED", "PENDING", "RUNNING", "CANCELLING", "PAUSED"]
NOT_COPIED = {".labkit", ".git", "data", "mlruns", "mlartifacts", "__pycache__", ".pytest_cache", ".venv", "venv"}


@dataclass(frozen=True)
class Version:
    number: str
    tags: dict[str, str]
    created_s: float


@dataclass
class Scenario:
    name: str
    batches: list[str] = field(default_factory=list)
    monitor_failures: list[str] = field(default_factory=list)
    versions: list[Version] = field(default_factory=list)  # attributed to the scenario (Loop.attribute)
    seen: list[str] = field(default_factory=list)  # versions first registered while it played
    champion_before: str = ""
    champion_after: str = ""
    champions: list[str] = field(default_factory=list)  # every version the alias named while it played
    holdout: pd.DataFrame | None = None  # the verified holdout while it played
    started_s: float = 0.0
    last_event_s: float = 0.0  # when the last monitor of the scenario returned
    timing_problem: str = ""  # why the grade cannot vouch for the scenario's end (its checks end error)
    spread_problem: str = ""  # why its events may not fall within one cooldown (the once-checks end error)
    monitor_spans: list[tuple[float, float]] = field(default_factory=list)  # (start, end) of each monitor
    held: list[tuple[str, list[float]]] = field(default_factory=list)  # API answers after a rejected retrain
    hold_problem: str = ""
    hold_rows: pd.DataFrame | None = None
    note: str = ""  # e.g. how its data was chosen

    def promoted(self, version: Version) -> bool:
        return version.number in self.champions

    def describe_versions(self) -> str:
        if not self.versions:
            return "no model version was registered"
        return "; ".join(f"v{v.number} (tags: {_short_tags(v.tags)})" for v in self.versions)


@dataclass
class ServingObservation:
    expected_version: str
    answered_version: str = ""
    seconds: float | None = None  # from the promotion being visible to the API answering with it
    probabilities: list[float] = field(default_factory=list)
    problem: str = ""
    rows: pd.DataFrame | None = None  # what was sent


@dataclass
class Loop:
    """One grade's copy of the candidate's loop, and the scenarios played through it."""

    run: Callable[..., Any]  # run_in_workspace
    start: Callable[..., Any]  # start_in_workspace
    folder: Path
    population: data.Population
    tracking_uri: str
    prefect_url: str
    model_name: str = field(default_factory=lambda: f"churn-grade-{uuid.uuid4().hex[:8]}")
    startup_problem: str = ""
    startup_loaded: bool = False  # the start-up wait ran out on a loaded machine: not the candidate's fail
    scenarios: dict[str, Scenario] = field(default_factory=dict)
    serving: ServingObservation | None = None
    baseline_version: str = ""
    holdout: pd.DataFrame | None = None
    _stream: int = 1000
    _day: int = 0

    @property
    def copy(self) -> Path:
        return self.folder / "workspace"

    @property
    def socket_path(self) -> Path:
        """Through a short link: a Unix socket's path is limited to 108 bytes."""
        link = self.folder / "short-link"
        if not link.is_symlink():
            short = Path(tempfile.mkdtemp(prefix="lk-", dir="/tmp")) / "w"
            short.symlink_to(self.folder)
            link.symlink_to(short)
        return Path(os.readlink(link)) / "api.sock"

    @property
    def env(self) -> dict[str, str]:
        return {"MLFLOW_TRACKING_URI": self.tracking_uri, "PREFECT_API_URL": self.prefect_url,
                "PREFECT_RUNNER_POLL_FREQUENCY": "2", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}

    @property
    def extra_services(self) -> dict[str, str]:
        return {"grade-prefect": self.prefect_url.removesuffix("/api")}

    # ---- set-up ----------------------------------------------------------------------------

    def prepare(self, workspace: Path) -> None:
        """The copy: the candidate's files, the grade's data and settings, a fresh champion."""
        shutil.copytree(workspace, self.copy, symlinks=True, ignore=lambda _d, names: [n for n in names if n in NOT_COPIED])
        data_dir = self.copy / "data"
        (data_dir / "batches").mkdir(parents=True)
        reference = self.population.sample(5000, regime="before", stream=self._next_stream())
        (data_dir / "reference.csv").write_text(data.to_csv(reference))
        self.write_holdout("before")
        config_path = self.copy / "retrain.yaml"
        try:
            config = yaml.safe_load(config_path.read_text()) if config_path.exists() else {}
        except yaml.YAMLError:
            config = {}
        config = config if isinstance(config, dict) else {}
        config.update({"model_name": self.model_name, "experiment": self.model_name, "reference": "data/reference.csv",
                       "holdout": "data/holdout.csv", "batches": "data/batches"})
        for section, values in GRADE_SETTINGS.items():
            config[section] = {**(config.get(section) or {}), **values}
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        try:
            self.baseline_version = register_champion(reference, tracking_uri=self.tracking_uri,
                                                      model_name=self.model_name, experiment=self.model_name)
        except Exception as exc:  # the registry is the platform's
            raise InfraError(f"could not register the grade's champion in {self.tracking_uri}: {exc}") from exc

    def write_holdout(self, regime: str) -> pd.DataFrame:
        """The data team's verified holdout, refreshed to the traffic of the moment."""
        holdout = self.population.sample(2000, regime=regime, stream=self._next_stream())
        (self.copy / "data" / "holdout.csv").write_text(data.to_csv(holdout))
        self.holdout = holdout
        return holdout

    def start_loop(self) -> None:
        """The candidate's worker, then their API; a failure to start is recorded, not raised."""
        worker = self.start(["python", "-m", "pipeline.worker"], name="worker", cwd=self.copy, env=self.env,
                            extra_services=self.extra_services)
        self.startup_problem, self.startup_loaded = _wait_for(
            lambda: bool(self.deployments()), worker, "`python -m pipeline.worker`",
            "registered no deployment on the Prefect server")
        if self.startup_problem:
            return
        time.sleep(3)  # the server's trigger service picks up the deployment's automations
        api = self.start(["python", "-m", "pipeline.serve", "--socket", str(self.socket_path)], name="api",
                         cwd=self.copy, env=self.env, extra_services=self.extra_services)
        self.startup_problem, self.startup_loaded = _wait_for(
            lambda: self._api("GET", "/health")[0] == 200, api, "`python -m pipeline.serve --socket PATH`",
            "did not answer GET /health")

    def require_started(self) -> None:
        """Every check that needs the loop: a start-up the machine's load may have held back is
        `error`; one that crashed, or hung on an idle machine, is the candidate's fail."""
        if self.startup_problem and self.startup_loaded:
            raise InfraError(self.startup_problem)
        expect(not self.startup_problem, self.startup_problem)

    # ---- observation -----------------------------------------------------------------------

    def client(self) -> Any:
        import mlflow

        return mlflow.MlflowClient(tracking_uri=self.tracking_uri)

    def versions(self) -> list[Version]:
        found = self.client().search_model_versions(f"name='{self.model_name}'")
        return sorted((Version(str(v.version), dict(v.tags), v.creation_timestamp / 1000) for v in found),
                      key=lambda v: int(v.number))

    def champion(self) -> str:
        return str(self.client().get_model_version_by_alias(self.model_name, CHAMPION_ALIAS).version)

    def active_flow_runs(self) -> list[dict]:
        """Flow runs the grade's Prefect server has yet to finish, among those already due (a
        schedule's future runs are not work in progress): (id, state type) of each."""
        runs = _post_json(f"{self.prefect_url}/flow_runs/filter",
                          {"flow_runs": {"state": {"type": {"any_": ACTIVE_STATES}},
                                         "expected_start_time": {"before_": _iso(time.time() + 1)}}}) or []
        return [{"id": r.get("id"), "state": (r.get("state") or {}).get("type", "")} for r in runs]

    def run_count(self) -> int:
        return int(_post_json(f"{self.prefect_url}/flow_runs/count", {}) or 0)

    def deployments(self) -> list[dict]:
        return _post_json(f"{self.prefect_url}/deployments/filter", {}) or []

    def flow_runs(self) -> list[dict]:
        return _post_json(f"{self.prefect_url}/flow_runs/filter", {"sort": "EXPECTED_START_TIME_ASC"}) or []

    def model(self, version: str) -> Any:
        import mlflow

        mlflow.set_tracking_uri(self.tracking_uri)
        return mlflow.sklearn.load_model(f"models:/{self.model_name}/{version}")

    def predict(self, rows: pd.DataFrame) -> tuple[int, dict | str]:
        return self._api("POST", "/predict", {"rows": rows[data.FEATURES].to_dict(orient="records")})

    def _api(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict | str]:
        connection = _UnixHTTPConnection(str(self.socket_path), timeout=20)
        try:
            payload = json.dumps(body).encode() if body is not None else None
            connection.request(method, path, body=payload, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            text = response.read().decode(errors="replace")
        except (OSError, http.client.HTTPException) as exc:
            return 0, str(exc)
        finally:
            connection.close()
        try:
            return response.status, json.loads(text)
        except ValueError:
            return response.status, text[:300]

    # ---- scenarios -------------------------------------------------------------------------

    def deliver(self, scenario: Scenario, frames: list[pd.DataFrame], *, gap_s: float = 0) -> None:
        """Write each batch into the batches folder and run the monitor on it, as production does,
        batch i at ``i * gap_s`` seconds (0: all at once, a burst) whatever the monitor's run time:
        each monitor starts at its own fixed offset, concurrently with the others. Each batch is
        written when its monitor starts (it has landed). How far apart the events came is
        judged when the scenario ends (Loop.check_spread)."""
        paths = []
        for _ in frames:
            self._day += 1
            path = self.copy / "data" / "batches" / f"batch-{self._day:04d}.csv"
            scenario.batches.append(path.stem)
            paths.append(path)
        spans = scenario.monitor_spans
        origin = time.monotonic()

        def land(i: int) -> None:
            time.sleep(max(0.0, origin + i * gap_s - time.monotonic()))
            paths[i].write_text(data.to_csv(frames[i]))
            started = time.time()
            self._monitor(scenario, paths[i])
            spans.append((started, time.time()))

        threads = [threading.Thread(target=land, args=(i,)) for i in range(len(paths))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        scenario.last_event_s = time.time()

    def check_spread(self, scenario: Scenario) -> None:
        """How far apart the scenario's events came: from the times the events themselves carry
        on the grade's Prefect server (any event not Prefect's own, between the first monitor's
        start and the last one's end), else from the monitors' runs. Wider than EVENT_SPREAD_S,
        the events may not fall within one cooldown: recorded as spread_problem."""
        spans = scenario.monitor_spans
        if len(spans) < 2:
            return
        since, until = min(s for s, _ in spans), max(e for _, e in spans)
        try:
            page = _post_json(f"{self.prefect_url}/events/filter", {
                "filter": {"occurred": {"since": _iso(since - 1), "until": _iso(until + 1)},
                           "event": {"exclude_prefix": ["prefect."]}}, "limit": 50}) or {}  # the server's page cap
        except InfraError:  # the bound from the monitors' runs still holds
            page = {}
        occurred = [_epoch(e["occurred"]) for e in page.get("events") or [] if e.get("occurred")]
        how = "their events were emitted"
        if len(occurred) < 2:
            occurred, how = [since, until], "their monitors ran"
        spread = max(occurred) - min(occurred)
        scenario.note = scenario.note or f"events {spread:.1f} s apart"
        if spread > EVENT_SPREAD_S:
            scenario.spread_problem = (
                f"{how} over {spread:.0f} s for batches {', '.join(scenario.batches)} (started at fixed offsets), "
                f"so they may not fall within one {COOLDOWN_S} s cooldown: the machine is too loaded to judge this "
                f"scenario")

    def _monitor(self, scenario: Scenario, path: Path) -> None:
        done = self.run(["python", "-m", "pipeline.monitor", str(path.relative_to(self.copy))], cwd=self.copy,
                        env=self.env, extra_services=self.extra_services, timeout=MONITOR_TIMEOUT_S)
        if done.timed_out or done.returncode != 0:
            what = "timed out" if done.timed_out else f"exited with status {done.returncode}"
            scenario.monitor_failures.append(f"monitor on {path.stem} {what}: {_tail(done.stdout + done.stderr, 6)}")

    def play(self, scenario: Scenario, deliver: Callable[[Scenario], None], *, expect_retrain: bool) -> Scenario:
        """Deliver, then watch until the scenario is over: the grade's Prefect server has no flow
        run scheduled, pending or running, nothing has changed for QUIET_S, and (when a retrain is
        expected) a version was registered or RETRAIN_WAIT_S passed. The end waits on events,
        not on a wall-clock window, so a loaded machine delays it instead of cutting it short."""
        before = {v.number for v in self.versions()}
        scenario.champion_before = self.champion()
        scenario.champions = [scenario.champion_before]
        scenario.holdout = self.holdout
        scenario.started_s = time.time()
        self.scenarios[scenario.name] = scenario
        deliver(scenario)
        last_change, state = time.time(), None
        first_deadline = scenario.last_event_s + RETRAIN_WAIT_S
        while True:
            new = [v.number for v in self.versions() if v.number not in before]
            champion = self.champion()
            active = self.active_flow_runs()
            now_state = (tuple(new), champion, tuple(sorted((r["id"], r["state"]) for r in active)), self.run_count())
            if now_state != state:
                state, last_change = now_state, time.time()
            if champion not in scenario.champions:
                scenario.champions.append(champion)
            now = time.time()
            settled = not active and now >= last_change + (QUIET_S if new else QUIET_NO_RETRAIN_S)
            if settled and (new or not expect_retrain or now >= first_deadline):
                break
            if now >= scenario.last_event_s + SETTLE_CAP_S:
                if active:
                    states = ", ".join(sorted({r["state"] for r in active}))
                    scenario.timing_problem = scenario.timing_problem or (
                        f"{SETTLE_CAP_S} s after the last batch, the grade's Prefect server still had {len(active)} "
                        f"flow run(s) not finished ({states}): which scenario their versions belong to cannot be "
                        f"told, so this scenario is not judged")
                break
            time.sleep(1)
        scenario.seen = new
        self.check_spread(scenario)  # at the end: the server persists events a little after they arrive
        scenario.champion_after = self.champion()
        if scenario.champion_after not in scenario.champions:
            scenario.champions.append(scenario.champion_after)
        self.attribute()
        return scenario

    def attribute(self) -> None:
        """Give every version to the scenario whose batch its ``trigger_batch`` tag names, else to
        the scenario during which it was registered; tags are read afresh (a loop may write them
        after registering)."""
        current = {v.number: v for v in self.versions()}
        owner_of_batch = {batch: s for s in self.scenarios.values() for batch in s.batches}
        for s in self.scenarios.values():
            s.versions = []
        for s in self.scenarios.values():
            for number in s.seen:
                version = current.get(number)
                if version is not None:
                    owner_of_batch.get(version.tags.get("trigger_batch", "").strip(), s).versions.append(version)
        for s in self.scenarios.values():
            s.versions.sort(key=lambda v: int(v.number))

    def hold_serving(self, scenario: Scenario, rows: pd.DataFrame) -> None:
        """After a retrain that was not promoted: the API must go on answering with the champion."""
        champion = self.champion()
        scenario.hold_rows = rows
        for i in range(HOLD_POLLS):
            if i:
                time.sleep(HOLD_GAP_S)
            status, body = self.predict(rows)
            if status != 200 or not isinstance(body, dict):
                scenario.hold_problem = f"POST /predict answered {status}: {str(body)[:200]}"
                return
            scenario.held.append((str(body.get("model_version", "")),
                                  [float(p) for p in body.get("probabilities") or []]))
        if champion != scenario.champion_after:
            scenario.hold_problem = f"the champion moved to v{champion} while the API was watched"

    def wait_cooldown(self) -> None:
        """Let the cooldown pass (and a margin) since the last drift event and the last retrain,
        so the next scenario starts fresh whatever the candidate counts the cooldown from."""
        last = max([s.last_event_s for s in self.scenarios.values()]
                   + [v.created_s for s in self.scenarios.values() for v in s.versions], default=0)
        time.sleep(max(0.0, last + COOLDOWN_S + 2 - time.time()))

    def within_margin_batch(self) -> tuple[pd.DataFrame, float]:
        """A drifted batch whose challenger (the team's model, trained on it alone) beats the
        current champion on the current holdout by about half of min_auc_gain: the concept
        blended from "after" towards "later" just enough, found by bisection (the gain grows
        with the blend), a pure function of the seed and the champion."""
        margin = GRADE_SETTINGS["retrain"]["min_auc_gain"]
        holdout = self.holdout
        champion_auc = data.auc(self.model(self.champion()), holdout)
        closest: tuple[float, pd.DataFrame] | None = None
        for attempt in range(4):
            stream = MARGIN_STREAMS + attempt  # apart from the others: the later batches do not depend on the search
            low, high = 0.0, 1.0
            for _ in range(14):
                blend = (low + high) / 2
                frame = self.population.sample(BATCH_ROWS, regime="after", stream=stream, concept=blend)
                gain = data.auc(data.train_model(frame), holdout) - champion_auc
                if 0.3 * margin <= gain <= 0.7 * margin:
                    return frame, gain
                if closest is None or abs(gain - margin / 2) < abs(closest[0] - margin / 2):
                    closest = (gain, frame)
                low, high = (blend, high) if gain < margin / 2 else (low, blend)
        # Only a champion unlike any the team's model trains on one batch gets here (a loop that
        # trains on something else): the rules are still judged on what its retrain scored.
        assert closest is not None
        return closest[1], closest[0]

    def watch_serving(self, rows: pd.DataFrame) -> ServingObservation:
        """After a promotion: how long until the API answers with the new champion."""
        observation = ServingObservation(expected_version=self.champion(), rows=rows)
        started = time.monotonic()
        while True:
            status, body = self.predict(rows)
            if status == 200 and isinstance(body, dict):
                observation.answered_version = str(body.get("model_version", ""))
                if observation.answered_version == observation.expected_version:
                    observation.seconds = time.monotonic() - started
                    observation.probabilities = [float(p) for p in body.get("probabilities") or []]
                    break
                observation.problem = ""
            else:
                observation.problem = f"POST /predict answered {status}: {str(body)[:200]}"
            if time.monotonic() - started > SERVING_WAIT_S:
                break
            time.sleep(2)
        self.serving = observation
        return observation

    def _next_stream(self) -> int:
        self._stream += 1
        return self._stream

    def batch(self, regime: str, labels: str = "true") -> pd.DataFrame:
        return self.population.sample(BATCH_ROWS, regime=regime, stream=self._next_stream(), labels=labels)


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


STARTUP_WAIT_S = 90  # not registered or not answering by then on an idle machine: the candidate's fail
LOADED_STARTUP_WAIT_S = 300  # how long a loaded machine is given before the wait ends `error`


def machine_loaded() -> bool:
    """Runnable work well beyond the cores: a slow start-up may be the machine's, not the program's."""
    return os.getloadavg()[0] > 1.5 * (os.cpu_count() or 1)


def _wait_for(ready: Callable[[], bool], process: Any, what: str, failure: str,
              timeout_s: float = STARTUP_WAIT_S, loaded_timeout_s: float = LOADED_STARTUP_WAIT_S,
              loaded: Callable[[], bool] = machine_loaded) -> tuple[str, bool]:
    """Wait until ``ready()``. Returns (problem with the process's output, or ""; whether the
    machine was loaded when the wait ran out). On a loaded machine the wait goes on to
    ``loaded_timeout_s``, so load alone does not fail a program that was merely slow."""
    started = time.monotonic()
    while not ready():
        if not process.alive():
            return f"{what} exited: {_tail(process.output())}", False
        waited = time.monotonic() - started
        if waited > timeout_s:
            busy = loaded()
            if not busy or waited > loaded_timeout_s:
                where = (f" on a loaded machine (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores), "
                         "so it is not judged" if busy else "")
                return f"{what} {failure} within {waited:.0f} s{where}: {_tail(process.output())}", busy
        time.sleep(1)
    return "", False


def _post_json(url: str, body: dict) -> Any:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the grade's own server
            return json.loads(response.read())
    except OSError as exc:
        raise InfraError(f"the grade's Prefect server at {url} did not answer: {exc}") from exc


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, timezone.utc).isoformat()


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _short_tags(tags: dict[str, str]) -> str:
    shown = {k: v for k, v in tags.items() if not k.startswith("mlflow.")}
    return ", ".join(f"{k}={v}" for k, v in sorted(shown.items())) or "none"


def _tail(text: str, lines: int = 12) -> str:
    return "\n".join((text or "").strip().splitlines()[-lines:]) or "(no output)"
