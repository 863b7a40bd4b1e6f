"""The candidate's workspace: rendered once from the starter, then theirs.

Nothing here overwrites or deletes a candidate's file without ``force``, and with
``force`` a backup is taken first. The manifest records what labkit rendered, so
"changed by the candidate" is a fact, not a guess.
"""

from __future__ import annotations

import fnmatch
import hashlib
import random
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from labkit.catalog import Lab
from labkit.errors import WorkspaceConflict
from labkit.session import write_json_atomic

STAGING_PREFIX = ".labkit-staging-"  # inside an empty workspace folder while start renders it
META_DIR = ".labkit"
MANIFEST = "manifest.json"
# Never part of what the candidate wrote: labkit's own folder, caches, VCS data.
IGNORED_PARTS = {META_DIR, "__pycache__", ".git", ".pytest_cache", ".ipynb_checkpoints"}


@dataclass(frozen=True)
class Manifest:
    lab_id: str
    seed: int
    variant: str
    rendered_at: str
    files: dict[str, str]  # relative posix path -> sha256

    @classmethod
    def read(cls, workspace: Path) -> Manifest | None:
        import json

        path = workspace / META_DIR / MANIFEST
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
            return cls(data["lab"], int(data["seed"]), data.get("variant", ""), data["rendered_at"], data["files"])
        except (ValueError, KeyError, TypeError):
            return None

    def write(self, workspace: Path) -> None:
        write_json_atomic(
            workspace / META_DIR / MANIFEST,
            {"lab": self.lab_id, "seed": self.seed, "variant": self.variant,
             "rendered_at": self.rendered_at, "files": self.files},
        )


@dataclass(frozen=True)
class Changes:
    modified: list[str]
    added: list[str]
    deleted: list[str]

    @property
    def any(self) -> bool:
        return bool(self.modified or self.added or self.deleted)

    def summary(self, limit: int = 8) -> str:
        items = [f"modified {p}" for p in self.modified] + [f"added {p}" for p in self.added]
        items += [f"deleted {p}" for p in self.deleted]
        more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
        return ", ".join(items[:limit]) + more


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def iter_files(root: Path) -> list[Path]:
    """Regular files below root that belong to the workspace's content (sorted, no links)."""
    out = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if IGNORED_PARTS.intersection(rel.parts) or path.suffix == ".pyc":
            continue
        if path.is_file() and not path.is_symlink():
            out.append(path)
    return out


def hash_tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): sha256_file(p) for p in iter_files(root)}


def enclosing_workspace(path: Path) -> Path | None:
    """The workspace that holds ``path`` (itself or a folder above it), or None.

    A workspace is a folder with ``.labkit/manifest.json``; the manifest, not ``.labkit/``
    alone, because ``~/.labkit`` is labkit's home and would make every folder in the
    user's home look like a workspace.
    """
    path = path.resolve()
    for folder in (path, *path.parents):
        if (folder / META_DIR / MANIFEST).is_file():
            return folder
    return None


def changes_since_render(workspace: Path, manifest: Manifest) -> Changes:
    current = hash_tree(workspace)
    modified = sorted(p for p, h in current.items() if p in manifest.files and manifest.files[p] != h)
    added = sorted(p for p in current if p not in manifest.files)
    deleted = sorted(p for p in manifest.files if p not in current)
    return Changes(modified, added, deleted)


def choose_variant(lab: Lab, seed: int) -> str:
    """The same seed always picks the same variant (no dependence on hash randomisation)."""
    if not lab.spec.variants:
        return ""
    return random.Random(f"{lab.id}:{seed}").choice(lab.spec.variants).id


def render_starter(lab: Lab, seed: int, target: Path) -> str:
    """Copy the brief, the starter and the seed's variant overlay into an empty target folder."""
    shutil.copytree(lab.path / "starter", target, dirs_exist_ok=True, ignore=_ignore_caches)
    shutil.copy2(lab.path / "BRIEF.md", target / "BRIEF.md")
    variant_id = choose_variant(lab, seed)
    if variant_id:
        variant = next(v for v in lab.spec.variants if v.id == variant_id)
        shutil.copytree(lab.path / variant.overlay, target, dirs_exist_ok=True, ignore=_ignore_caches)
    return variant_id


