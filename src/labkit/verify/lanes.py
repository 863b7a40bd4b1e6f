"""Grading a lab's wrong/ or fair/ corpus in parallel lanes, for labs whose grades mostly
wait (retraining-trigger's scenarios sleep through cooldowns and quiet windows: a grade
keeps one of two cores about half busy).

A lab opts in with ``grading.verify_lanes: N``. The caller grades its share of the
entries in its own running lab; each other lane is a process of its own
(``python -m labkit.verify.lanes``) with a running lab of its own in a labkit home of
its own (own services, own ports), which prints its findings as one JSON line. A lane
that fails to start or dies is a finding per entry it had, never a pass.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from labkit.catalog import Lab, load_lab
from labkit.verify.report import Finding

LANE_TIMEOUT_S = 3 * 3600.0
_MARK = "labkit-lane-findings: "


def split(entries: list[tuple[str, dict]], lanes: int) -> list[list[tuple[str, dict]]]:
    """Round-robin, so each lane gets a like share of the corpus's order; always one share
    at least (the caller's, maybe empty)."""
    lanes = max(1, min(lanes, len(entries)))
    return [entries[i::lanes] for i in range(lanes)]


class Lane:
    """One lane process, started at once; ``findings()`` waits for it."""

    def __init__(self, lab: Lab, seed: int, kind: str, names: list[str]) -> None:
        self.lab, self.kind, self.names = lab, kind, names
        self.home = Path(tempfile.mkdtemp(prefix=f"labkit-lane-{lab.id}-"))
        self.log = self.home / "lane.log"
        env = {**os.environ, "LABKIT_HOME": str(self.home / "home")}  # the same labs, a home of its own
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-P", "-m", "labkit.verify.lanes", lab.id, str(seed), kind, *names],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.home,
                start_new_session=True)

    def findings(self, timeout: float = LANE_TIMEOUT_S) -> list[Finding]:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
        text = self.log.read_text(errors="replace")
        for line in reversed(text.splitlines()):
            if line.startswith(_MARK):
                return [Finding(**f) for f in json.loads(line[len(_MARK):])]
        tail = "\n".join(text.strip().splitlines()[-15:])
        return [Finding(self.kind, name, False, f"its lane ended (exit {self.proc.returncode}) without a finding",
                        tail) for name in self.names]

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, 15)
                self.proc.wait(timeout=60)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(self.proc.pid, 9)
                self.proc.wait()


@contextmanager
def other_lanes(lab: Lab, seed: int, kind: str, shares: list[list[tuple[str, dict]]]) -> Iterator[list[Lane]]:
    """Lanes for ``shares`` (the caller grades its own share meanwhile); stopped on the way out."""
    lanes = [Lane(lab, seed, kind, [name for name, _ in share]) for share in shares if share]
    try:
        yield lanes
    finally:
        for lane in lanes:
            lane.stop()
            shutil.rmtree(lane.home, ignore_errors=True)


def main(argv: list[str]) -> int:
    """A lane: start the lab in this process's LABKIT_HOME, grade the named entries, print
    the findings (the last line)."""
    from labkit.ui import UI
    from labkit.verify.entries import check_entry, corpus
    from labkit.verify.labrun import running_lab

    lab_id, seed, kind, names = argv[0], int(argv[1]), argv[2], argv[3:]
    lab = load_lab(lab_id)
    meta = dict(corpus(lab, kind))
    with running_lab(lab, seed, UI(), root=Path(os.environ["LABKIT_HOME"]).parent) as run:
        found = [check_entry(lab, run, kind, name, meta[name]) for name in names]
    print(_MARK + json.dumps([asdict(f) for f in found]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
