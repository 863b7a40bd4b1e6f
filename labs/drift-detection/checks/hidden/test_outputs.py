"""Reviewer checks: what the monitor leaves behind — the two files and the MLflow run."""

from __future__ import annotations

import math

import pytest

from labkit.grading import InfraError
from support.contract import drift_json_problems, html_report_problems, missing_share_problems
from support.data import BASELINE_DAYS
from labkit.grading import expect

EXPERIMENT = "drift-monitoring"
# One batch that must alert and one that must not, so both values of every flag are seen.
BATCHES = ("covariate", "clean")


@pytest.mark.check(
    points=2,
    title="drift.json and the HTML report follow the contract",
    feedback="Check every field of drift.json against BRIEF.md, and that the HTML is Evidently's report.",
)
@pytest.mark.scenarios(*BATCHES)
def test_report_files_parse(hidden, workspace):
    reference_rows = _baseline_rows(workspace)
    for name in BATCHES:
        batch, run = hidden[name]
        verdict = run.verdict()
        problems = drift_json_problems(verdict) + html_report_problems(run.html())
        expect(not problems, f"on {run.label}: " + "; ".join(problems))
        problems = missing_share_problems(verdict, batch.frame)
        expect(not problems, f"on {run.label}: " + "; ".join(problems))
        current = {"path": run.current_path, "rows": len(batch.frame)}
        expect(
            _subset(verdict["current"], current) == current,
            f"on {run.label}, current is {verdict['current']}, not {current}",
        )
        window = {"start": str(BASELINE_DAYS[0]), "end": str(BASELINE_DAYS[1]), "rows": reference_rows}
        expect(
            _subset(verdict["reference"], window) == window,
            f"on {run.label}, reference is {verdict['reference']}; the configured window holds {window}",
        )


@pytest.mark.check(
    points=3,
    title="Each run is logged to MLflow with its metrics and files",
    feedback="Every invocation should leave one MLflow run whose metrics and artifacts match drift.json.",
)
@pytest.mark.scenarios(*BATCHES)
def test_metrics_logged_to_mlflow(hidden, mlflow_client):
    for name in BATCHES:
        _, run = hidden[name]
        verdict = run.verdict()
        logged = _logged_run(mlflow_client, run)
        expected = {
            "share_drifted_features": float(verdict["share_drifted_features"]),
            "dataset_drift": float(bool(verdict["drift_detected"])),
            "prediction_drift": float(bool(verdict["prediction_drift"])),
            "n_drifted_features": float(len(verdict["drifted_features"])),
        }
        metrics = logged.data.metrics
        wrong = {
            key: metrics.get(key)
            for key, value in expected.items()
            if key not in metrics or not math.isclose(metrics[key], value, abs_tol=1e-6)
        }
        expect(not wrong, f"the MLflow run of {run.label} has metrics {wrong}, but drift.json says {expected}")
        artifacts = _artifact_names(mlflow_client, logged.info.run_id)
        absent = sorted({"drift.json", "drift_report.html"} - artifacts)
        expect(not absent, f"the MLflow run of {run.label} has no artifact {absent} (it has {sorted(artifacts)})")


def _subset(mapping: dict, like: dict) -> dict:
    """The keys of mapping that the contract names (extra keys are the candidate's to add)."""
    return {key: mapping.get(key) for key in like}


def _baseline_rows(workspace) -> int:
    """Rows of the daily logs inside the agreed window (file names are ISO dates, so they sort)."""
    start, end = (str(day) for day in BASELINE_DAYS)
    logs = sorted((workspace / "data" / "production").glob("*.csv"))
    return sum(sum(1 for _ in path.open()) - 1 for path in logs if start <= path.stem <= end)


def _logged_run(client, run):
    """The newest run of this grade whose current_path is the batch the monitor was given."""
    experiment = _mlflow(client.get_experiment_by_name, EXPERIMENT)
    expect(experiment is not None, f"no MLflow experiment named {EXPERIMENT!r} after running the monitor")
    found = _mlflow(
        client.search_runs,
        [experiment.experiment_id],
        filter_string=(
            f"params.current_path = '{run.current_path}' "
            f"and attributes.start_time >= {int((run.started_at - 5) * 1000)}"
        ),
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    expect(bool(found), f"no run in {EXPERIMENT!r} with param current_path={run.current_path!r} for {run.label}")
    return found[0]


def _artifact_names(client, run_id: str, path: str | None = None) -> set[str]:
    names = set()
    for entry in _mlflow(client.list_artifacts, run_id, path):
        names |= _artifact_names(client, run_id, entry.path) if entry.is_dir else {entry.path.rsplit("/", 1)[-1]}
    return names


def _mlflow(call, *args, **kwargs):
    """A query to the tracking server; when the server fails, the platform failed, not the candidate."""
    try:
        return call(*args, **kwargs)
    except Exception as exc:
        raise InfraError(f"MLflow query {call.__name__} failed: {exc}") from exc
