"""What a submission claims, checked against what the reviewer can recompute.

Nothing the candidate packed is trusted for grading: the lab, checks and data come
from the reviewer's catalog and the seed. The candidate's claims (hashes, their last
grade, timestamps) are compared with the facts and every mismatch becomes a flag for
a human — never an automatic rejection, since a changed data file may be an honest
mistake and only a person can tell.
"""

from __future__ import annotations

import difflib
import fnmatch
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from labkit.errors import BadInput
from labkit.workspace import Manifest, hash_tree, iter_files, text_lines

SUPPORTED_FORMATS = {1}
# Deeper than labkit ever writes (a grade summary is ~5 levels). A deeper document is refused
# at the door: Python's json recurses per level, and the record carries parts of it onwards.
MAX_JSON_DEPTH = 32
_CHECK_LIKE = ("conftest.py", "test_*.py", "*_test.py", "pytest.ini", "tox.ini", "setup.cfg")


@dataclass(frozen=True)
class Claims:
    """submission.json and integrity.json, validated."""

    lab_id: str
    seed: int
    record: dict[str, Any]
    integrity: dict[str, Any] | None
    workspace: Path


def read_claims(root: Path) -> Claims:
    """Validate the unpacked submission's manifest; every problem is reported at once."""
    problems: list[str] = []
    record = _json(root / "submission.json", problems, required=True)
    integrity = _json(root / "integrity.json", problems, required=False)
    if not (root / "workspace").is_dir():
        problems.append("workspace/: missing (the candidate's files)")
    else:  # the packed workspace's manifest is compared with the fresh one (verify): read it safely too
        packed_manifest = root / "workspace" / ".labkit" / "manifest.json"
        shallow: list[str] = []
        _json(packed_manifest, shallow, required=False)
        problems += [f"workspace/.labkit/{p}" for p in shallow if "nested" in p]
    lab_id, seed = "", -1
    if isinstance(record, dict):
        if record.get("format") not in SUPPORTED_FORMATS:
            problems.append(f"submission.json format: {record.get('format')!r} is not one this labkit reads "
                            f"({', '.join(map(str, SUPPORTED_FORMATS))})")
        lab_id = record.get("lab")
        if not isinstance(lab_id, str) or not lab_id:
            problems.append("submission.json lab: missing or not a string")
        seed = record.get("seed")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            problems.append(f"submission.json seed: missing or not a non-negative integer ({seed!r})")
    elif record is not None:
        problems.append("submission.json: must be a JSON object")
    if integrity is not None and not isinstance(integrity, dict):
        problems.append("integrity.json: must be a JSON object")
    if problems:
        raise BadInput("the submission's manifest is invalid:\n" + "\n".join(f"  - {p}" for p in problems))
    return Claims(lab_id, seed, record, integrity, root / "workspace")


def _json(path: Path, problems: list[str], *, required: bool) -> Any:
    if not path.is_file():
        if required:
            problems.append(f"{path.name}: missing (not made by `labkit submit`?)")
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except RecursionError:
        problems.append(f"{path.name}: nested too deeply to read (limit {MAX_JSON_DEPTH} levels)")
        return None
    except (ValueError, UnicodeDecodeError) as exc:
        problems.append(f"{path.name}: not valid JSON ({exc})")
        return None
    depth = json_depth(data)
    if depth > MAX_JSON_DEPTH:
        problems.append(f"{path.name}: nested {depth} levels deep (limit {MAX_JSON_DEPTH} levels)")
        return None
    return data


