"""Running the candidate's monitor on a batch, once per grade, and reading what it wrote.

Every run is a fresh Python process that imports evidently and mlflow (about ten
seconds), so each run key runs at most once per grade and the checks share the result;
independent batches run two at a time, in an order shuffled afresh for every grade.

Nothing the monitor is handed tells which situation it is in: each run gets a batch
file and an output folder with random names in one flat folder, so a monitor that
reads its arguments (or the MLflow param ``current_path``) learns nothing.
"""

from __future__ import annotations

import json
import random
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import pytest

import yaml

from support.data import write_csv

MONITOR_TIMEOUT_S = 240
PARALLEL_RUNS = 2
EXIT_NO_ALERT = 0
EXIT_ALERT = 3


@dataclass(frozen=True)
class MonitorRun:
    """One invocation of the candidate's monitor and what it left behind."""

    batch: str  # the grader's name for it; never shown to the monitor
    current_path: str  # the --current argument, exactly as passed
    out_dir: Path
    threshold: float | None
    config: Path | None  # the --config argument, when the run had its own monitor.yaml
    started_at: float  # epoch seconds, to tell this grade's MLflow runs from older ones
    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool
    duration_s: float

    @property
    def label(self) -> str:
        flag = "" if self.threshold is None else f" with --threshold {self.threshold}"
        flag += "" if self.config is None else " with a monitor.yaml of the grader's"
        return f"the {self.batch} batch{flag}"

    def verdict(self) -> dict[str, Any]:
        """The parsed drift.json of a run that ended as the contract says; fails the check otherwise."""
        if self.timed_out:
            pytest.fail(f"the monitor did not finish within {MONITOR_TIMEOUT_S} s on {self.label}", pytrace=False)
        if self.returncode not in (EXIT_NO_ALERT, EXIT_ALERT):
            pytest.fail(
                f"the monitor crashed on {self.label} (exit status {self.returncode}):\n{_tail(self.stderr)}",
                pytrace=False,
            )
        path = self.out_dir / "drift.json"
        if not path.is_file():
            pytest.fail(f"the monitor wrote no drift.json for {self.label}", pytrace=False)
        try:
            return json.loads(path.read_text())
        except ValueError as exc:
            pytest.fail(f"drift.json for {self.label} is not valid JSON ({exc})", pytrace=False)

    def html(self) -> str:
        path = self.out_dir / "drift_report.html"
        if not path.is_file():
            pytest.fail(f"the monitor wrote no drift_report.html for {self.label}", pytrace=False)
        return path.read_text(errors="replace")


RunKey = tuple  # (batch name, threshold or None, config name or None)


@dataclass(frozen=True)
class Job:
    """One monitor run to make: a batch, and optionally --threshold or a monitor.yaml of the grader's.

    ``config`` is that monitor.yaml's content. With ``logs`` (file name -> frame), the runner
    writes them to a folder of its own and sets logs_dir to it. logs_dir is always an
    absolute path, so it means the same read relative to the config file or to the cwd."""

    batch: str
    frame: pd.DataFrame
    threshold: float | None = None
    config_name: str | None = None
    config: dict[str, Any] | None = None
    logs: dict[str, pd.DataFrame] | None = None

    @property
    def key(self) -> RunKey:
        return (self.batch, self.threshold, self.config_name)


class MonitorRunner:
    """Runs `python monitor.py` in the workspace; caches runs by key."""

    def __init__(self, run_in_workspace: Callable[..., Any], root: Path):
        self._run_in_workspace = run_in_workspace
        self._root = root
        self._runs: dict[RunKey, MonitorRun] = {}
        self._lock = threading.Lock()
        self._key_locks: dict[RunKey, threading.Lock] = {}
        self._order = random.SystemRandom()  # per grade, never from the seed: order tells nothing

    def run(self, batch: str, frame: pd.DataFrame, threshold: float | None = None) -> MonitorRun:
        return self.run_job(Job(batch, frame, threshold))

    def run_job(self, job: Job) -> MonitorRun:
        with self._lock:
            key_lock = self._key_locks.setdefault(job.key, threading.Lock())
        with key_lock:
            if job.key not in self._runs:
                self._runs[job.key] = self._invoke(job)
            return self._runs[job.key]

    def run_all(self, jobs: list) -> dict[RunKey, MonitorRun]:
        """Run several jobs (Job, or (batch, frame, threshold)), PARALLEL_RUNS at a time, in a
        random order; keyed by Job.key.

        The grade's first monitor run goes alone: a correct monitor creates its MLflow
        experiment on first use, and two doing so at once hit a race in MLflow 3.17's
        set_experiment (the loser logs to the Default experiment), which is not theirs.
        """
        jobs = [job if isinstance(job, Job) else Job(*job) for job in jobs]
        self._order.shuffle(jobs)
        if jobs and not self._runs:
            self.run_job(jobs[0])
        with ThreadPoolExecutor(max_workers=PARALLEL_RUNS) as pool:
            futures = {job.key: pool.submit(self.run_job, job) for job in jobs}
            return {key: future.result() for key, future in futures.items()}

    def _fresh(self, suffix: str = "") -> Path:
        """A path in the runner's one flat folder, named by chance alone."""
        return self._root / f"{secrets.token_hex(6)}{suffix}"

    def _invoke(self, job: Job) -> MonitorRun:
        current = self._fresh(".csv")
        write_csv(job.frame, current)
        out_dir = self._fresh()
        argv = ["python", "monitor.py", "--current", str(current), "--out", str(out_dir)]
        if job.threshold is not None:
            argv += ["--threshold", str(job.threshold)]
        config = None
        if job.config is not None:
            content = dict(job.config)
            if job.logs is not None:
                logs_dir = self._fresh()
                logs_dir.mkdir()
                for name, frame in job.logs.items():
                    write_csv(frame, logs_dir / name)
                content = {"logs_dir": str(logs_dir), **content}
            config = self._fresh(".yaml")
            config.write_text(yaml.safe_dump(content, sort_keys=False))
            argv += ["--config", str(config)]
        started = time.time()
        result = self._run_in_workspace(argv, timeout=MONITOR_TIMEOUT_S)
        return MonitorRun(
            batch=job.batch,
            current_path=str(current),
            out_dir=out_dir,
            threshold=job.threshold,
            config=config,
            started_at=started,
            returncode=result.returncode,
            stdout=result.stdout,
            stderr=result.stderr,
            timed_out=result.timed_out,
            duration_s=result.duration_s,
        )


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join((text or "").strip().splitlines()[-lines:])
