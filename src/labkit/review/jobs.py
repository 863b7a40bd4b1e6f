"""The review job, the review record and the job folder: one schema each, read and written here.

A batch turns each submission into a job folder, ``OUT/submissions/<name>-<sha>/``, and a
ReviewJob (job.json) that a worker — a process, a container or a Kubernetes pod — reads;
the worker answers with a ReviewRecord (result.json, written last: its presence means
"done"). Every backend and the worker go through these types, so a field added, renamed
or misspelt fails here, in one place, instead of as a KeyError three modules away. The
layout of the folder (which file holds what) lives here for the same reason.

Nothing in this module knows how a review runs: it sits below the worker, the reports,
the backends and the batch, and imports none of them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit.session import write_json_atomic

if TYPE_CHECKING:
    from labkit.review.sandbox import Enforcement, SandboxPolicy

MAX_ARCHIVE_BYTES = 512 * 1024 * 1024  # refused before it is even copied
STATUSES = ("reviewed", "rejected", "error")
_SLUG = re.compile(r"[^A-Za-z0-9._-]+")


class SchemaError(ValueError):
    """A job.json or result.json that is not one of ours (or is from another labkit version)."""


def _check_keys(kind: str, data: Any, cls: type) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise SchemaError(f"{kind}: not a JSON object")
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise SchemaError(f"{kind}: unknown field(s) {', '.join(unknown)}")
    return data


@dataclass(frozen=True)
class ReviewJob:
    """What a worker needs to review one submission, with paths as the worker sees them
    (the job folder itself, or its mount at /review in a container or pod)."""

    id: str
    job_dir: str
    archive: str
    archive_sha256: str
    hidden: bool
    policy: dict[str, Any]  # SandboxPolicy.to_dict(): limits and timeouts
    confine: dict[str, bool]  # what the subprocess sandbox may add (unshare, cgroup)
    sandbox: dict[str, Any]  # Enforcement.to_dict() with the limits: shown in every report
    # The lab the reviewer has running where the batch started (lab, runtime, workspace,
    # home), if any: a review of a kind lab must not take over its cluster (labkit.review.running).
    running_lab: dict[str, Any] | None = None
    # Reviewer files a candidate command must not read, though the sandbox leaves the disk
    # readable (the review key): the confinement puts an empty file in their place.
    hide: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> ReviewJob:
        data = _check_keys("job.json", data, cls)
        missing = [f.name for f in fields(cls) if f.name not in data and f.name not in ("running_lab", "hide")]
        if missing:
            raise SchemaError(f"job.json: missing field(s) {', '.join(missing)}")
        return cls(**data)

    def at(self, job_dir: Path, archive: Path) -> ReviewJob:
        """The same job seen from another mount (a pod joins its archive into its own folder)."""
        return replace(self, job_dir=str(job_dir), archive=str(archive))


@dataclass(frozen=True)
class ReviewRecord:
    """The outcome of one review: a leaderboard row and the facts its reports show.

    status: reviewed (graded), rejected (the submission's fault, final) or error (ours or
    the machine's: not final, so a rerun redoes it)."""

    id: str
    archive: str
    archive_sha256: str = ""
    status: str = "error"
    final: bool = False
    reason: str = ""
    lab: str = ""
    seed: int | None = None
    score: float = 0.0
    max_score: float = 0.0
    percent: float = 0.0
    complete: bool = False
    flags: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    sandbox: dict[str, Any] = field(default_factory=dict)
    reviewed_with: str = ""
    timestamps: dict[str, Any] = field(default_factory=dict)
    tools: dict[str, Any] = field(default_factory=dict)
    claimed_grade: Any = None
    time_spent_s: float | None = None
    diff: dict[str, Any] | None = None
    grade: dict[str, Any] | None = None  # GradeResult.to_dict()
    review_s: float | None = None
    reviewed_at: str = ""
    kube: dict[str, Any] | None = None  # the k8s backend's Job facts
    sources_missing: bool = False  # the reviewer's catalog lacks this lab's hidden checks (exit 11)
    blocked_by: dict[str, Any] | None = None  # another lab runs where this review needed to start (exit 12)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise SchemaError(f"result.json status: {self.status!r} is not one of {', '.join(STATUSES)}")
        object.__setattr__(self, "flags", tuple(self.flags))
        object.__setattr__(self, "notes", tuple(self.notes))

    @classmethod
    def error(cls, job: ReviewJob | None, *, archive: Path | str, reason: str, job_id: str = "",
              sha: str = "", sandbox: dict[str, Any] | None = None) -> ReviewRecord:
        """The row of a review that did not get as far as a grade."""
        return cls(id=job.id if job else job_id, archive=str(archive),
                   archive_sha256=job.archive_sha256 if job else sha, reason=reason,
                   sandbox=job.sandbox if job and sandbox is None else (sandbox or {}))

    def with_(self, **changes: Any) -> ReviewRecord:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["flags"], data["notes"] = list(self.flags), list(self.notes)
        return data

    @classmethod
    def from_dict(cls, data: Any) -> ReviewRecord:
        data = _check_keys("result.json", data, cls)
        if not isinstance(data.get("id"), str) or not isinstance(data.get("archive"), str):
            raise SchemaError("result.json: id and archive must be strings")
        return cls(**data)


@dataclass(frozen=True)
class JobFolder:
    """One submission's folder. Its files:

    job.json     the ReviewJob          result.json  the ReviewRecord (last: "done")
    <archive>    the reviewed bytes     report.md / report.html   for a human
    worker.log   the worker's output    crash.txt    a labkit bug's traceback
    kube.json    the k8s Job's facts    home/        the worker's LABKIT_HOME (services' data, logs)
    work/        scratch (removed when the review ends)
    """

    path: Path

    job_file = property(lambda self: self.path / "job.json")
    result_file = property(lambda self: self.path / "result.json")
    log_file = property(lambda self: self.path / "worker.log")
    crash_file = property(lambda self: self.path / "crash.txt")
    kube_file = property(lambda self: self.path / "kube.json")
    report_md = property(lambda self: self.path / "report.md")
    report_html = property(lambda self: self.path / "report.html")
    home = property(lambda self: self.path / "home")
    work = property(lambda self: self.path / "work")

    @property
    def name(self) -> str:
        return self.path.name

    def reset(self) -> None:
        """A fresh folder: nothing of an earlier, unfinished attempt is trusted."""
        shutil.rmtree(self.path, ignore_errors=True)
        self.path.mkdir(parents=True)

    def read_job(self) -> ReviewJob:
        return read_job(self.job_file)

    def write_job(self, job: ReviewJob) -> None:
        write_json_atomic(self.job_file, job.to_dict())

    def read_result(self) -> ReviewRecord | None:
        """The record, or None when there is none or it is not one this labkit wrote."""
        try:
            return ReviewRecord.from_dict(json.loads(self.result_file.read_text()))
        except (OSError, ValueError, TypeError, RecursionError):
            return None

    def write_result(self, record: ReviewRecord) -> None:
        write_json_atomic(self.result_file, record.to_dict())

    def finished(self, hidden: bool) -> ReviewRecord | None:
        """The record of a review that need not run again (final, with the same checks)."""
        record = self.read_result()
        if record is None or not record.final:
            return None
        return record if record.grade is None or record.grade.get("hidden") == hidden else None


def read_job(path: Path) -> ReviewJob:
    return ReviewJob.from_dict(json.loads(path.read_text()))


@dataclass(frozen=True)
class Pending:
    """A submission to review: the reviewer's file, its job folder, its content's sha256
    (or why it is refused unread: "oversized", "not-regular")."""

    archive: Path
    folder: JobFolder
    sha: str


def job_folder(out: Path, archive: Path) -> Pending:
    """Keyed by the archive's content, so a rerun finds the review of the same bytes."""
    kind = file_kind(archive)
    if kind != "regular file":
        sha = "not-regular"
    elif archive.stat().st_size > MAX_ARCHIVE_BYTES:
        sha = "oversized"
    else:
        sha = sha256_regular(archive)
    stem = archive.name.removesuffix(".gz").removesuffix(".tar").removesuffix(".tgz")
    return Pending(archive, JobFolder(out / "submissions" / f"{_SLUG.sub('_', stem)[:60]}-{sha[:10]}"), sha)


def file_kind(path: Path) -> str:
    """What is at `path` (links followed), without opening it: a FIFO would block an open."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    for test, kind in ((stat.S_ISREG, "regular file"), (stat.S_ISDIR, "folder"), (stat.S_ISFIFO, "FIFO (named pipe)"),
                       (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device")):
        if test(mode):
            return kind
    return "special file"


def open_regular(path: Path) -> int:
    """A read-only descriptor of `path`, which must be a regular file. O_NONBLOCK: a FIFO
    swapped in after file_kind() looked cannot make the open wait for a writer."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{path}: not a regular file")
    os.set_blocking(fd, True)
    return fd


