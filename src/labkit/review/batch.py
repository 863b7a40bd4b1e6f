"""`labkit review SUBMISSION...`: many submissions, in parallel, resumable.

Each submission is reviewed by its own worker process (labkit.review.worker) in its
own folder, ``OUT/submissions/<name>-<sha>/``, keyed by the archive's content: a
rerun skips every submission whose review finished (its result.json is final), and
redoes only those that crashed, timed out or hit an infrastructure error. A worker
that dies leaves an error row with the reason, never a traceback, and costs no other
submission its result. The leaderboard is rebuilt from every result in OUT.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit.destinations import check_folder_destination
from labkit.errors import LabSourcesMissing, NotFoundError, UserError
from labkit.review.backends import BACKENDS
from labkit.review.jobs import Pending, ReviewRecord, all_records, file_kind, job_folder, refused_unread
from labkit.review.kube import KubeOptions
from labkit.review.report import announce, leaderboard, save, write_leaderboard
from labkit.review.sandbox import Enforcement, SandboxPolicy, load_policy
from labkit.ui import UI


@dataclass
class ReviewSummary:
    out: Path
    enforcement: Enforcement
    records: list[ReviewRecord] = field(default_factory=list)  # this run's, in input order
    skipped: list[str] = field(default_factory=list)  # finished before; not redone
    leaderboard_csv: Path | None = None
    leaderboard_json: Path | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)


def review_submissions(
    *, submissions: list[Path], out: Path, jobs: int = 1, hidden: bool = True, sandbox: str = "auto", ui: UI,
    policy: SandboxPolicy | None = None, backend: str = "local", kube: KubeOptions | None = None,
) -> ReviewSummary:
    """Review every submission with the backend named (labkit.review.backends.BACKENDS):
    same job folders, records, reports and resume whichever it is."""
    check_folder_destination(out, option="--out")  # first: no review may end in an unwritable OUT
    archives = expand(submissions)
    if jobs < 1:
        raise UserError("--jobs must be at least 1")
    if backend not in BACKENDS:
        raise UserError(f"--backend {backend}: one of {', '.join(BACKENDS)}")
    if hidden:
        _require_hidden_checks()
    runner = BACKENDS[backend](policy=policy or load_policy(), sandbox=sandbox, kube=kube, ui=ui)
    enforcement = runner.enforcement
    for warning in enforcement.warnings:
        ui.note(f"WARNING: {warning}")
    out = out.resolve()
    (out / "submissions").mkdir(parents=True, exist_ok=True)
    summary = ReviewSummary(out, enforcement)
    pending: list[Pending] = []
    refused: dict[Path, ReviewRecord] = {}
    for archive in archives:
        item = job_folder(out, archive)
        done = item.folder.finished(hidden)
        if done is not None:
            summary.skipped.append(done.id)
            continue
        item.folder.reset()
        record = refused_unread(item, enforcement.to_dict())
        if record is not None:  # too big, or not a regular file: a final row, the file never opened
            refused[item.folder.path] = save(record, item.folder)
            announce(archive, record, ui)
        pending.append(item)
    ui.note(f"{len(archives)} submission(s): {len(summary.skipped)} already reviewed, {len(pending)} to review "
            f"({jobs} at a time, sandbox: {enforcement.mode})")
    reviewed = {r.id: r for r in runner.review([p for p in pending if p.folder.path not in refused],
                                                hidden=hidden, parallel=jobs)}
    summary.records = [refused.get(p.folder.path) or reviewed[p.folder.name] for p in pending
                       if p.folder.path in refused or p.folder.name in reviewed]
    summary.rows = leaderboard(all_records(out))
    summary.leaderboard_csv, summary.leaderboard_json = write_leaderboard(summary.rows, out)
    return summary


def _require_hidden_checks() -> None:
    """Fail before anything starts when no lab found has hidden checks: labkit installed from
    the published wheel (candidate copies) with no full lab sources given. A submission whose
    own lab lacks them is stopped by its worker (an error row, redone by a rerun)."""
    from labkit.catalog import full_sources_hint, has_hidden_checks, lab_dirs, labs_roots

    if not any(has_hidden_checks(d) for d in lab_dirs().values()):
        roots = ", ".join(map(str, labs_roots())) or "(none)"
        raise LabSourcesMissing(
            f"`labkit review` grades with the hidden checks, and no lab labkit found has them "
            f"(looked in {roots}: candidate copies, as the labkit package carries)",
            hint=f"{full_sources_hint()}; or --visible-only",
        )


def expand(paths: list[Path]) -> list[Path]:
    """Files as given; folders become their (non-hidden) entries other than folders. Every
    missing path at once. Nothing is opened here: a FIFO or a device among them becomes a
    rejected row (labkit.review.jobs.refused_unread), never a read that waits forever."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise NotFoundError(f"no such submission: {', '.join(missing)}")
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if not p.name.startswith(".") and file_kind(p) != "folder")
        else:
            found.append(path)
    if not found:
        raise NotFoundError("no submissions found in " + ", ".join(map(str, paths)))
    unique = list(dict.fromkeys(p.resolve() for p in found))
    return unique
