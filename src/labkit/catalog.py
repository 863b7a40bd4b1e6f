"""Find labs: a folder holding a lab.yaml is a lab; a leading '_' hides it (templates)."""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path

from labkit.errors import NotFoundError
from labkit.spec import LabSpec, load_spec

LABS_PATH_ENV = "LABKIT_LABS_PATH"


@dataclass(frozen=True)
class Lab:
    spec: LabSpec
    path: Path

    @property
    def id(self) -> str:
        return self.spec.id


def labs_roots() -> list[Path]:
    """Where labs are looked for: $LABKIT_LABS_PATH (os.pathsep-separated), then the
    checkout's labs/ (editable installs), then the copy packaged in the wheel."""
    roots = [Path(p) for p in os.environ.get(LABS_PATH_ENV, "").split(os.pathsep) if p]
    package_dir = Path(__file__).resolve().parent
    roots += [package_dir.parents[1] / "labs", package_dir / "_labs"]
    return [r for r in roots if r.is_dir()]


def lab_dirs(roots: list[Path] | None = None) -> dict[str, Path]:
    """Lab folders by id (the folder name); an earlier root shadows a later one."""
    found: dict[str, Path] = {}
    for root in roots if roots is not None else labs_roots():
        for child in sorted(root.iterdir()):
            if child.name.startswith(("_", ".")) or not (child / "lab.yaml").is_file():
                continue
            found.setdefault(child.name, child)
    return found


def load_lab(lab_id: str, roots: list[Path] | None = None) -> Lab:
    dirs = lab_dirs(roots)
    if lab_id not in dirs:
        close = difflib.get_close_matches(lab_id, list(dirs), n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise NotFoundError(
            f"no lab named {lab_id!r}",
            hint=f"{hint}labs: {', '.join(sorted(dirs)) or '(none found)'} (see `labkit list`)",
        )
    return Lab(load_spec(dirs[lab_id]), dirs[lab_id])


def load_all(roots: list[Path] | None = None) -> tuple[list[Lab], dict[str, Exception]]:
    """Every lab; invalid ones are returned apart so one broken lab.yaml hides no other."""
    labs, broken = [], {}
    for lab_id, path in lab_dirs(roots).items():
        try:
            labs.append(Lab(load_spec(path), path))
        except Exception as exc:  # noqa: BLE001 - reported per lab by the caller
            broken[lab_id] = exc
    return labs, broken
