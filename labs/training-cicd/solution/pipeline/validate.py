"""Data validation: a data file against data/schema.yaml, every problem at once."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

_KINDS = {"int", "float", "string"}


def schema_problems(data_path: Path, schema_path: Path) -> list[str]:
    schema = yaml.safe_load(schema_path.read_text())
    columns: dict = schema["columns"]
    frame = pd.read_csv(data_path, dtype=str, keep_default_na=False)
    problems = []
    missing = [c for c in columns if c not in frame.columns]
    unexpected = [c for c in frame.columns if c not in columns]
    if missing:
        problems.append(f"missing columns: {missing}")
    if unexpected:
        problems.append(f"columns not in the schema: {unexpected}")
    if len(frame) < schema.get("min_rows", 0):
        problems.append(f"{len(frame)} rows, fewer than the {schema['min_rows']} required")
    for name, rule in columns.items():
        if name in frame.columns:
            problems += [f"{name}: {p}" for p in _column_problems(frame[name], rule)]
    return problems


def _column_problems(raw: pd.Series, rule: dict) -> list[str]:
    kind = rule["type"]
    if kind not in _KINDS:
        return [f"unknown type {kind!r} in the schema"]
    problems = []
    empty = raw.str.strip() == ""
    if empty.any() and not rule.get("nullable", False):
        problems.append(f"{int(empty.sum())} missing values (not nullable)")
    present = raw[~empty]
    values: pd.Series = present
    if kind in ("int", "float"):
        values = pd.to_numeric(present, errors="coerce")
        bad = present[values.isna()]
        if kind == "int":
            bad = pd.concat([bad, present[values.notna() & (values % 1 != 0)]])
        if len(bad):
            problems.append(f"{len(bad)} values that are not {kind}s, e.g. {bad.iloc[0]!r}")
        values = values.dropna()
        if "min" in rule and (values < rule["min"]).any():
            problems.append(f"values below {rule['min']}, e.g. {values[values < rule['min']].iloc[0]}")
        if "max" in rule and (values > rule["max"]).any():
            problems.append(f"values above {rule['max']}, e.g. {values[values > rule['max']].iloc[0]}")
    if "allowed" in rule:
        allowed = {str(a) for a in rule["allowed"]}
        shown = values.map(lambda v: str(int(v)) if kind == "int" else str(v))
        outside = sorted(set(shown) - allowed)
        if outside:
            problems.append(f"values outside {sorted(allowed)}: {outside[:5]}")
    if rule.get("unique") and present.duplicated().any():
        problems.append(f"{int(present.duplicated().sum())} duplicated values (must be unique)")
    return problems
