"""lab.yaml: the versioned description of a lab, validated at the boundary.

Every problem is reported at once with its key path (``services[1]: ...``), so a
lab author fixes a file in one pass instead of one error per run.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from labkit.errors import SpecError

API_VERSION = "labkit/v1"
LAB_ID = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
# What every copy of a lab has. The solution, hidden checks and wrong fixes are in the full
# sources only (the published wheel leaves them out); the commands that need them say so
# (catalog.require_sources), and tests/unit/test_lab_sources.py holds this repository's labs to them.
REQUIRED_PATHS = ("BRIEF.md", "starter", "checks")

Runtime = Literal["local", "kind"]
Service = Literal["mlflow", "prefect"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Variant(_Strict):
    """A seeded variant: an overlay folder rendered over the starter."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    overlay: str
    description: str = ""


class WorkspaceSpec(_Strict):
    # Globs of files the candidate is told not to change; a submission that changed
    # them is flagged for a human (never silently rejected).
    protected: list[str] = Field(default_factory=list)


class GradingSpec(_Strict):
    timeout_s: int = Field(default=900, gt=0, le=7200)
    # The untouched starter must score at most this share of points (lab self-validation).
    max_starter_percent: float = Field(default=20, ge=0, le=100)
    # Modules the warm interpreter imports once per grade, so the candidate's `python FILE`
    # and `python -m MODULE` commands start as forks of it (labkit.warm); none: all cold.
    warm_imports: list[str] = Field(default_factory=list)
    # Self-validation may grade this lab's wrong/ and fair/ corpus in this many parallel
    # lanes, each a running lab of its own: for labs whose grades mostly wait on the clock.
    verify_lanes: int = Field(default=1, ge=1, le=4)


class LabSpec(_Strict):
    api_version: Literal["labkit/v1"] = Field(alias="apiVersion")
    id: str
    title: str = Field(min_length=3)
    summary: str = ""
    minutes: int = Field(gt=0, le=24 * 60)
    difficulty: Literal["easy", "medium", "hard"] = "medium"
    skills: list[str] = Field(default_factory=list)
    runtimes: list[Runtime] = Field(min_length=1)
    services: list[Service] = Field(default_factory=list)
    provision: str | None = Field(default=None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    variants: list[Variant] = Field(default_factory=list)
    workspace: WorkspaceSpec = Field(default_factory=WorkspaceSpec)
    grading: GradingSpec = Field(default_factory=GradingSpec)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("id")
    @classmethod
    def _lab_id(cls, value: str) -> str:
        if not LAB_ID.match(value):
            raise ValueError("must be lowercase words joined by '-', e.g. drift-detection")
        return value

    @field_validator("runtimes", "services")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("lists an entry twice")
        return value


def load_spec(lab_dir: Path) -> LabSpec:
    """Parse and validate ``lab_dir/lab.yaml`` together with the folder it describes."""
    source = lab_dir / "lab.yaml"
    raw, unreadable = read_yaml_mapping(source)
    if unreadable:
        raise SpecError(str(source), unreadable)

    problems: list[str] = []
    spec: LabSpec | None = None
    try:
        spec = LabSpec.model_validate(raw)
    except ValidationError as exc:
        problems.extend(flatten_errors(exc))
    problems.extend(_folder_problems(lab_dir, raw, spec))
    if problems:
        raise SpecError(str(source), problems)
    assert spec is not None
    return spec


def read_yaml_mapping(source: Path) -> tuple[dict, list[str]]:
    """A YAML file's top-level mapping, or the one problem that stops it being read
    (unreadable, not YAML, not a mapping). Shared by every labkit file format."""
    try:
        raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    except OSError as exc:
        return {}, [f"cannot be read: {exc.strerror}"]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        return {}, [f"{where}not valid YAML ({getattr(exc, 'problem', exc)})"]
    if not isinstance(raw, dict):
        return {}, ["top level: must be a mapping of keys to values"]
    return raw, []


def flatten_errors(exc: ValidationError) -> list[str]:
    """pydantic's errors as ``key.path[0]: message`` lines, one per problem."""
    out = []
    for err in exc.errors():
        path = ""
        for part in err["loc"]:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key (misspelt?)"
        out.append(f"{path or 'top level'}: {message}")
    return out


def _folder_problems(lab_dir: Path, raw: dict, spec: LabSpec | None) -> list[str]:
    problems = [f"{name}: missing from the lab folder" for name in REQUIRED_PATHS if not (lab_dir / name).exists()]
    lab_id = raw.get("id")
    if isinstance(lab_id, str) and lab_id != lab_dir.name:
        problems.append(f"id: {lab_id!r} does not match the folder name {lab_dir.name!r}")
    if spec is not None:
        for i, variant in enumerate(spec.variants):
            if not (lab_dir / variant.overlay).is_dir():
                problems.append(f"variants[{i}].overlay: folder {variant.overlay!r} does not exist")
        if spec.provision:
            module = spec.provision.split(":")[0].replace(".", "/")
            if not ((lab_dir / f"{module}.py").is_file() or (lab_dir / module / "__init__.py").is_file()):
                problems.append(f"provision: module {module!r} not found in the lab folder")
    return problems
