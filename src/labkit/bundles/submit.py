"""`labkit submit`: pack the workspace with the evidence a reviewer needs to trust it.

The archive holds the workspace as the candidate left it, a diff against the
starter, the last visible grade, an integrity manifest (hashes of what labkit
rendered and of every protected file now) and timestamps. Integrity findings are
flags for a human; nothing is rejected here.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib.metadata
import io
import json
import platform
import sys
import tarfile
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from labkit import __version__
from labkit.catalog import load_lab
from labkit.destinations import check_file_destination
from labkit.errors import NotFoundError
from labkit.session import load_session
from labkit.ui import UI
from labkit.workspace import (
    META_DIR,
    Manifest,
    changes_since_render,
    enclosing_workspace,
    hash_tree,
    iter_files,
    protected_changes,
    render_starter,
    text_lines,
)

FORMAT_VERSION = 1
TOOL_PACKAGES = ("mlflow", "evidently", "prefect", "scikit-learn", "pandas", "numpy", "pytest")


def submit_lab(
    *, workspace: Path | None, out: Path | None, grade_first: bool, ui: UI, force: bool = False,
) -> tuple[Path, dict[str, Any]]:
    """Pack the given workspace, else the one the user stands in, else the running lab's —
    after a fresh visible grade when that is the running lab's, so the archive carries the
    candidate's latest self-check. The destination is checked before anything runs, and an
    existing archive is replaced only with ``force``."""
    session = load_session()
    if workspace is None:
        workspace = enclosing_workspace(Path.cwd())
    if workspace is None:
        if session is None:
            raise NotFoundError("no lab is running and no --workspace was given", hint="labkit submit --workspace DIR")
        workspace = session.workspace_path
    workspace = workspace.resolve()
    ui.note(f"packing the workspace {workspace}")
    if out is not None:
        out = out / default_archive_name(workspace) if out.is_dir() else out
        check_file_destination(out, option="--out", force=force)
    if grade_first and session is not None and session.workspace_path == workspace:
        from labkit.grading.grade import grade_lab

        grade_lab(hidden=False, fmt="json", out=None, ui=ui, session=session)
    elif grade_first:
        why = "no lab is running" if session is None else "it is not the running lab's workspace"
        ui.note(f"not graded first: {why} (its last grade, if any, is packed)")
    return build_submission(workspace=workspace, out=out, force=force)


def default_archive_name(workspace: Path) -> str:
    """<lab>-seed<N>-submission-<time>.tar.gz, from the workspace's manifest."""
    manifest = Manifest.read(workspace)
    lab = f"{manifest.lab_id}-seed{manifest.seed}" if manifest else workspace.name
    return f"{lab}-submission-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}.tar.gz"


def build_submission(*, workspace: Path, out: Path | None = None, force: bool = False) -> tuple[Path, dict[str, Any]]:
    manifest = Manifest.read(workspace)
    if manifest is None:
        raise NotFoundError(
            f"{workspace} is not a labkit workspace (no {META_DIR}/manifest.json)",
            hint="run submit from the lab's workspace, or pass --workspace",
        )
    lab = load_lab(manifest.lab_id)
    changes = changes_since_render(workspace, manifest)
    protected = protected_changes(workspace, manifest, lab.spec.workspace.protected)
    session = load_session()
    last_grade_path = workspace / META_DIR / "last-grade.json"
    last_grade = json.loads(last_grade_path.read_text()) if last_grade_path.is_file() else None
    now = datetime.now(timezone.utc)
    record = {
        "format": FORMAT_VERSION,
        "lab": lab.id,
        "seed": manifest.seed,
        "variant": manifest.variant,
        "timestamps": {
            "rendered_at": manifest.rendered_at,
            "session_started_at": session.started_at if session and session.lab_id == lab.id else "",
            "last_grade_at": (last_grade or {}).get("finished_at", ""),
            "grades": _grade_log(workspace),
            "submitted_at": now.isoformat(timespec="seconds"),
        },
        "last_grade": None if last_grade is None else {
            k: last_grade[k] for k in ("score", "max_score", "percent", "complete", "hidden")
        },
        "changes": {"modified": changes.modified, "added": changes.added, "deleted": changes.deleted},
        "integrity": {
            "protected_globs": lab.spec.workspace.protected,
            "protected_changed": protected,
            "flags": [f"protected file changed: {p}" for p in protected],
        },
        "tools": _tool_versions(),
    }
    current = hash_tree(workspace)
    integrity = {
        "rendered": manifest.files,  # sha256 of every file labkit rendered: the starter and provisioned data
        "current": current,  # sha256 of every file as packed
        "protected": {p: {"rendered": h, "current": current.get(p, "")} for p, h in manifest.files.items()
                      if any(fnmatch.fnmatch(p, pat) for pat in lab.spec.workspace.protected)},
    }
    out = out or _unused(workspace.parent / default_archive_name(workspace))
    check_file_destination(out, option="--out", force=force)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out, "w:gz") as archive:
        _add_bytes(archive, "submission.json", json.dumps(record, indent=2))
        _add_bytes(archive, "integrity.json", json.dumps(integrity, indent=2))
        _add_bytes(archive, "changes.diff", _starter_diff(lab, manifest.seed, workspace, changes.added))
        if last_grade is not None:
            _add_bytes(archive, "last-grade.json", json.dumps(last_grade, indent=2))
        for path in iter_files(workspace):
            archive.add(path, arcname=f"workspace/{path.relative_to(workspace).as_posix()}", recursive=False)
        archive.add(workspace / META_DIR / "manifest.json", arcname=f"workspace/{META_DIR}/manifest.json")
    return out, record


def _unused(path: Path) -> Path:
    """The default name, made unique: a second submit within the same second keeps the first."""
    n, candidate = 1, path
    while candidate.exists():
        candidate = path.with_name(path.name.replace(".tar.gz", f"-{n}.tar.gz"))
        n += 1
    return candidate


def _starter_diff(lab: Any, seed: int, workspace: Path, added: list[str]) -> str:
    """A unified diff of the candidate's text files against a fresh render of the starter.
    Provisioned data is left out: the integrity hashes cover it."""
    with tempfile.TemporaryDirectory() as tmp:
        starter = Path(tmp)
        render_starter(lab, seed, starter)
        names = sorted({p.relative_to(starter).as_posix() for p in iter_files(starter)} | set(added))
        chunks = []
        for name in names:
            before, after = text_lines(starter / name), text_lines(workspace / name)
            if before is None or after is None or before == after:
                continue
            chunks.extend(difflib.unified_diff(before, after, f"a/{name}", f"b/{name}"))
        return "".join(chunks)


def _grade_log(workspace: Path) -> list[dict[str, Any]]:
    """Every grade the candidate ran (time, visible or hidden, score); torn lines skipped."""
    path = workspace / META_DIR / "grades.jsonl"
    grades = []
    for line in path.read_text(encoding="utf-8").splitlines() if path.is_file() else []:
        try:
            grades.append(json.loads(line))
        except ValueError:
            continue
    return grades


def _tool_versions() -> dict[str, str]:
    versions = {"labkit": __version__, "python": sys.version.split()[0], "platform": platform.platform()}
    for name in TOOL_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = ""
    return versions


def _add_bytes(archive: tarfile.TarFile, name: str, text: str) -> None:
    data = text.encode()
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(datetime.now(timezone.utc).timestamp())
    archive.addfile(info, io.BytesIO(data))
