"""`labkit review SUBMISSION...`: many submissions, in parallel, resumable.

Each submission is reviewed by its own worker process (labkit.review.worker) in its
own folder, ``OUT/submissions/<name>-<sha>/``, keyed by the archive's content: a
rerun skips every submission whose review finished (its result.json is final), and
redoes only those that crashed, timed out or hit an infrastructure error. A worker
that dies leaves an error row with the reason, never a traceback, and costs no other
submission its result. The leaderboard is rebuilt from every result in OUT.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit.errors import LabSourcesMissing, NotFoundError, UserError
from labkit.proc import DEFAULT_RUNNER
from labkit.review.report import leaderboard, write_leaderboard, write_reports
from labkit.review.kube import KubeOptions
from labkit.review.sandbox import Enforcement, SandboxPolicy, choose_enforcement, docker_argv, load_policy
from labkit.review.worker import RESULT
from labkit.session import write_json_atomic
from labkit.ui import UI
from labkit.workspace import sha256_file

MAX_ARCHIVE_BYTES = 512 * 1024 * 1024  # refused before it is even copied
_SLUG = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class ReviewSummary:
    out: Path
    enforcement: Enforcement
    records: list[dict[str, Any]] = field(default_factory=list)  # this run's, in input order
    skipped: list[str] = field(default_factory=list)  # finished before; not redone
    leaderboard_csv: Path | None = None
    leaderboard_json: Path | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)


def review_submissions(
    *, submissions: list[Path], out: Path, jobs: int = 1, hidden: bool = True, sandbox: str = "auto", ui: UI,
    policy: SandboxPolicy | None = None, backend: str = "local", kube: KubeOptions | None = None,
) -> ReviewSummary:
    """backend "local": worker processes (or containers) on this machine; "k8s": one
    Kubernetes Job per submission (labkit.review.kube_batch). Same records, reports, resume."""
    archives = expand(submissions)
    if jobs < 1:
        raise UserError("--jobs must be at least 1")
    if backend not in ("local", "k8s"):
        raise UserError(f"--backend {backend}: local or k8s")
    if hidden:
        _require_hidden_checks()
    policy = policy or load_policy()
    if backend == "k8s":
        from labkit.review.kube_batch import kube_enforcement

        enforcement = kube_enforcement(kube or KubeOptions())
    else:
        enforcement = choose_enforcement(policy, sandbox=sandbox)
    for warning in enforcement.warnings:
        ui.note(f"WARNING: {warning}")
    out = out.resolve()
    (out / "submissions").mkdir(parents=True, exist_ok=True)
    summary = ReviewSummary(out, enforcement)
    pending = []
    for archive in archives:
        job_dir, sha = _job_dir(out, archive)
        done = _finished(job_dir, hidden)
        if done is not None:
            summary.skipped.append(done["id"])
            continue
        pending.append((archive, job_dir, sha))
    ui.note(f"{len(archives)} submission(s): {len(summary.skipped)} already reviewed, {len(pending)} to review "
            f"({jobs} at a time, sandbox: {enforcement.mode})")
    if backend == "k8s":
        from labkit.review.kube_batch import review_on_cluster

        summary.records = review_on_cluster(pending, hidden=hidden, policy=policy, enforcement=enforcement,
                                            parallel=jobs, options=kube or KubeOptions(), ui=ui)
        return _finish(summary, out)
    pool = ThreadPoolExecutor(max_workers=jobs)
    try:
        futures = [pool.submit(_review_safely, a, d, s, hidden, policy, enforcement, ui) for a, d, s in pending]
        summary.records = [f.result() for f in futures]
    except KeyboardInterrupt:
        # Reviews not started are dropped; running ones finish and write their result,
        # so a rerun resumes exactly where this one stopped.
        ui.note("interrupted: waiting for the reviews already running; rerun to continue")
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return _finish(summary, out)


def _finish(summary: ReviewSummary, out: Path) -> ReviewSummary:
    summary.rows = leaderboard(_all_records(out))
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
    """Files as given; folders become their (non-hidden) files. Every missing path at once."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise NotFoundError(f"no such submission: {', '.join(missing)}")
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        else:
            found.append(path)
    if not found:
        raise NotFoundError("no submissions found in " + ", ".join(map(str, paths)))
    unique = list(dict.fromkeys(p.resolve() for p in found))
    return unique


def _job_dir(out: Path, archive: Path) -> tuple[Path, str]:
    sha = sha256_file(archive) if archive.stat().st_size <= MAX_ARCHIVE_BYTES else "oversized"
    stem = archive.name.removesuffix(".gz").removesuffix(".tar").removesuffix(".tgz")
    return out / "submissions" / f"{_SLUG.sub('_', stem)[:60]}-{sha[:10]}", sha


def _finished(job_dir: Path, hidden: bool) -> dict[str, Any] | None:
    try:
        record = json.loads((job_dir / RESULT).read_text())
    except (OSError, ValueError):
        return None
    same_scope = record.get("grade") is None or record["grade"].get("hidden") == hidden
    return record if record.get("final") and same_scope else None


def _review_safely(archive: Path, job_dir: Path, sha: str, hidden: bool, policy: SandboxPolicy,
                   enforcement: Enforcement, ui: UI) -> dict[str, Any]:
    """Never raises: whatever happens, the submission gets a result.json and reports."""
    try:
        record = _review(archive, job_dir, sha, hidden, policy, enforcement, ui)
    except Exception as exc:  # noqa: BLE001 - one submission's trouble must not stop the batch
        record = _error_record(archive, job_dir, sha, enforcement, f"the reviewer failed on this submission: {exc!r}")
    announce(archive, record, ui)
    return record


