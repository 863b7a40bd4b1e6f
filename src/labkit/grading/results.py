"""The grade as data: what every report format renders and every caller inspects.

A check has exactly three outcomes. ``error`` is the platform's fault (a service
down, a timeout in the grader, the engine crashing) and is kept apart from the
candidate's ``fail`` so a reviewer never mistakes one for the other; an errored
check scores zero but is never reported as the candidate's failure.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any


class Status(str, enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"


class Visibility(str, enum.Enum):
    VISIBLE = "visible"
    HIDDEN = "hidden"


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome; ``check_id`` is stable across grades (``file::function``)."""

    check_id: str
    title: str
    points: float
    status: Status
    visibility: Visibility
    feedback: str = ""
    output: str = ""
    duration_s: float = 0.0

    @property
    def score(self) -> float:
        return self.points if self.status is Status.PASS else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        data["visibility"] = self.visibility.value
        data["score"] = self.score
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckResult:
        return cls(
            check_id=data["check_id"],
            title=data.get("title", data["check_id"]),
            points=float(data["points"]),
            status=Status(data["status"]),
            visibility=Visibility(data.get("visibility", "visible")),
            feedback=data.get("feedback", ""),
            output=data.get("output", ""),
            duration_s=float(data.get("duration_s", 0.0)),
        )


@dataclass
class GradeResult:
    """A whole grade. ``engine_error`` is set when the grader itself failed; the
    checks it could not run are then absent, and the grade is never complete."""

    lab_id: str
    seed: int
    hidden: bool
    checks: list[CheckResult] = field(default_factory=list)
    started_at: str = ""
    finished_at: str = ""
    engine_error: str = ""
    labkit_version: str = ""
    interrupted: bool = False  # stopped by Ctrl-C: the checks it had not finished are errors

    @property
    def score(self) -> float:
        return sum(c.score for c in self.checks)

    @property
    def max_score(self) -> float:
        return sum(c.points for c in self.checks)

    @property
    def percent(self) -> float:
        return 100.0 * self.score / self.max_score if self.max_score else 0.0

    def count(self, status: Status) -> int:
        return sum(1 for c in self.checks if c.status is status)

    @property
    def complete(self) -> bool:
        """Every check ran and none errored: only then is the score the candidate's."""
        return not self.engine_error and self.count(Status.ERROR) == 0 and bool(self.checks)

    @property
    def full_marks(self) -> bool:
        return self.complete and self.count(Status.FAIL) == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "lab": self.lab_id,
            "seed": self.seed,
            "hidden": self.hidden,
            "score": self.score,
            "max_score": self.max_score,
            "percent": round(self.percent, 2),
            "complete": self.complete,
            "counts": {s.value: self.count(s) for s in Status},
            "engine_error": self.engine_error,
            "interrupted": self.interrupted,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "labkit_version": self.labkit_version,
            "checks": [c.to_dict() for c in self.checks],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GradeResult:
        return cls(
            lab_id=data["lab"],
            seed=int(data["seed"]),
            hidden=bool(data["hidden"]),
            checks=[CheckResult.from_dict(c) for c in data.get("checks", [])],
            started_at=data.get("started_at", ""),
            finished_at=data.get("finished_at", ""),
            engine_error=data.get("engine_error", ""),
            labkit_version=data.get("labkit_version", ""),
            interrupted=bool(data.get("interrupted", False)),
        )
