"""Hidden fixtures: every reviewer batch, run through the candidate's monitor once per grade."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from checks.hidden.batches import THRESHOLD_OVERRIDE, Batch, hidden_batches
from support.runs import MonitorRun


@dataclass(frozen=True)
class HiddenRuns:
    batches: dict[str, Batch]
    runs: dict[tuple[str, float | None], MonitorRun]

    def __getitem__(self, key: str | tuple[str, float | None]) -> tuple[Batch, MonitorRun]:
        name, threshold = key if isinstance(key, tuple) else (key, None)
        return self.batches[name], self.runs[(name, threshold)]


@pytest.fixture(scope="session")
def hidden(monitor, population, champion, baseline) -> HiddenRuns:
    """All hidden batches at once, two monitor processes at a time (the grade's slowest part)."""
    batches = hidden_batches(population, champion, baseline)
    jobs = [(name, batch.frame, None) for name, batch in batches.items()]
    jobs.append(("one-feature", batches["one-feature"].frame, THRESHOLD_OVERRIDE))
    return HiddenRuns(batches, monitor.run_all(jobs))
