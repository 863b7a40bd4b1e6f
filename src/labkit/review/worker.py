"""Review one submission, in a process of its own (``python -m labkit.review.worker JOB``).

A process per submission, with its own LABKIT_HOME, so that each review has its own
services, ports and state, a crash or a hang costs that submission alone, and the
batch can run several side by side. The outcome is always a record (result.json)
and two reports, whether the submission was graded, rejected or broke something.

Steps: unpack safely → read and validate the claims → provision the lab afresh with
the submission's seed → overlay the candidate's files (never their protected files,
never their checks) → verify integrity → grade (visible + hidden) with the
candidate's commands sandboxed → stop the services → write the record.
"""

from __future__ import annotations

import contextlib
import fnmatch
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from labkit import __version__
from labkit.errors import BadInput, LabkitError, LabRunning, LabSourcesMissing, NotFoundError, RuntimeUnavailable
from labkit.review.jobs import JobFolder, ReviewJob, ReviewRecord, read_job


def review_one(job: ReviewJob) -> ReviewRecord:
    """The record of one review; never raises for anything the submission can cause."""
    from labkit.bundles.unpack import safe_unpack
    from labkit.review.intake import read_claims, time_spent_s

    folder = JobFolder(Path(job.job_dir))
    started = time.monotonic()
    record = ReviewRecord.error(job, archive=job.archive, reason="").with_(reviewed_with=__version__)
    work = folder.work
    shutil.rmtree(work, ignore_errors=True)
    try:
        unpacked = safe_unpack(Path(job.archive), work / "unpacked")
        record = record.with_(notes=record.notes + tuple(unpacked.notes))
        claims = read_claims(work / "unpacked")
        record = record.with_(lab=claims.lab_id, seed=claims.seed, timestamps=claims.record.get("timestamps") or {},
                              tools=claims.record.get("tools") or {}, claimed_grade=claims.record.get("last_grade"),
                              time_spent_s=time_spent_s(claims.record))  # kept on the row whatever happens next
        record = _grade_submission(job, work, record, claims)
    except (BadInput, NotFoundError) as exc:  # the submission's fault: final, a rerun changes nothing
        record = record.with_(status="rejected", final=True, reason=str(exc))
    except LabSourcesMissing as exc:  # the reviewer's catalog lacks this lab's hidden checks: rerun with them
        record = record.with_(status="error", reason=str(exc), sources_missing=True)
    except LabRunning as exc:  # another lab holds the cluster: nothing was started; rerun once it stops
        record = record.with_(status="error", reason=str(exc), blocked_by=getattr(exc, "holder", None) or {})
    except LabkitError as exc:  # the reviewer's side (provisioning, services): worth a rerun
        record = record.with_(status="error", reason=str(exc))
    except Exception as exc:  # noqa: BLE001 - a bug of ours: keep the trace for us, a row for the reviewer
        record = record.with_(status="error", reason=f"labkit failed while reviewing: {exc!r}")
        folder.crash_file.write_text(traceback.format_exc())
    record = record.with_(review_s=round(time.monotonic() - started, 1),
                          reviewed_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    shutil.rmtree(work, ignore_errors=True)  # home/ (services' data, logs) stays as evidence
    return record


def _grade_submission(job: ReviewJob, work: Path, record: ReviewRecord, claims: Any) -> ReviewRecord:
    from labkit.catalog import load_lab, require_sources
    from labkit.ui import UI

    lab = load_lab(claims.lab_id)
    if job.hidden:  # before any service starts
        require_sources(lab, hidden_checks=True, command="labkit review")
    _require_namespaces(job)
    protected = list(lab.spec.workspace.protected)
    ui = UI(json_mode=True)  # progress to the worker's log, nothing else
    workspace = work / "workspace"
    # local where the lab runs on it; a Kubernetes lab gets the machine's one kind cluster
    runtime = "local" if "local" in lab.spec.runtimes else lab.spec.runtimes[0]
    with _exclusive(runtime == "kind"):
        if runtime == "kind":
            from labkit.review.running import guard_kind_review

            guard_kind_review(lab.id, running_lab=job.running_lab)  # before anything touches the cluster
        return _start_grade_stop(job, work, record, claims, lab, runtime, workspace, protected, ui)


def _require_namespaces(job: ReviewJob) -> None:
    """Fail closed: a job that promises candidate commands namespaces of their own (which
    hide the lab's sources from them) is not graded where they cannot be made, such as a
    container started without the profile that allows them."""
    from labkit.sandbox.enforcement import unshare_works

    if job.confine.get("unshare") and not unshare_works():
        raise RuntimeUnavailable(
            "candidate commands cannot get namespaces of their own here (unshare is refused), so they "
            "would see the lab's hidden checks; not graded",
            hint="keep sandbox.yaml's security.candidate_namespaces: true (the default), on a kernel that "
                 "allows user namespaces (`unshare -r --mount true` works there)")


@contextlib.contextmanager
def _exclusive(needed: bool) -> Iterator[None]:
    """Reviews of kind labs take turns: they share the cluster, its name and its node ports,
    so two at once would tear down each other's namespaces. Local labs run side by side."""
    if not needed:
        yield
        return
    import fcntl

    with open(Path(tempfile.gettempdir()) / "labkit-kind-review.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _start_grade_stop(job, work, record, claims, lab, runtime, workspace, protected, ui) -> ReviewRecord:  # noqa: ANN001, PLR0913
    from labkit.grading.runner import run_checks
    from labkit.lifecycle import start_lab, stop_lab
    from labkit.review.intake import candidate_files, diff_summary, verify
    from labkit.workspace import Manifest, render_starter

    session = start_lab(lab_id=lab.id, runtime=runtime, seed=claims.seed, workspace=workspace, ui=ui).session
    try:
        fresh = Manifest.read(workspace)
        assert fresh is not None
        integrity = verify(claims, fresh=fresh, protected=protected)
        overlay, ignored = candidate_files(claims, protected)
        deleted = [p for p in fresh.files if p not in overlay and p not in ignored and not _matches(p, protected)]
        notes = _overlay(claims.workspace, workspace, overlay, removed=deleted)
        starter = work / "starter"
        render_starter(lab, claims.seed, starter)
        diff = diff_summary(starter, workspace, overlay + [p.relative_to(starter).as_posix()
                                                           for p in starter.rglob("*") if p.is_file()])
        timeout = min(float(lab.spec.grading.timeout_s), float(job.policy["grade_timeout_s"]))
        result = run_checks(lab, workspace=workspace, seed=claims.seed, state_dir=session.state_path,
                            services=session.service_urls(), hidden=job.hidden, grade_dir=work / "grade",
                            timeout_s=timeout, sandbox={**job.policy, **job.confine, "hide": job.hide},
                            runtime_context=session.runtime_context())
    finally:
        stop_lab(ui=ui)
    flags = record.flags + tuple(integrity.flags) + tuple(_claim_flags(claims.record.get("last_grade"), result))
    return record.with_(
        status="reviewed", final=result.complete, score=result.score, max_score=result.max_score,
        percent=round(result.percent, 2), complete=result.complete, grade=result.to_dict(), flags=flags,
        notes=record.notes + tuple(notes), diff=diff,
        reason="" if result.complete else (result.engine_error or "some checks errored (infrastructure)"),
    )


def _overlay(source: Path, workspace: Path, files: list[str], *, removed: list[str]) -> list[str]:
    """Lay the candidate's files over the fresh workspace; returns what could not be placed."""
    notes = []
    for rel in files:
        dest = workspace / rel
        try:
            if dest.is_symlink() or dest.is_dir():
                raise IsADirectoryError(rel)  # never write through a link or over a folder
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / rel, dest)
            if (source / rel).stat().st_mode & 0o100:
                dest.chmod(0o755)
        except OSError:
            notes.append(f"not placed: {rel} (its path collides with a folder or file of the lab)")
    for rel in removed:
        (workspace / rel).unlink(missing_ok=True)
    return notes


def _claim_flags(claimed: Any, result: Any) -> list[str]:
    """The candidate's last visible grade against the reviewer's run of the same checks."""
    if not isinstance(claimed, dict):
        return []
    visible = [c for c in result.checks if c.visibility.value == "visible"]
    ours = sum(c.score for c in visible)
    try:
        theirs = float(claimed.get("score", 0))
    except (TypeError, ValueError):
        return ["the submission's last grade is not a number"]
    if theirs > ours:
        return [f"self-check claimed {theirs:g} visible points; the reviewer's run of the visible checks gave {ours:g}"]
    return []


def _matches(path: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(path, pat) for pat in patterns)


def main(job_path: str) -> int:
    from labkit.review.report import save

    job = read_job(Path(job_path))
    save(review_one(job), JobFolder(Path(job.job_dir)))  # result.json last: its presence means "done"
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
