"""Hidden fixtures: the reviewer batches the grade's checks need, run through the candidate's
monitor once per grade.

A check names the batches it reads with ``@pytest.mark.scenarios(...)``; a grade draws and
runs exactly those (a grade of one check runs one or two monitors, not all of them).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from checks.hidden.batches import BUILDERS, THRESHOLD_OVERRIDE, Batch, hidden_batches
from support.data import BASELINE_DAYS
from support.runs import Job, MonitorRun

EXPERIMENT = "drift-monitoring"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "scenarios(*names): the hidden batches a check reads (checks.hidden.batches)")


@dataclass(frozen=True)
class HiddenRuns:
    batches: dict[str, Batch]
    runs: dict[tuple, MonitorRun]

    def __getitem__(self, key: str | tuple[str, float | None]) -> tuple[Batch, MonitorRun]:
        name, threshold = key if isinstance(key, tuple) else (key, None)
        batch = self.batches[name]
        return batch, self.runs[(name, threshold, "own" if batch.config or batch.threshold else None)]


def jobs_for(batch: Batch, workspace) -> list[Job]:
    """The runs a batch gets. Most: one, as the candidate would run it. The configured batch:
    one, with its own monitor.yaml and logs. The one-feature batch: two, with a monitor.yaml
    like the workspace's but another alert_threshold, once as it is and once with --threshold."""
    if batch.config is not None:
        return [Job(batch.name, batch.frame, config_name="own", config=batch.config, logs=batch.logs)]
    if batch.threshold is not None:
        config = {"logs_dir": str(workspace / "data" / "production"),
                  "reference_window": {"start": str(BASELINE_DAYS[0]), "end": str(BASELINE_DAYS[1])},
                  "alert_threshold": batch.threshold, "experiment": EXPERIMENT}
        return [Job(batch.name, batch.frame, threshold, config_name="own", config=config)
                for threshold in (None, THRESHOLD_OVERRIDE)]
    return [Job(batch.name, batch.frame)]


@pytest.fixture(scope="session")
def hidden(request, monitor, population, champion, baseline, hidden_seed, workspace) -> HiddenRuns:
    """The batches the selected checks need, at once, two monitor processes at a time (the
    grade's slowest part), in a random order."""
    needed = {name for item in request.session.items for mark in item.iter_markers("scenarios") for name in mark.args}
    unknown = needed - set(BUILDERS)
    if unknown:
        raise pytest.UsageError(f"checks name unknown scenarios: {sorted(unknown)}")
    batches = hidden_batches(population, champion, baseline, hidden_seed, names=needed)
    jobs = [job for batch in batches.values() for job in jobs_for(batch, workspace)]
    return HiddenRuns(batches, monitor.run_all(jobs))
