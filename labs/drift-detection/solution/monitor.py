"""Drift monitor for the churn classifier's inference logs.

Compares one batch of logged requests with the agreed healthy baseline (the reference
window in monitor.yaml) and answers: did the inputs drift, and did the model's
answers drift? Writes drift.json (the verdict, for machines) and drift_report.html
(the Evidently report, for the human on call), logs both to MLflow, and exits
0 (no alert) or 3 (drift alert).

    python monitor.py --current data/production/2026-10-30.csv --out reports/2026-10-30
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import pandas as pd
import yaml

# evidently and mlflow are imported where they are used: together they take about ten
# seconds to import, and a mistyped argument or config should not wait for that.

NUMERIC_FEATURES = ["tenure_months", "monthly_charges", "support_calls", "data_usage_gb", "balance_change", "age"]
CATEGORICAL_FEATURES = ["plan", "region"]
FEATURES = NUMERIC_FEATURES + CATEGORICAL_FEATURES
# The model's answers: the class it returned and its churn probability.
PREDICTION_COLUMNS = {"prediction": "categorical", "score": "numerical"}

# Distance-based tests: on thousands of rows, p-value tests flag differences too small
# to matter. Wasserstein (in reference standard deviations) for numbers, Jensen-Shannon
# for categories; 0.1 is Evidently's default threshold for both.
NUMERIC_METHOD = "wasserstein"
CATEGORICAL_METHOD = "jensenshannon"
COLUMN_DRIFT_THRESHOLD = 0.1
# A broken upstream feed shows up as missing values, which distribution tests drop
# silently: a rise of the missing share by this much (absolute) is drift by itself.
MISSING_SHARE_RISE = 0.10

EXIT_OK = 0
EXIT_DRIFT = 3


@dataclass(frozen=True)
class Config:
    logs_dir: Path
    reference_start: date
    reference_end: date
    alert_threshold: float
    experiment: str


@dataclass(frozen=True)
class ColumnDrift:
    drifted: bool
    score: float
    method: str


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = load_config(args.config)
    threshold = config.alert_threshold if args.threshold is None else args.threshold

    reference = load_reference(config)
    current = pd.read_csv(args.current)
    snapshot, columns = detect_drift(reference, current)

    summary = summarize(config, threshold, reference, current, args.current, columns)
    args.out.mkdir(parents=True, exist_ok=True)
    json_path = args.out / "drift.json"
    html_path = args.out / "drift_report.html"
    json_path.write_text(json.dumps(summary, indent=2) + "\n")
    snapshot.save_html(str(html_path))
    log_to_mlflow(config.experiment, args.current, summary, [json_path, html_path])

    print(
        f"drift_detected={summary['drift_detected']} "
        f"drifted_features={summary['drifted_features']} prediction_drift={summary['prediction_drift']}"
    )
    return EXIT_DRIFT if summary["drift_detected"] else EXIT_OK


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--current", required=True, help="CSV batch of logged requests to check")
    parser.add_argument("--out", required=True, type=Path, help="folder for drift.json and drift_report.html")
    parser.add_argument("--threshold", type=float, help="alert when this share of features drifts (default: config)")
    parser.add_argument("--config", type=Path, default=Path("monitor.yaml"))
    return parser.parse_args(argv)


def load_config(path: Path) -> Config:
    """Read monitor.yaml; logs_dir is relative to the config file, not to the caller's cwd."""
    raw = yaml.safe_load(path.read_text())
    window = raw["reference_window"]
    return Config(
        logs_dir=(path.parent / raw["logs_dir"]).resolve(),
        reference_start=_as_date(window["start"]),
        reference_end=_as_date(window["end"]),
        alert_threshold=float(raw["alert_threshold"]),
        experiment=raw["experiment"],
    )


def load_reference(config: Config) -> pd.DataFrame:
    """The daily log files (named YYYY-MM-DD.csv) inside the configured reference window."""
    files = [
        path
        for path in sorted(config.logs_dir.glob("*.csv"))
        if config.reference_start <= _as_date(path.stem) <= config.reference_end
    ]
    if not files:
        raise SystemExit(
            f"no log files in {config.logs_dir} between {config.reference_start} and {config.reference_end}"
        )
    return pd.concat([pd.read_csv(path) for path in files], ignore_index=True)