def announce(archive: Path, record: dict[str, Any], ui: UI) -> None:
    ui.note(f"{'✓' if record['status'] == 'reviewed' else '✗'} {archive.name}: {record['status']}"
            + (f" {record['score']:g}/{record['max_score']:g}" if record["status"] == "reviewed" else "")
            + (f" — {record['reason'].splitlines()[0]}" if record.get("reason") else ""))


def _review(archive: Path, job_dir: Path, sha: str, hidden: bool, policy: SandboxPolicy,
            enforcement: Enforcement, ui: UI) -> dict[str, Any]:
    oversized = oversized_record(archive, job_dir, sha, enforcement)
    if oversized is not None:
        return oversized
    docker = enforcement.mode == "docker"
    stage(archive, job_dir, sha, hidden, policy, enforcement, root=Path("/review") if docker else job_dir)
    if docker:
        from labkit.catalog import labs_roots

        job_dir.chmod(0o777)  # the container's non-root user (sandbox.yaml `user`) writes here
        for path in job_dir.iterdir():
            path.chmod(0o644)  # and reads the job and the archive
        argv = docker_argv(policy, job_dir=job_dir, labs_roots=labs_roots(), job_file="job.json",
                           name=f"labkit-review-{sha[:12]}")
        env = None
    else:
        argv = worker_argv(job_dir / "job.json")
        env = {**os.environ, "LABKIT_HOME": str(job_dir / "home")}
    if hidden:  # the reviewer's key, to the worker's own environment only (never a file of the job)
        from labkit.grading.review_key import KEY_ENV, review_key

        env = {**(env or os.environ), KEY_ENV: review_key()}
    proc = DEFAULT_RUNNER.run(argv, timeout=policy.total_timeout_s, cwd=job_dir, env=env, check=False)
    (job_dir / "worker.log").write_text(proc.stdout + proc.stderr, encoding="utf-8")
    _stop_leftover_services(job_dir / "home")
    try:
        record = json.loads((job_dir / RESULT).read_text())
    except (OSError, ValueError):
        why = (f"timed out after {policy.total_timeout_s:g}s" if proc.timed_out
               else f"exited with status {proc.returncode} before writing a result")
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-8:])
        return _save(_error_record(archive, job_dir, sha, enforcement, f"the review process {why}\n{tail}"), job_dir)
    record["archive"] = str(archive)  # the reviewer's path, not the worker's copy
    return _save(record, job_dir)


def oversized_record(archive: Path, job_dir: Path, sha: str, enforcement: Enforcement) -> dict[str, Any] | None:
    """An archive too big to read is rejected unread (a fresh job folder holds its row)."""
    shutil.rmtree(job_dir, ignore_errors=True)
    job_dir.mkdir(parents=True)
    if sha != "oversized":
        return None
    record = _error_record(archive, job_dir, sha, enforcement,
                           f"{archive.name}: over {MAX_ARCHIVE_BYTES // 2**20} MB; refused unread")
    record.update(status="rejected", final=True)
    return _save(record, job_dir)


def stage(archive: Path, job_dir: Path, sha: str, hidden: bool, policy: SandboxPolicy, enforcement: Enforcement,
          *, root: Path) -> dict[str, Any]:
    """Copy the archive into its job folder and describe the job for a worker that sees that
    folder as `root` (the folder itself, or its mount in a container or pod)."""
    copy = _SLUG.sub("_", archive.name)[-100:]  # messages name the file the reviewer knows
    shutil.copyfile(archive, job_dir / copy)  # the reviewed bytes, fixed
    host = enforcement.mode == "subprocess"
    job = {"id": job_dir.name, "job_dir": str(root), "archive": str(root / copy),
           "archive_sha256": sha, "hidden": hidden, "policy": policy.to_dict(),
           "confine": {"unshare": enforcement.unshare and host, "cgroup": enforcement.cgroup and host,
                       "hide": _secret_files()},
           "sandbox": {**enforcement.to_dict(), "limits": policy.to_dict()}}
    write_json_atomic(job_dir / "job.json", job)
    return job


def _secret_files() -> list[str]:
    """Reviewer files a candidate command must not read, though the sandbox leaves the disk readable."""
    from labkit.grading.review_key import key_path

    return [str(key_path())]


def worker_argv(job_path: Path) -> list[str]:
    return [sys.executable, "-m", "labkit.review.worker", str(job_path)]


def _error_record(archive: Path, job_dir: Path, sha: str, enforcement: Enforcement, reason: str) -> dict[str, Any]:
    return {"id": job_dir.name, "archive": str(archive), "archive_sha256": sha, "status": "error", "final": False,
            "reason": reason, "lab": "", "seed": None, "score": 0.0, "max_score": 0.0, "percent": 0.0,
            "complete": False, "flags": [], "notes": [], "sandbox": enforcement.to_dict()}


def _save(record: dict[str, Any], job_dir: Path) -> dict[str, Any]:
    write_reports(record, job_dir)
    write_json_atomic(job_dir / RESULT, record)
    return record


def _stop_leftover_services(home: Path) -> None:
    """A worker killed mid-review leaves its services running (they have their own sessions)."""
    try:
        session = json.loads((home / "session.json").read_text())
    except (OSError, ValueError):
        return
    for service in session.get("services", {}).values():
        DEFAULT_RUNNER.terminate(int(service["pid"]), grace_s=5)
    (home / "session.json").unlink(missing_ok=True)


def _all_records(out: Path) -> list[dict[str, Any]]:
    records = []
    for path in sorted((out / "submissions").glob(f"*/{RESULT}")):
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return records
