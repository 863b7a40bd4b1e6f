"""`labkit export`: the candidate bundle a hiring team hands out.

An allow-list, not a deny-list: the bundle is built only from what a candidate is
meant to see — the brief, the seed's starter variant, the visible checks (and the
one conftest they need), a version pin and a README. Hidden checks, the solution,
the wrong-fix corpus, the lab's support code and the provisioned data never enter
it, because nothing here ever reads them. It also carries the exact labkit wheel it was
exported with (:mod:`labkit.bundles.wheel`), so the candidate installs the hiring team's
build from that file: no package index is asked for labkit. A folder or a .tar.gz; never
written over an existing one without ``force``.
"""

from __future__ import annotations

import io
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from labkit import __version__
from labkit.bundles.wheel import DISTRIBUTION, write_wheel
from labkit.catalog import Lab, load_lab
from labkit.destinations import check_file_destination, check_folder_destination
from labkit.errors import UserError, WorkspaceConflict
from labkit.workspace import hash_tree, iter_files, render_starter

# The only part of a lab folder a bundle carries besides the rendered starter. Shipped
# to be read (what the self-check runs); labkit runs them from the installed lab.
VISIBLE_CHECKS = "checks/visible"


@dataclass(frozen=True)
class ExportOutcome:
    path: Path
    lab_id: str
    seed: int
    variant: str
    files: dict[str, str]  # relative path -> sha256, as written


def export_lab(*, lab_id: str, seed: int, out: Path, force: bool = False) -> ExportOutcome:
    lab = load_lab(lab_id)
    if seed < 0:
        raise UserError("--seed must be a non-negative integer")
    out = out.resolve()
    as_archive = out.name.endswith((".tar.gz", ".tgz"))
    taken = out.exists() and not (out.is_dir() and not any(out.iterdir()))
    if taken and not force:
        raise WorkspaceConflict(f"{out} already exists; labkit will not overwrite it",
                                hint="choose another --out, or pass --force to replace it")
    if as_archive:
        check_file_destination(out, option="--out")
    else:
        check_folder_destination(out.parent if out.is_file() else out, option="--out")
    with tempfile.TemporaryDirectory(prefix="labkit-export-") as tmp:
        staged = Path(tmp) / "bundle"
        variant = build_bundle(lab, seed, staged)
        files = hash_tree(staged)
        if taken:
            _remove(out)  # only now: a bundle that fails to build leaves the old one in place
        out.parent.mkdir(parents=True, exist_ok=True)
        if as_archive:
            _write_archive(staged, out, top=f"{lab.id}-seed{seed}")
        else:
            shutil.copytree(staged, out, dirs_exist_ok=True)
    return ExportOutcome(out, lab.id, seed, variant, files)


def build_bundle(lab: Lab, seed: int, target: Path) -> str:
    """Stage the bundle's files into ``target``; returns the variant id."""
    target.mkdir(parents=True)
    variant = render_starter(lab, seed, target)  # BRIEF.md + starter + the seed's overlay
    visible = lab.path / VISIBLE_CHECKS
    if visible.is_dir():
        for src in iter_files(visible):
            dest = target / "checks" / "visible" / src.relative_to(visible)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest)
    wheel = write_wheel(target)
    (target / "LABKIT_VERSION").write_text(f"{DISTRIBUTION}=={__version__}\n{wheel.path.name} sha256={wheel.sha256}\n")
    (target / "README-labkit.md").write_text(_readme(lab, seed, wheel.path.name))
    return variant


def _readme(lab: Lab, seed: int, wheel: str) -> str:
    return (
        f"# {lab.spec.title}\n\n"
        f"Your task is in BRIEF.md. This bundle is lab `{lab.id}`, seed {seed}: the starter files and\n"
        "the visible checks (`checks/visible/`: read them to see what the self-check runs; `labkit grade`\n"
        "runs them from the installed lab, with the lab's support code they import).\n\n"
        "## How to run it\n\n"
        "In a fresh virtual environment (`python3 -m venv .venv && . .venv/bin/activate`), from this folder:\n\n"
        "```bash\n"
        f"pip install './{wheel}[local]'   # labkit as the hiring team built it; the ML stack from PyPI\n"
        f"labkit start {lab.id} --seed {seed}   # services, data, and your workspace ./{lab.id}\n"
        f"cd {lab.id} && . .labkit/env\n"
        "labkit grade                               # the visible checks: a fair self-check\n"
        "labkit submit                              # the archive you send back\n"
        "```\n\n"
        f"Use seed {seed}: your submission is reviewed with it. Timestamps of start, grades and\n"
        "submit, and hashes of the files you were given, are part of the submission.\n"
    )


def _write_archive(staged: Path, out: Path, *, top: str) -> None:
    partial = out.with_name(f".{out.name}.partial")
    with tarfile.open(partial, "w:gz") as archive:
        for path in iter_files(staged):
            data = path.read_bytes()
            info = tarfile.TarInfo(f"{top}/{path.relative_to(staged).as_posix()}")
            info.size, info.mode, info.mtime = len(data), 0o644, int(path.stat().st_mtime)
            archive.addfile(info, io.BytesIO(data))
    partial.replace(out)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()
