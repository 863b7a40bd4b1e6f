"""The local backend: each submission reviewed by a worker process (or a container) on this machine.

A worker (labkit.review.worker) per submission, in its own job folder, with its own
LABKIT_HOME there: its own session, services' data and ports (taken free, never the
running lab's), so a review of a local lab runs beside the reviewer's own running lab
without touching it. The worker's environment carries none of the variables by which
lab code finds a lab's services (what `. .labkit/env` exports in the reviewer's shell):
a review talks to the services it started, never to the reviewer's.
"""

from __future__ import annotations

import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from labkit.proc import DEFAULT_RUNNER
from labkit.review.jobs import JobFolder, Pending, ReviewRecord, stage
from labkit.review.kube import KubeOptions
from labkit.review.report import announce, save
from labkit.review.sandbox import SandboxPolicy, choose_enforcement, docker_argv
from labkit.ui import UI

# How lab code and the candidate's tools find a running lab: never inherited by a review.
SERVICE_ENV = ("MLFLOW_TRACKING_URI", "PREFECT_API_URL", "KUBECONFIG", "LABKIT_HOME")


class LocalBackend:
    name = "local"

    def __init__(self, *, policy: SandboxPolicy, sandbox: str, kube: KubeOptions | None, ui: UI) -> None:
        self.policy, self.ui = policy, ui
        self.enforcement = choose_enforcement(policy, sandbox=sandbox)
        if self.enforcement.mode == "docker":
            self.policy = replace(policy, image=review_image(policy.image, ui))


    def review(self, pending: list[Pending], *, hidden: bool, parallel: int) -> list[ReviewRecord]:
        from labkit.review.running import reviewer_lab

        running = reviewer_lab()  # read here: the workers' LABKIT_HOME is their own
        pool = ThreadPoolExecutor(max_workers=parallel)
        try:
            futures = [pool.submit(self._review_safely, p, hidden, running) for p in pending]
            records = [f.result() for f in futures]
        except KeyboardInterrupt:
            # Reviews not started are dropped; running ones finish and write their result,
            # so a rerun resumes exactly where this one stopped.
            self.ui.note("interrupted: waiting for the reviews already running; rerun to continue")
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        return records

    def _review_safely(self, pending: Pending, hidden: bool, running: dict | None) -> ReviewRecord:
        """Never raises: whatever happens, the submission gets a result.json and reports."""
        try:
            record = self._review(pending, hidden, running)
        except Exception as exc:  # noqa: BLE001 - one submission's trouble must not stop the batch
            record = save(ReviewRecord.error(None, archive=pending.archive, job_id=pending.folder.name,
                                             sha=pending.sha, sandbox=self.enforcement.to_dict(),
                                             reason=f"the reviewer failed on this submission: {exc!r}"),
                          pending.folder)
        announce(pending.archive, record, self.ui)
        return record

    def _review(self, pending: Pending, hidden: bool, running: dict | None) -> ReviewRecord:
        folder, policy = pending.folder, self.policy
        docker = self.enforcement.mode == "docker"
        job = stage(pending, hidden=hidden, policy=policy, enforcement=self.enforcement,
                    root=Path("/review") if docker else folder.path, running_lab=running)
        if docker:
            from labkit.catalog import labs_roots

            folder.path.chmod(0o777)  # the container's non-root user (sandbox.yaml `user`) writes here
            for path in folder.path.iterdir():
                path.chmod(0o644)  # and reads the job and the archive
            argv = docker_argv(policy, job_dir=folder.path, labs_roots=labs_roots(), job_file=folder.job_file.name,
                               name=f"labkit-review-{pending.sha[:12]}")
            env = None
        else:
            argv = worker_argv(folder.job_file)
            env = worker_env(folder)
        if hidden:  # the reviewer's key, to the worker's own environment only (never a file of the job)
            from labkit.grading.review_key import KEY_ENV, review_key

            env = {**(env or os.environ), KEY_ENV: review_key()}
        proc = DEFAULT_RUNNER.run(argv, timeout=policy.total_timeout_s, cwd=folder.path, env=env, check=False)
        folder.log_file.write_text(proc.stdout + proc.stderr, encoding="utf-8")
        stop_leftover_services(folder)
        record = folder.read_result()
        if record is None:
            why = (f"timed out after {policy.total_timeout_s:g}s" if proc.timed_out
                   else f"exited with status {proc.returncode} before writing a result")
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-8:])
            return save(ReviewRecord.error(job, archive=pending.archive, reason=f"the review process {why}\n{tail}"),
                        folder)
        return save(record.with_(archive=str(pending.archive)), folder)  # the reviewer's path, not the worker's copy


def review_image(base: str, ui: UI) -> str:
    """The containers run this labkit, never the one a grader image was built with: the
    worker and the host share job and record schemas, and a stale image would grade with
    old checks or refuse the job. labkit's review image (the base + this labkit + the lab
    folders, tagged by content) is built on the first Docker review after a change, then
    reused."""
    from labkit.catalog import labs_roots
    from labkit.review.kube_image import ensure_review_image

    image, facts = ensure_review_image(base=base, labs_roots=labs_roots(), progress=ui.note)
    if facts.get("built_s"):
        ui.note(f"built {image} in {facts['built_s']:g} s ({facts.get('size_mb')} MB)")
    return image


def worker_argv(job_path: Path) -> list[str]:
    # -P: the job folder (cwd) holds the submission's files and is never on the import path
    return [sys.executable, "-P", "-m", "labkit.review.worker", str(job_path)]


def worker_env(folder: JobFolder) -> dict[str, str]:
    """The reviewer's environment without a running lab's coordinates, and the job's own home."""
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_ENV}
    return {**env, "LABKIT_HOME": str(folder.home)}


def stop_leftover_services(folder: JobFolder) -> None:
    """A worker killed mid-review leaves its services running (they have their own sessions).
    Only the job's own home is read: the reviewer's session is never touched."""
    session_file = folder.home / "session.json"
    try:
        session = json.loads(session_file.read_text())
    except (OSError, ValueError, RecursionError):
        return
    for service in (session.get("services") or {}).values():
        DEFAULT_RUNNER.terminate(int(service["pid"]), grace_s=5)
    session_file.unlink(missing_ok=True)
