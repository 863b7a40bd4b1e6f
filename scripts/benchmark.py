"""Prints labkit's speed and memory figures; a benchmark, not a test (nothing asserts).

    python scripts/benchmark.py [--lab drift-detection] [--seed 2026] [--runs 5]

Measures: `labkit --help` and `labkit list` latency (median of --runs), start-to-ready
of the lab, visible and hidden grade time, and the peak memory (RSS) of the running
lab's processes — its services plus the grader — sampled every 0.2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    return time.perf_counter() - started, proc


def rss_mb(pids: set[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def descendants(roots: set[int]) -> set[int]:
    """The roots and every process whose process group or ancestry leads to one."""
    parents: dict[int, int] = {}
    groups: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
            groups[int(entry.name)] = int(fields[2])
    found = {pid for pid, group in groups.items() if group in roots} | (roots & parents.keys())
    changed = True
    while changed:
        changed = False
        for pid, parent in parents.items():
            if parent in found and pid not in found:
                found.add(pid)
                changed = True
    return found


class PeakSampler(threading.Thread):
    def __init__(self, roots: set[int]) -> None:
        super().__init__(daemon=True)
        self.roots, self.peak, self.stop = roots, 0.0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, rss_mb(descendants(self.roots | {os.getpid()}) - {os.getpid()}))
            time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lab", default="drift-detection")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    labkit = [sys.executable, "-m", "labkit.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "LABKIT_HOME": str(Path(tmp) / "home")}
        env.pop("LABKIT_LABS_PATH", None)
        figures: dict[str, str] = {}
        for name, argv in (("labkit --help", ["--help"]), ("labkit list", ["list"])):
            times = [timed([*labkit, *argv], env)[0] for _ in range(args.runs)]
            figures[name] = f"{statistics.median(times) * 1000:.0f} ms (median of {args.runs})"

        workspace = Path(tmp) / "ws"
        took, proc = timed([*labkit, "start", args.lab, "--seed", str(args.seed), "--workspace", str(workspace),
                            "--json"], env)
        if proc.returncode != 0:
            sys.exit(f"start failed:\n{proc.stderr}")
        session = json.loads(proc.stdout)
        figures["start to ready"] = f"{took:.1f} s"
        roots = {s["pid"] for s in session["services"].values()}
        figures["lab memory at rest"] = f"{rss_mb(descendants(roots)):.0f} MB RSS"
        sampler = PeakSampler(roots)
        sampler.start()
        try:
            for label, extra in (("grade, visible (starter)", []), ("grade, hidden (starter)", ["--hidden"])):
                took, _ = timed([*labkit, "grade", "--format", "json", *extra], env)
                figures[label] = f"{took:.1f} s"
            subprocess.run([*labkit, "solve"], env=env, capture_output=True, check=True)
            for label, extra in (("grade, visible (solution)", []), ("grade, hidden (solution)", ["--hidden"])):
                took, proc = timed([*labkit, "grade", "--format", "json", *extra], env)
                figures[label] = f"{took:.1f} s ({json.loads(proc.stdout)['percent']:.0f}%)"
        finally:
            sampler.stop.set()
            sampler.join()
            took, _ = timed([*labkit, "stop"], env)
            figures["stop"] = f"{took:.1f} s"
        figures["peak memory while grading"] = f"{sampler.peak:.0f} MB RSS (services + grader + candidate code)"
    width = max(map(len, figures))
    print(f"labkit benchmark: {args.lab}, seed {args.seed}, {os.cpu_count()} cores")
    for name, value in figures.items():
        print(f"  {name:<{width}}  {value}")


if __name__ == "__main__":
    main()