def finish_render(lab: Lab, seed: int, variant: str, staged: Path) -> Manifest:
    manifest = Manifest(lab.id, seed, variant, _now(), hash_tree(staged))
    manifest.write(staged)
    return manifest


def staging_leftovers(workspace: Path) -> list[Path]:
    """What a start killed mid-render (kill -9, a power cut) left in an empty workspace folder:
    labkit's own half-rendered copies, nothing of the candidate's."""
    if not workspace.is_dir():
        return []
    return sorted(e for e in workspace.iterdir() if e.name.startswith(STAGING_PREFIX) and e.is_dir()
                  and not e.is_symlink())


def check_can_render(workspace: Path, lab: Lab, seed: int, *, force: bool) -> str:
    """Decide what start does with the folder: 'new', 'reuse' or 'replace' (force only).

    An existing workspace of the same lab and seed is reused as it stands — the
    candidate's changes included — so stopping and starting again loses nothing.
    """
    if not workspace.exists() or (workspace.is_dir() and set(workspace.iterdir()) <= set(staging_leftovers(workspace))):
        return "new"
    if not workspace.is_dir():
        raise WorkspaceConflict(f"{workspace} exists and is not a folder", hint="choose another --workspace")
    manifest = Manifest.read(workspace)
    if force:
        return "replace"
    if manifest is not None and manifest.lab_id == lab.id and manifest.seed == seed:
        return "reuse"
    what = (
        f"a workspace of {manifest.lab_id} (seed {manifest.seed})" if manifest else "a folder labkit did not create"
    )
    raise WorkspaceConflict(
        f"{workspace} already holds {what}; labkit will not overwrite it",
        hint="pick another --workspace, or pass --force to move it to a backup folder and start fresh",
    )


def backup(workspace: Path) -> Path:
    """Move the workspace aside (same filesystem, so nothing is copied or lost)."""
    target = _backup_path(workspace)
    shutil.move(str(workspace), target)
    return target


def copy_backup(workspace: Path) -> Path:
    """Copy the workspace aside, for operations that then change it in place."""
    target = _backup_path(workspace)
    shutil.copytree(workspace, target, symlinks=True)
    return target


def _backup_path(workspace: Path) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    target = workspace.with_name(f"{workspace.name}.backup-{stamp}")
    n = 1
    while target.exists():
        target = workspace.with_name(f"{workspace.name}.backup-{stamp}-{n}")
        n += 1
    return target


def solution_conflicts(lab: Lab, workspace: Path) -> list[str]:
    """Files the solution would overwrite that the candidate changed (neither starter nor solution)."""
    manifest = Manifest.read(workspace)
    rendered = manifest.files if manifest else {}
    conflicts = []
    for src in iter_files(lab.path / "solution"):
        rel = src.relative_to(lab.path / "solution").as_posix()
        dest = workspace / rel
        if not dest.is_file():
            continue
        current = sha256_file(dest)
        if current not in (rendered.get(rel), sha256_file(src)):
            conflicts.append(rel)
    return conflicts


def overlay_solution(lab: Lab, workspace: Path) -> list[str]:
    written = []
    root = lab.path / "solution"
    for src in iter_files(root):
        rel = src.relative_to(root)
        dest = workspace / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)
        written.append(rel.as_posix())
    return written


def protected_changes(workspace: Path, manifest: Manifest, patterns: list[str]) -> list[str]:
    """Protected files (by glob) that differ from what was rendered, or are gone."""
    changes = changes_since_render(workspace, manifest)
    touched = changes.modified + changes.deleted
    return sorted(p for p in touched if any(fnmatch.fnmatch(p, pat) for pat in patterns))


def text_lines(path: Path, limit: int = 1_000_000) -> list[str] | None:
    """A file's lines for diffing: [] when absent, None when binary or too large to diff."""
    if not path.is_file():
        return []
    if path.stat().st_size > limit:
        return None
    try:
        return path.read_text(encoding="utf-8").splitlines(keepends=True)
    except UnicodeDecodeError:
        return None


def _ignore_caches(_dir: str, names: list[str]) -> set[str]:
    return {n for n in names if n in IGNORED_PARTS or n.endswith(".pyc")}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