def sha256_regular(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with os.fdopen(open_regular(path), "rb") as source:
        while block := source.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def refused_unread(pending: Pending, sandbox: dict[str, Any]) -> ReviewRecord | None:
    """The final row of a submission not read at all (too big, or not a regular file)."""
    archive = pending.archive
    if pending.sha == "oversized":
        reason = f"{archive.name}: over {MAX_ARCHIVE_BYTES // 2**20} MB; refused unread"
    elif pending.sha == "not-regular":
        kind = file_kind(archive)
        what = kind if kind.startswith("unreadable") else f"a {kind}, not a regular file"
        reason = f"{archive.name}: {what}; refused unread (a submission is the .tar.gz file `labkit submit` writes)"
    else:
        return None
    return ReviewRecord.error(None, archive=archive, reason=reason, job_id=pending.folder.name, sha=pending.sha,
                              sandbox=sandbox).with_(status="rejected", final=True)


def stage(pending: Pending, *, hidden: bool, policy: SandboxPolicy, enforcement: Enforcement, root: Path,
          running_lab: dict[str, Any] | None = None) -> ReviewJob:
    """Copy the archive into its job folder and write the job for a worker that sees that
    folder as `root` (the folder itself, or its mount in a container or pod)."""
    copy = _SLUG.sub("_", pending.archive.name)[-100:]  # messages name the file the reviewer knows
    with os.fdopen(open_regular(pending.archive), "rb") as source, open(pending.folder.path / copy, "wb") as dest:
        shutil.copyfileobj(source, dest)  # the reviewed bytes, fixed
    host = enforcement.mode == "subprocess"
    # Namespaces: the subprocess mode's where this machine has them; Docker mode's inside the
    # container (candidate_namespaces), which the worker checks there before it grades.
    unshare = enforcement.unshare and enforcement.mode in ("subprocess", "docker")
    job = ReviewJob(
        id=pending.folder.name, job_dir=str(root), archive=str(root / copy), archive_sha256=pending.sha,
        hidden=hidden, policy=policy.to_dict(),
        confine={"unshare": unshare, "cgroup": enforcement.cgroup and host},
        sandbox={**enforcement.to_dict(), "limits": policy.to_dict()}, running_lab=running_lab,
        hide=[*(_secret_files() if hidden else []), *_job_folders(pending, root, host=host)],
    )
    pending.folder.write_job(job)
    return job


def _job_folders(pending: Pending, root: Path, *, host: bool) -> list[str]:
    """Review folders a candidate command must not read: its own job's (the job, the worker's
    log, the lab's state and services' data, the grade's files; its workspace stays visible
    beneath) and, on this machine, every other submission's, reports included."""
    return [str(root), *([str(pending.folder.path.parent)] if host else [])]


def _secret_files() -> list[str]:
    """Reviewer files a candidate command must not read (the review key)."""
    from labkit.grading.review_key import key_path

    return [str(key_path())]


def staged_archive(pending: Pending, job: ReviewJob) -> Path:
    """The job folder's copy of the archive, on this machine."""
    return pending.folder.path / Path(job.archive).name


def all_records(out: Path) -> list[ReviewRecord]:
    """Every readable record in OUT: the leaderboard is rebuilt from all of them."""
    records = []
    for path in sorted((out / "submissions").iterdir()) if (out / "submissions").is_dir() else []:
        record = JobFolder(path).read_result()
        if record is not None:
            records.append(record)
    return records
