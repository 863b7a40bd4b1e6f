"""The review pod's command: ``python -m labkit.review.kube_entry /submission /review``.

Joins the archive's parts (Secrets, mounted read-only at /submission) into the writable
review folder, checks them against the sha256 the Job was made for, runs the same
worker as the local backend, and prints the result record as the log's last lines
(labkit.review.kube.encode_result), where `labkit review --backend k8s` reads it.
Exits 0 whenever a record was printed, rejections included: the Job fails only when
the review itself could not run, which the reviewer sees as an error row.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from labkit.review.jobs import JobFolder, ReviewJob, read_job
from labkit.review.kube import encode_result, part_key


def assemble(submission: Path, review: Path) -> ReviewJob:
    job = read_job(submission / "job.json")
    archive = review / Path(job.archive).name
    digest = hashlib.sha256()
    with open(archive, "wb") as out:
        index = 0
        while (submission / part_key(index)).is_file():
            chunk = (submission / part_key(index)).read_bytes()
            digest.update(chunk)
            out.write(chunk)
            index += 1
    if digest.hexdigest() != job.archive_sha256:
        raise SystemExit(f"the archive's parts do not add up to sha256 {job.archive_sha256} "
                         f"({index} parts, sha256 {digest.hexdigest()})")
    return job.at(review, archive)


def main(submission: str, review: str) -> int:
    from labkit.review.worker import review_one

    job = assemble(Path(submission), Path(review))
    print(f"reviewing {Path(job.archive).name} (sha256 {job.archive_sha256[:12]})", flush=True)
    record = review_one(job)
    crash = JobFolder(Path(review)).crash_file
    if crash.is_file():  # the local backend keeps it in the job folder; here the log is all that comes back
        print(crash.read_text(), file=sys.stderr, flush=True)
    sys.stdout.write(encode_result(record.to_dict(), job.archive_sha256))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
