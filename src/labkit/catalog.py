"""Find labs: a folder holding a lab.yaml is a lab; a leading '_' hides it (templates)."""

from __future__ import annotations

import difflib
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit.errors import LabSourcesMissing, NotFoundError, UserError
from labkit.paths import labkit_home

if TYPE_CHECKING:
    from labkit.spec import LabSpec

LABS_PATH_ENV = "LABKIT_LABS_PATH"
# What only the full lab sources hold: the published wheel leaves these out of every lab
# (pyproject.toml's exclude; tests/unit/test_lab_sources.py holds the two together), and a
# review hides them from candidate code.
SOURCES_ONLY = ("checks/hidden", "solution", "wrong", "fair", "mutants")


@dataclass(frozen=True)
class Lab:
    spec: LabSpec
    path: Path

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def has_hidden_checks(self) -> bool:
        return has_hidden_checks(self.path)

    @property
    def has_solution(self) -> bool:
        return (self.path / "solution").is_dir()

    @property
    def is_candidate_copy(self) -> bool:
        """What the published wheel ships: the lab without its hidden checks AND its solution
        (both are stripped together). A lab lacking only one never had it."""
        return not self.has_hidden_checks and not self.has_solution


def has_hidden_checks(lab_dir: Path) -> bool:
    hidden = lab_dir / "checks" / "hidden"
    return hidden.is_dir() and any(hidden.rglob("test_*.py"))


def candidate_copy(lab_dir: Path) -> list[Path]:
    """The lab folder's entries that make its candidate copy (all but SOURCES_ONLY), as few
    paths as cover them: ``lab.yaml``, ``BRIEF.md``, ``starter``, ``checks/visible``..."""
    found: list[Path] = []

    def walk(folder: Path, rel: str) -> None:
        for child in sorted(folder.iterdir()):
            name = rel + child.name
            if name in SOURCES_ONLY:
                continue
            if child.is_dir() and not child.is_symlink() and any(s.startswith(name + "/") for s in SOURCES_ONLY):
                walk(child, name + "/")
            else:
                found.append(child)

    walk(lab_dir, "")
    return found


def require_sources(lab: Lab, *, hidden_checks: bool = False, solution: bool = False, command: str) -> None:
    """Hiring teams' and authors' commands need the full lab sources; the published wheel
    carries the candidate copy of each lab (no hidden checks, solution or wrong fixes)."""
    missing = [what for what, needed, present in (("hidden checks", hidden_checks, lab.has_hidden_checks),
                                                 ("solution", solution, lab.has_solution)) if needed and not present]
    if missing and lab.is_candidate_copy:
        raise LabSourcesMissing(
            f"`{command}` needs the {' and '.join(missing)} of {lab.id}, and the copy labkit found "
            f"({lab.path}) has none: it is the candidate copy the labkit package carries",
            hint=full_sources_hint(),
        )
    if missing:  # full sources that simply lack them (a test fixture lab, a lab without hidden checks)
        raise NotFoundError(
            f"`{command}` needs the {' and '.join(missing)} of {lab.id}, and the lab labkit found ({lab.path}) "
            f"has none: it is not a candidate copy (it has its {'solution' if lab.has_solution else 'hidden checks'}), "
            f"so this lab was written without them and other lab sources would not change that",
            hint="--visible-only reviews (and `labkit grade` without --hidden grades) with its visible checks"
            if hidden_checks else "a lab needs a solution/ folder for this",
        )


def full_sources_hint() -> str:
    return (f"point labkit at the full lab sources (the labs/ folder of a labkit checkout): "
            f"`labkit COMMAND --labs DIR ...` or {LABS_PATH_ENV}=DIR")


def labs_roots() -> list[Path]:
    """Where labs are looked for: $LABKIT_LABS_PATH (os.pathsep-separated), then the
    checkout's labs/ (editable installs), then the copy packaged in the wheel."""
    roots = [Path(p) for p in os.environ.get(LABS_PATH_ENV, "").split(os.pathsep) if p]
    return [r for r in roots + package_labs_roots() if r.is_dir()]


def package_labs_roots() -> list[Path]:
    """An editable install (CI, tests, authors) runs from src/labkit and finds the checkout's
    labs/: the full sources. An installed wheel finds only labkit/_labs: candidate copies."""
    package_dir = Path(__file__).resolve().parent
    return [package_dir.parents[1] / "labs", package_dir / "_labs"]


def use_labs_folder(folder: Path) -> None:
    """`--labs DIR`: look in DIR first, for this process and the ones it starts (graders, reviews)."""
    if not folder.is_dir():
        raise NotFoundError(f"--labs {folder}: no such folder", hint=full_sources_hint())
    if (folder / "lab.yaml").is_file():
        raise UserError(f"--labs {folder} is one lab; give the folder that holds the labs",
                        hint=f"--labs {folder.resolve().parent}")
    rest = os.environ.get(LABS_PATH_ENV, "")
    os.environ[LABS_PATH_ENV] = os.pathsep.join(p for p in (str(folder.resolve()), rest) if p)


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
    from labkit.spec import load_spec

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
    from labkit.spec import load_spec

    labs, broken = [], {}
    for lab_id, path in lab_dirs(roots).items():
        try:
            labs.append(Lab(load_spec(path), path))
        except Exception as exc:  # noqa: BLE001 - reported per lab by the caller
            broken[lab_id] = exc
    return labs, broken


SUMMARY_FIELDS = ("id", "title", "minutes", "difficulty", "skills", "runtimes", "services")


def summaries(roots: list[Path] | None = None) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """What `labkit list` shows, from a cache of validated specs keyed by a fingerprint
    of each lab folder. pydantic alone costs ~0.2 s to import, so the catalog answers
    fast and validation runs only for labs that changed (or are broken)."""
    cache_path = labkit_home() / "cache" / "catalog.json"
    try:
        cache = json.loads(cache_path.read_text())
    except (OSError, ValueError):
        cache = {}
    fresh: dict[str, Any] = {}
    found, invalid = [], {}
    for lab_id, path in lab_dirs(roots).items():
        key = f"{path.resolve()}:{_fingerprint(path)}"
        summary = cache.get(key)
        if summary is None:
            from labkit.spec import load_spec

            try:
                spec = load_spec(path)
            except Exception as exc:  # noqa: BLE001 - reported per lab by the caller
                invalid[lab_id] = str(exc)
                continue
            summary = {name: getattr(spec, name) for name in SUMMARY_FIELDS}
        fresh[key] = summary
        found.append(summary)
    if fresh != cache:
        try:
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            cache_path.write_text(json.dumps(fresh))
        except OSError:
            pass  # a read-only home only costs speed
    return found, invalid


def _fingerprint(lab_dir: Path) -> str:
    """lab.yaml's bytes and the folder's names two levels deep: all that validation reads."""
    digest = hashlib.sha256((lab_dir / "lab.yaml").read_bytes())
    for entry in sorted(os.scandir(lab_dir), key=lambda e: e.name):
        digest.update(entry.name.encode() + b"\0")
        if entry.is_dir():
            digest.update("\0".join(sorted(os.listdir(entry.path))).encode() + b"\1")
    return digest.hexdigest()
