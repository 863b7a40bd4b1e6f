"""The monitor's output contract from BRIEF.md, as functions that list what is wrong.

Shared by the visible and the hidden checks so that both judge drift.json and the HTML
report by the same rules. Each problem is phrased as what a reader of the files would
notice, never as a hint at the fix.
"""

from __future__ import annotations

import json
import math
import re

from support.data import FEATURES

_NUMBER = (int, float)
TOP_LEVEL = {
    "drift_detected": bool,
    "threshold": _NUMBER,
    "share_drifted_features": _NUMBER,
    "drifted_features": list,
    "prediction_drift": bool,
    "reference": dict,
    "current": dict,
    "features": dict,
}
PER_FEATURE = {"drifted": bool, "score": _NUMBER, "method": str, "missing_share": _NUMBER}
REFERENCE = {"start": str, "end": str, "rows": int}
MISSING_SHARE_TOLERANCE = 0.001  # a share rounded to three places is exact enough
CURRENT = {"path": str, "rows": int}


def drift_json_problems(report: object) -> list[str]:
    """Everything in a parsed drift.json that breaks the contract (empty when it holds)."""
    if not isinstance(report, dict):
        return [f"drift.json holds a {type(report).__name__}, not an object"]
    problems = _typed_keys(report, TOP_LEVEL, "drift.json")
    if problems:
        return problems
    problems += _typed_keys(report["reference"], REFERENCE, "reference")
    problems += _typed_keys(report["current"], CURRENT, "current")

    features = report["features"]
    absent = [name for name in FEATURES if name not in features]
    unknown = sorted(set(features) - set(FEATURES))
    if absent:
        problems.append(f"features has no entry for {absent}")
    if unknown:
        problems.append(f"features lists columns that are not model features: {unknown}")
    for name in FEATURES:
        if name in features:
            entry = features[name]
            problems += (
                _typed_keys(entry, PER_FEATURE, f"features.{name}")
                if isinstance(entry, dict)
                else [f"features.{name} is not an object"]
            )
    if problems:
        return problems

    drifted = report["drifted_features"]
    flagged = [name for name in FEATURES if features[name]["drifted"]]
    if sorted(map(str, drifted)) != sorted(flagged) or len(set(drifted)) != len(drifted):
        problems.append(f"drifted_features {drifted} disagrees with the features marked drifted {flagged}")
    share = report["share_drifted_features"]
    if not math.isclose(share, len(flagged) / len(FEATURES), abs_tol=1e-6):
        problems.append(
            f"share_drifted_features is {share}, but {len(flagged)} of {len(FEATURES)} features are marked drifted"
        )
    expected_alert = share >= report["threshold"] or report["prediction_drift"]
    if report["drift_detected"] != expected_alert:
        problems.append(
            f"drift_detected is {report['drift_detected']} with share_drifted_features={share}, "
            f"threshold={report['threshold']} and prediction_drift={report['prediction_drift']}"
        )
    return problems


def missing_share_problems(report: dict, batch, names=FEATURES) -> list[str]:
    """features.<name>.missing_share against the batch (a DataFrame) the monitor was given:
    the share of the feature's values left empty, a fraction of 1."""
    problems = []
    features = report.get("features") if isinstance(report, dict) else None
    for name in names:
        actual = float(batch[name].isna().mean())
        entry = features.get(name) if isinstance(features, dict) else None
        reported = entry.get("missing_share") if isinstance(entry, dict) else None
        number = isinstance(reported, _NUMBER) and not isinstance(reported, bool)
        if not number or not abs(reported - actual) <= MISSING_SHARE_TOLERANCE:
            problems.append(f"features.{name}.missing_share is {json.dumps(reported)}; {actual:.4f} of its values are missing")
    return problems


def html_report_problems(html: str) -> list[str]:
    """Whether a file is a rendered Evidently report that covers the model's features.

    Evidently embeds the report as a JSON payload (``var metric_<id> = {...}``) that its
    dashboard script draws; a report that parses has that payload, with widgets in it.
    """
    start = html.find("var metric_")
    brace = html.find("{", start)
    if start < 0 or brace < 0 or "drawDashboard" not in html:
        return ["drift_report.html is not an Evidently report (no embedded report payload)"]
    try:
        payload, _ = json.JSONDecoder().raw_decode(html, brace)
    except ValueError:
        return ["drift_report.html has an Evidently report payload that is not valid JSON"]
    if not isinstance(payload, dict) or not payload.get("widgets"):
        return ["drift_report.html is an empty Evidently report (no widgets)"]
    text = json.dumps(payload)
    uncovered = [name for name in FEATURES if not re.search(rf"\b{name}\b", text)]
    if uncovered:
        return [f"drift_report.html does not mention the features {uncovered}"]
    return []


def _typed_keys(mapping: dict, spec: dict, where: str) -> list[str]:
    problems = []
    for key, types in spec.items():
        if key not in mapping:
            problems.append(f"{where} has no {key!r}")
            continue
        value = mapping[key]
        numeric_bool = isinstance(value, bool) and types is not bool
        if numeric_bool or not isinstance(value, types):
            problems.append(f"{where}.{key} is {json.dumps(value)[:40]}, not {_type_name(types)}")
    return problems


def _type_name(types) -> str:
    return "a number" if types == _NUMBER else {bool: "true/false", list: "a list", dict: "an object"}.get(
        types, types.__name__
    )
