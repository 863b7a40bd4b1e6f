"""Running the candidate's monitor on a batch, once per grade, and reading what it wrote.

Every run is a fresh Python process that imports evidently and mlflow (about ten
seconds), so each (batch, threshold) pair runs at most once per grade and the checks
share the result; independent batches run two at a time.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import pytest

from support.data import write_csv

MONITOR_TIMEOUT_S = 240
PARALLEL_RUNS = 2
EXIT_NO_ALERT = 0
EXIT_ALERT = 3


@dataclass(frozen=True)
class MonitorRun:
    """One invocation of the candidate's monitor and what it left behind."""

    batch: str
    current_path: str  # the --current argument, exactly as passed
    out_dir: Path
    threshold: float | None
    started_at: float  # epoch seconds, to tell this grade's MLflow runs from older ones
    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool
    duration_s: float

    @property
    def label(self) -> str:
        flag = "" if self.threshold is None else f" with --threshold {self.threshold}"
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


class MonitorRunner:
    """Runs `python monitor.py` in the workspace; caches runs by (batch name, threshold)."""

    def __init__(self, run_in_workspace: Callable[..., Any], root: Path):
        self._run_in_workspace = run_in_workspace
        self._root = root
        self._runs: dict[tuple[str, float | None], MonitorRun] = {}
        self._lock = threading.Lock()
        self._key_locks: dict[tuple[str, float | None], threading.Lock] = {}

    def run(self, batch: str, frame: pd.DataFrame, threshold: float | None = None) -> MonitorRun:
        key = (batch, threshold)
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            if key not in self._runs:
                self._runs[key] = self._invoke(batch, frame, threshold)
            return self._runs[key]

    def run_all(self, jobs: list[tuple[str, pd.DataFrame, float | None]]) -> dict[tuple[str, float | None], MonitorRun]:
        """Run several batches, PARALLEL_RUNS at a time; keyed by (batch, threshold).

        The grade's first monitor run goes alone: a correct monitor creates its MLflow
        experiment on first use, and two doing so at once hit a race in MLflow 3.17's
        set_experiment (the loser logs to the Default experiment), which is not theirs.
        """
        if jobs and not self._runs:
            self.run(*jobs[0])
        with ThreadPoolExecutor(max_workers=PARALLEL_RUNS) as pool:
            futures = {(b, t): pool.submit(self.run, b, frame, t) for b, frame, t in jobs}
            return {key: future.result() for key, future in futures.items()}

    def _invoke(self, batch: str, frame: pd.DataFrame, threshold: float | None) -> MonitorRun:
        current = self._root / "batches" / f"{batch}.csv"
        if not current.exists():
            current.parent.mkdir(parents=True, exist_ok=True)
            write_csv(frame, current)
        suffix = "" if threshold is None else f"-threshold-{threshold}"
        out_dir = self._root / "out" / f"{batch}{suffix}"
        argv = ["python", "monitor.py", "--current", str(current), "--out", str(out_dir)]
        if threshold is not None:
            argv += ["--threshold", str(threshold)]
        started = time.time()
        result = self._run_in_workspace(argv, timeout=MONITOR_TIMEOUT_S)
        return MonitorRun(
            batch=batch,
            current_path=str(current),
            out_dir=out_dir,
            threshold=threshold,
            started_at=started,
            returncode=result.returncode,
            stdout=result.stdout,
            stderr=result.stderr,
            timed_out=result.timed_out,
            duration_s=result.duration_s,
        )


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join((text or "").strip().splitlines()[-lines:])
