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
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import yaml

from labkit.grading import InfraError
from support import data
from support.provision import CHAMPION_ALIAS, register_champion

# What the grader sets in its copy of retrain.yaml (BRIEF.md says so).
COOLDOWN_S = 20
GRADE_SETTINGS = {"retrain": {"window_batches": 1, "cooldown_seconds": COOLDOWN_S, "min_auc_gain": 0.02},
                  "serving": {"reload_seconds": 3}}
BATCH_ROWS = 1000
RETRAIN_WAIT_S = 120  # from a drift event to its model version
QUIET_S = 15  # no further version for this long: the scenario is over
SERVING_WAIT_S = 45  # from a promotion to the API answering with the new champion
MONITOR_TIMEOUT_S = 120
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
    versions: list[Version] = field(default_factory=list)  # registered during the scenario
    champion_before: str = ""
    champion_after: str = ""
    started_s: float = 0.0
    last_event_s: float = 0.0  # when the last monitor of the scenario returned

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
        self.startup_problem = _wait_for(lambda: bool(self.deployments()), worker, "`python -m pipeline.worker`",
                                         "registered no deployment on the Prefect server")
        if self.startup_problem:
            return
        time.sleep(3)  # the server's trigger service picks up the deployment's automations
        api = self.start(["python", "-m", "pipeline.serve", "--socket", str(self.socket_path)], name="api",
                         cwd=self.copy, env=self.env, extra_services=self.extra_services)
        self.startup_problem = _wait_for(lambda: self._api("GET", "/health")[0] == 200, api,
                                         "`python -m pipeline.serve --socket PATH`", "did not answer GET /health")

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

    def deliver(self, scenario: Scenario, frames: list[pd.DataFrame], *, together: bool = False, gap_s: float = 0) -> None:
        """Write each batch into the batches folder and run the monitor on it, as production does:
        one after the other (``gap_s`` apart), or all at once (a burst)."""
        paths = []
        for frame in frames:
            self._day += 1
            path = self.copy / "data" / "batches" / f"batch-{self._day:04d}.csv"
            path.write_text(data.to_csv(frame))
            scenario.batches.append(path.stem)
            paths.append(path)
        if together:
            threads = [threading.Thread(target=self._monitor, args=(scenario, path)) for path in paths]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        else:
            for i, path in enumerate(paths):
                if i and gap_s:
                    time.sleep(gap_s)
                self._monitor(scenario, path)
        scenario.last_event_s = time.time()

    def _monitor(self, scenario: Scenario, path: Path) -> None:
        done = self.run(["python", "-m", "pipeline.monitor", str(path.relative_to(self.copy))], cwd=self.copy,
                        env=self.env, extra_services=self.extra_services, timeout=MONITOR_TIMEOUT_S)
        if done.timed_out or done.returncode != 0:
            what = "timed out" if done.timed_out else f"exited with status {done.returncode}"
            scenario.monitor_failures.append(f"monitor on {path.stem} {what}: {_tail(done.stdout + done.stderr, 6)}")

    def play(self, scenario: Scenario, deliver: Callable[[Scenario], None], *, expect_retrain: bool) -> Scenario:
        """Deliver, then watch the registry until the scenario is over: QUIET_S without a new
        version after the last one (or after the delivery when none is expected), at most
        RETRAIN_WAIT_S for a first one."""
        before = {v.number for v in self.versions()}
        scenario.champion_before = self.champion()
        scenario.started_s = time.time()
        deliver(scenario)
        last_change = scenario.last_event_s
        deadline = scenario.last_event_s + (RETRAIN_WAIT_S if expect_retrain else QUIET_S)
        while True:
            new = [v for v in self.versions() if v.number not in before]
            if len(new) != len(scenario.versions):
                scenario.versions = new
                last_change = time.time()
                deadline = max(deadline, last_change + QUIET_S)
            if new and time.time() >= last_change + QUIET_S:
                break
            if time.time() >= deadline:
                break
            time.sleep(1)
        # Read again at the end: a version's tags may be written after it is registered.
        scenario.versions = [v for v in self.versions() if v.number not in before]
        scenario.champion_after = self.champion()
        self.scenarios[scenario.name] = scenario
        return scenario

    def wait_cooldown(self) -> None:
        """Let the cooldown pass (and a margin) since the last drift event and the last retrain,
        so the next scenario starts fresh whatever the candidate counts the cooldown from."""
        last = max([s.last_event_s for s in self.scenarios.values()]
                   + [v.created_s for s in self.scenarios.values() for v in s.versions], default=0)
        time.sleep(max(0.0, last + COOLDOWN_S + 5 - time.time()))

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


def _wait_for(ready: Callable[[], bool], process: Any, what: str, failure: str, timeout_s: float = 90) -> str:
    """Wait until ``ready()``; the problem, with the process's output, if it exited or timed out."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        if not process.alive():
            return f"{what} exited: {_tail(process.output())}"
        if time.monotonic() > deadline:
            return f"{what} {failure} within {timeout_s:.0f} s: {_tail(process.output())}"
        time.sleep(1)
    return ""


def _post_json(url: str, body: dict) -> Any:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the grade's own server
            return json.loads(response.read())
    except OSError as exc:
        raise InfraError(f"the grade's Prefect server at {url} did not answer: {exc}") from exc


def _short_tags(tags: dict[str, str]) -> str:
    shown = {k: v for k, v in tags.items() if not k.startswith("mlflow.")}
    return ", ".join(f"{k}={v}" for k, v in sorted(shown.items())) or "none"


def _tail(text: str, lines: int = 12) -> str:
    return "\n".join((text or "").strip().splitlines()[-lines:]) or "(no output)"