def detect_drift(reference: pd.DataFrame, current: pd.DataFrame):
    """Run the Evidently report and read one verdict per feature and per prediction column.

    A column left without any value (a feed that stopped entirely) has no distribution to
    compare, and Evidently refuses it: it is drifted by definition, on its missing share.
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    empty = [
        column
        for column in FEATURES + list(PREDICTION_COLUMNS)
        if current[column].isna().all() or reference[column].isna().all()
    ]
    numeric = NUMERIC_FEATURES + [c for c, kind in PREDICTION_COLUMNS.items() if kind == "numerical"]
    categorical = CATEGORICAL_FEATURES + [c for c, kind in PREDICTION_COLUMNS.items() if kind == "categorical"]
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    methods = {"numerical": NUMERIC_METHOD, "categorical": CATEGORICAL_METHOD}
    report = Report(
        [
            DataDriftPreset(
                columns=[name for name in FEATURES if name not in empty],
                num_method=NUMERIC_METHOD,
                cat_method=CATEGORICAL_METHOD,
                threshold=COLUMN_DRIFT_THRESHOLD,
            ),
            *[
                ValueDrift(column=column, method=methods[kind], threshold=COLUMN_DRIFT_THRESHOLD)
                for column, kind in PREDICTION_COLUMNS.items()
                if column not in empty
            ],
        ],
        include_tests=True,
    )
    snapshot = report.run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    verdicts = column_verdicts(snapshot.dict())
    for column in empty:
        rise = float(current[column].isna().mean() - reference[column].isna().mean())
        verdicts[column] = ColumnDrift(drifted=True, score=abs(rise), method="missing_share")
    return snapshot, verdicts


def column_verdicts(result: dict) -> dict[str, ColumnDrift]:
    """Per column: Evidently's drift test status, with the score and method behind it."""
    scores = {metric["id"]: metric["value"] for metric in result["metrics"]}
    verdicts = {}
    for test in result["tests"]:
        config = test["metric_config"]
        params = config["params"]
        if params["type"] != "evidently:metric_v2:ValueDrift":
            continue
        verdicts[params["column"]] = ColumnDrift(
            drifted=test["status"] == "FAIL",
            score=float(scores[config["metric_id"]]),
            method=params["method"],
        )
    return verdicts


def summarize(
    config: Config,
    threshold: float,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    current_path: str,
    columns: dict[str, ColumnDrift],
) -> dict:
    features = {}
    for name in FEATURES:
        missing_share = float(current[name].isna().mean())
        missing_rise = missing_share - float(reference[name].isna().mean())
        features[name] = {
            "drifted": columns[name].drifted or missing_rise >= MISSING_SHARE_RISE,
            "score": columns[name].score,
            "method": columns[name].method,
            "missing_share": round(missing_share, 4),
        }
    drifted = [name for name in FEATURES if features[name]["drifted"]]
    share = len(drifted) / len(FEATURES)
    prediction_drift = any(columns[column].drifted for column in PREDICTION_COLUMNS)
    return {
        "drift_detected": share >= threshold or prediction_drift,
        "threshold": threshold,
        "share_drifted_features": share,
        "drifted_features": drifted,
        "prediction_drift": prediction_drift,
        "reference": {
            "start": config.reference_start.isoformat(),
            "end": config.reference_end.isoformat(),
            "rows": len(reference),
        },
        "current": {"path": current_path, "rows": len(current)},
        "features": features,
        "predictions": {column: asdict(columns[column]) for column in PREDICTION_COLUMNS},
    }


def log_to_mlflow(experiment: str, current_path: str, summary: dict, artifacts: list[Path]) -> None:
    """One run per invocation, so the drift history of the model lives next to its training runs.

    The tracking server comes from $MLFLOW_TRACKING_URI."""
    import mlflow

    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=f"drift {Path(current_path).name}"):
        mlflow.log_params(
            {
                "current_path": current_path,
                "threshold": summary["threshold"],
                "reference_start": summary["reference"]["start"],
                "reference_end": summary["reference"]["end"],
            }
        )
        mlflow.log_metrics(
            {
                "share_drifted_features": summary["share_drifted_features"],
                "dataset_drift": int(summary["drift_detected"]),
                "prediction_drift": int(summary["prediction_drift"]),
                "n_drifted_features": len(summary["drifted_features"]),
                **{f"drift_score.{name}": f["score"] for name, f in summary["features"].items()},
            }
        )
        for path in artifacts:
            mlflow.log_artifact(str(path))


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


if __name__ == "__main__":
    sys.exit(main())