def json_depth(data: Any) -> int:
    """How deep lists and objects nest in `data`, counted without recursion."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


@dataclass
class Integrity:
    flags: list[str] = field(default_factory=list)  # for a human
    notes: list[str] = field(default_factory=list)  # informational


def verify(claims: Claims, *, fresh: Manifest, protected: list[str]) -> Integrity:
    """Compare the submission with a fresh render and provisioning of the same lab and seed."""
    out = Integrity()
    packed = hash_tree(claims.workspace)
    declared = (claims.integrity or {}).get("current")
    if claims.integrity is None:
        out.flags.append("no integrity.json: the archive was not made by `labkit submit`, or was repacked")
    elif isinstance(declared, dict):
        changed = sorted(p for p in set(packed) | set(declared) if packed.get(p) != declared.get(p))
        if changed:
            out.flags.append(f"files differ from the hashes recorded at submit (edited after submitting?): "
                             f"{_names(changed)}")
    for path in sorted(p for p in fresh.files if any(fnmatch.fnmatch(p, pat) for pat in protected)):
        if packed.get(path) != fresh.files[path]:
            state = "missing" if path not in packed else "changed"
            out.flags.append(f"protected file {state}: {path} (reviewed with the original)")
    packed_manifest = Manifest.read(claims.workspace)
    if packed_manifest is not None and (packed_manifest.lab_id, packed_manifest.seed) != (claims.lab_id, claims.seed):
        out.flags.append(f"the workspace was rendered for {packed_manifest.lab_id} seed {packed_manifest.seed}, "
                         f"but the submission says {claims.lab_id} seed {claims.seed}")
    grades = (claims.record.get("timestamps") or {}).get("grades") or []
    hidden_runs = sum(1 for g in grades if isinstance(g, dict) and g.get("hidden"))
    if hidden_runs:
        out.flags.append(f"the candidate ran the hidden checks {hidden_runs} time(s) before submitting "
                         "(`labkit grade --hidden`)")
    # Test files the starter already had are the lab's own (training-cicd ships unit tests).
    check_like = sorted(p for p in packed if p not in fresh.files
                        and any(fnmatch.fnmatch(Path(p).name, pat) for pat in _CHECK_LIKE))
    if check_like:
        out.flags.append(f"adds test or pytest files the starter did not have (grading uses the lab's own "
                         f"checks, never these): {_names(check_like)}")
    return out


def candidate_files(claims: Claims, protected: list[str]) -> tuple[list[str], list[str]]:
    """(files to overlay on the fresh workspace, protected files the candidate's copy of is ignored)."""
    overlay, ignored = [], []
    for path in iter_files(claims.workspace):
        rel = path.relative_to(claims.workspace).as_posix()
        (ignored if any(fnmatch.fnmatch(rel, pat) for pat in protected) else overlay).append(rel)
    return overlay, ignored


def diff_summary(starter: Path, candidate: Path, names: list[str]) -> dict[str, Any]:
    """Per changed text file: lines added and removed against the fresh starter."""
    files = []
    for name in sorted(set(names)):
        before, after = text_lines(starter / name), text_lines(candidate / name)
        if before == after:
            continue
        if before is None or after is None:
            files.append({"path": name, "added": None, "removed": None, "binary": True})
            continue
        body = list(difflib.unified_diff(before, after, n=0))[2:]  # past the ---/+++ header
        added = sum(1 for line in body if line.startswith("+"))
        removed = sum(1 for line in body if line.startswith("-"))
        files.append({"path": name, "added": added, "removed": removed, "binary": False,
                      "new": not (starter / name).exists()})
    return {"files": files, "added": sum(f["added"] or 0 for f in files),
            "removed": sum(f["removed"] or 0 for f in files)}


def time_spent_s(record: dict[str, Any]) -> float | None:
    """From the start of the lab (session, else render) to submit, as the candidate's labkit recorded it."""
    stamps = record.get("timestamps") or {}
    start = stamps.get("session_started_at") or stamps.get("rendered_at")
    try:
        return (datetime.fromisoformat(stamps["submitted_at"]) - datetime.fromisoformat(start)).total_seconds()
    except (KeyError, TypeError, ValueError):
        return None


def _names(paths: list[str], limit: int = 6) -> str:
    return ", ".join(paths[:limit]) + (f" (+{len(paths) - limit} more)" if len(paths) > limit else "")
