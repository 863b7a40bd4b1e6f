"""Daily drift check for the churn model.

Compares the average of each input feature in a batch of logged requests with recent
traffic, and raises an alert when too many features moved.

    python monitor.py --current data/production/2026-10-30.csv --out reports/2026-10-30
"""

import argparse
import json
import sys
from pathlib import Path

import pandas as pd
import yaml

# plan and region are text columns, averages don't apply to them.
FEATURES = ["tenure_months", "monthly_charges", "support_calls", "data_usage_gb", "balance_change", "age"]

MEAN_CHANGE_TOLERANCE = 0.10  # a feature drifted when its average moved by more than 10%
ALERT_SHARE = 0.3  # alert when 30% of the features drifted
REFERENCE_DAYS = 7


def main(argv=None):
    parser = argparse.ArgumentParser(description="Check a batch of inference logs for drift.")
    parser.add_argument("--current", required=True, help="CSV batch of logged requests to check")
    parser.add_argument("--out", required=True, help="folder to write drift.json to")
    parser.add_argument("--threshold", type=float, help="share of drifted features that raises an alert")
    parser.add_argument("--config", default="monitor.yaml")
    args = parser.parse_args(argv)

    with open(args.config) as f:
        config = yaml.safe_load(f)
    logs_dir = Path(args.config).parent / config["logs_dir"]

    # Compare with the most recent week of traffic.
    reference_files = sorted(logs_dir.glob("*.csv"))[-REFERENCE_DAYS:]
    reference = pd.concat([pd.read_csv(f) for f in reference_files])
    current = pd.read_csv(args.current)

    features = {}
    for column in FEATURES:
        ref_mean = reference[column].mean()
        cur_mean = current[column].mean()
        change = abs(cur_mean - ref_mean) / abs(ref_mean)
        features[column] = {
            "drifted": bool(change > MEAN_CHANGE_TOLERANCE),
            "score": round(float(change), 4),
            "method": "relative_mean_change",
        }

    drifted = [name for name, result in features.items() if result["drifted"]]
    share = len(drifted) / len(FEATURES)
    result = {
        "drift_detected": share >= ALERT_SHARE,
        "threshold": ALERT_SHARE,
        "share_drifted_features": share,
        "drifted_features": drifted,
        "reference": {"start": reference_files[0].stem, "end": reference_files[-1].stem, "rows": len(reference)},
        "current": {"path": args.current, "rows": len(current)},
        "features": features,
    }

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "drift.json").write_text(json.dumps(result, indent=2))

    print(f"drift_detected={result['drift_detected']} drifted_features={drifted}")
    return 3 if result["drift_detected"] else 0


if __name__ == "__main__":
    sys.exit(main())
