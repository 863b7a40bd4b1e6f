"""The commits the grader pushes through the candidate's pipeline, generated from the seed.

Each change edits a clean checkout the way a teammate's commit would: a week of new
shipments, a work-in-progress test that fails, a data drop that breaks the schema, an
upstream bug that silently ruins the strongest feature.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from support import data

TRAIN_CSV = Path("data/train.csv")


@dataclass(frozen=True)
class Change:
    name: str
    message: str  # the commit message
    detail: str  # what the change does, for feedback
    apply: Callable[[Path], None]


def unchanged() -> Change:
    return Change("unchanged", "", "the repository as it is", lambda repo: None)


def good(shipments: data.Shipments) -> Change:
    def apply(repo: Path) -> None:
        text = (repo / TRAIN_CSV).read_text()
        rows = data.to_csv(data.new_rows(shipments)).split("\n", 1)[1]
        (repo / TRAIN_CSV).write_text(text + ("" if text.endswith("\n") else "\n") + rows)

    return Change("good", "Add the shipments of week 47", f"{data.NEW_ROWS} new, healthy shipments appended to data/train.csv", apply)


def failing_test() -> Change:
    def apply(repo: Path) -> None:
        (repo / "tests").mkdir(exist_ok=True)
        (repo / "tests" / "test_weekly_report.py").write_text(FAILING_TEST)

    return Change("failing-test", "WIP: weekly lateness report", "a new unit test in tests/ that fails", apply)


FAILING_TEST = '''\
import pandas as pd


def share_late(frame: pd.DataFrame) -> float:
    return float(frame["late"].mean())


def test_share_late_is_a_percentage():
    # work in progress: the report wants percent, share_late still returns a fraction
    assert share_late(pd.DataFrame({"late": [0, 1, 1, 0]})) == 50.0
'''


def _violations(rng: np.random.Generator) -> dict[str, list[tuple[str, Callable[[pd.DataFrame], pd.DataFrame]]]]:
    """Ways a data drop breaks data/schema.yaml, by kind: the columns, the values, the table."""
    def rows(frame: pd.DataFrame, share: float) -> np.ndarray:
        return rng.choice(len(frame), max(3, int(share * len(frame))), replace=False)

    def unknown_carrier(frame):
        frame.loc[frame.index[rows(frame, 0.03)], "carrier"] = "drone"
        return frame

    def negative_distance(frame):
        index = frame.index[rows(frame, 0.02)]
        frame.loc[index, "distance_km"] = -frame.loc[index, "distance_km"]
        return frame

    def renamed_column(frame):
        return frame.rename(columns={"weekend": "is_weekend"})

    def missing_column(frame):
        return frame.drop(columns=["parcels"])

    def missing_distance(frame):
        frame["distance_km"] = frame["distance_km"].astype(float)
        frame.loc[frame.index[rows(frame, 0.03)], "distance_km"] = np.nan
        return frame

    def label_out_of_set(frame):
        frame.loc[frame.index[rows(frame, 0.02)], data.LABEL] = 2
        return frame

    def hour_out_of_range(frame):
        frame.loc[frame.index[rows(frame, 0.02)], "pickup_hour"] = 24
        return frame

    def parcels_not_integers(frame):
        frame["parcels"] = frame["parcels"].astype(object)
        frame.loc[frame.index[rows(frame, 0.02)], "parcels"] = "two"
        return frame

    def duplicated_ids(frame):
        index = frame.index[rows(frame, 0.02)]
        return pd.concat([frame, frame.loc[index]], ignore_index=True)

    def truncated_export(frame):
        return frame.iloc[: int(rng.integers(120, 480))].copy()  # fewer than the schema's min_rows

    return {
        "columns": [
            ("the column weekend renamed to is_weekend", renamed_column),
            ("the column parcels missing", missing_column),
        ],
        "values": [
            ("a carrier that is not in the schema ('drone')", unknown_carrier),
            ("negative distances", negative_distance),
            ("missing values in distance_km, which may not be missing", missing_distance),
            ("label values outside {0, 1}", label_out_of_set),
            ("pickup hours of 24", hour_out_of_range),
            ("parcels that are not integers ('two')", parcels_not_integers),
        ],
        "table": [
            ("duplicated shipment ids (shipment_id must be unique)", duplicated_ids),
            ("a truncated export, fewer rows than the schema's min_rows", truncated_export),
        ],
    }


def schema_violations(shipments: data.Shipments) -> list[Change]:
    """One data drop per kind of break (columns, values, table), each drawn from the seed:
    a validator that checks only some kinds lets one of them through."""
    rng = data.rng_for(shipments.draws, data.STREAM_VIOLATION)
    out = []
    for number, (kind, choices) in enumerate(_violations(rng).items()):
        choice = int(rng.integers(len(choices)))
        detail = choices[choice][0]

        def apply(repo: Path, kind=kind, choice=choice, number=number) -> None:
            # Its own random stream: the file does not depend on which change was played first.
            own = np.random.default_rng([shipments.draws, data.STREAM_VIOLATION, number])
            violate = _violations(own)[kind][choice][1]
            frame = pd.concat([_read(repo), data.new_rows(shipments)], ignore_index=True)
            (repo / TRAIN_CSV).write_text(data.to_csv(violate(frame)))

        out.append(Change(f"bad-schema-{kind}", "Add the shipments of week 47 (new export)",
                          f"data/train.csv with {detail}", apply))
    return out


def regression(shipments: data.Shipments) -> Change:
    """A join bug upstream: every shipment gets another shipment's distance. The file still
    matches the schema (same values, same distribution) but the strongest signal is gone."""

    def apply(repo: Path) -> None:
        frame = pd.concat([_read(repo), data.new_rows(shipments)], ignore_index=True)
        rng = data.rng_for(shipments.draws, data.STREAM_REGRESSION)
        frame[data.KEY_FEATURE] = rng.permutation(frame[data.KEY_FEATURE].to_numpy())
        (repo / TRAIN_CSV).write_text(data.to_csv(frame))

    return Change(
        "regressed", "Add the shipments of week 47 (distances from the new routing service)",
        f"data/train.csv whose {data.KEY_FEATURE} no longer belongs to its shipment (schema-valid, but the model is worse)",
        apply,
    )


def _read(repo: Path) -> pd.DataFrame:
    return pd.read_csv(io.StringIO((repo / TRAIN_CSV).read_text()))
