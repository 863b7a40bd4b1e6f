"""pipeline.yaml, and the files by which stages hand results to the next one."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

BUILD = Path("build")
CHAMPION_ALIAS = "champion"


class StageFailed(Exception):
    """The stage ran and said no (a test failed, the data broke its schema, the gate closed)."""


@dataclass(frozen=True)
class Config:
    model_name: str
    experiment: str
    train_path: Path
    holdout_path: Path
    schema_path: Path
    gate_metric: str
    max_drop: float
    seed: int


def load_config(path: str | Path) -> Config:
    raw = yaml.safe_load(Path(path).read_text())
    return Config(
        model_name=raw["model_name"],
        experiment=raw["experiment"],
        train_path=Path(raw["data"]["train"]),
        holdout_path=Path(raw["data"]["holdout"]),
        schema_path=Path(raw["data"]["schema"]),
        gate_metric=raw["gate"]["metric"],
        max_drop=float(raw["gate"]["max_drop"]),
        seed=int(raw["training"]["seed"]),
    )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def git_sha() -> str:
    """The commit being built: GitHub's GITHUB_SHA in CI, else the checkout's HEAD."""
    if os.environ.get("GITHUB_SHA"):
        return os.environ["GITHUB_SHA"]
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as exc:
        raise StageFailed("cannot tell which commit is being built (no GITHUB_SHA, not a git checkout)") from exc


def write_result(name: str, payload: dict[str, Any]) -> None:
    BUILD.mkdir(exist_ok=True)
    (BUILD / f"{name}.json").write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def read_result(name: str, produced_by: str) -> dict[str, Any]:
    path = BUILD / f"{name}.json"
    if not path.is_file():
        raise StageFailed(f"{path} is missing: run `python -m pipeline {produced_by}` first")
    return json.loads(path.read_text())
