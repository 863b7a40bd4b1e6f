"""Prints labkit's speed and memory figures; a benchmark, not a test (nothing asserts).

    python scripts/benchmark.py [--lab all|LAB ...] [--seed 2026] [--runs 5]

Run it with LABKIT_WARM=0 too, for the candidate commands' cold figures beside the warm ones.

Measures: `labkit --help` and `labkit list` latency (median of --runs); then for every lab
(default: every lab whose runtime this machine has): start-to-ready, visible and hidden
grade time of the starter and of the solution, one single-check grade of the solution,
and beside them the bare cost (the candidate's program run once by hand on one
scenario's input, where the lab names such a command below) and the ratio grade / bare;
and the peak memory (RSS) of the running lab's processes (services plus grader), sampled
every 0.2 s. The load average is printed with the figures: on a busy machine they are not
comparable with an idle run's.
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


def timed(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=cwd)
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


# The candidate's program on one scenario's input, run by hand in the solved workspace: what
# a grade costs at the least. (Labs that serve or deploy have no one-shot program.)
BARE = {
    "drift-detection": ["python", "monitor.py", "data/production/2026-10-25.csv"],
    "training-cicd": ["python", "-m", "pipeline", "validate"],
}
# One hidden check per lab for the single-check figure: the one whose scenario is cheapest.
SINGLE = {
    "drift-detection": "test_no_false_alarm_on_clean_batch",
    "retraining-trigger": "test_clean_batches_start_no_retrain",
    "training-cicd": "test_failing_unit_test_stops_training",
    "broken-deployment": "test_image_is_pinned",
}


def labs_here(labkit: list[str], env: dict[str, str]) -> list[str]:
    """Every lab with a runtime this machine can run (kind labs need Docker and kind)."""
    from labkit.runtimes import get_runtime

    proc = subprocess.run([*labkit, "list", "--json"], env=env, capture_output=True, text=True, check=True)
    return [lab["id"] for lab in json.loads(proc.stdout)["labs"]
            if any(get_runtime(r).unavailable_reason() is None for r in lab["runtimes"])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lab", nargs="+", default=["all"])
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
        report("labkit", figures)
        for lab in labs_here(labkit, env) if args.lab == ["all"] else args.lab:
            report(f"{lab}, seed {args.seed}", bench_lab(lab, args.seed, labkit, env, Path(tmp) / lab))


def report(title: str, figures: dict[str, str]) -> None:
    width = max(map(len, figures))
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    from labkit.warm.client import warm_enabled

    warm = "warm where the lab preloads" if warm_enabled() else "cold (LABKIT_WARM=0)"
    print(f"labkit benchmark: {title} ({os.cpu_count()} cores, load {load}; candidate commands {warm})", flush=True)
    for name, value in figures.items():
        print(f"  {name:<{width}}  {value}", flush=True)


def bench_lab(lab: str, seed: int, labkit: list[str], env: dict[str, str], tmp: Path) -> dict[str, str]:
    figures: dict[str, str] = {}
    workspace = tmp / "ws"
    took, proc = timed([*labkit, "start", lab, "--seed", str(seed), "--workspace", str(workspace),
                        "--json"], env)
    if proc.returncode != 0:
        return {"start": f"failed (exit {proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}"}
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
        hidden_s = 0.0
        for label, extra in (("grade, visible (solution)", []), ("grade, hidden (solution)", ["--hidden"])):
            took, proc = timed([*labkit, "grade", "--format", "json", *extra], env)
            figures[label] = f"{took:.1f} s ({json.loads(proc.stdout)['percent']:.0f}%)"
            hidden_s = took
        if lab in SINGLE:
            took, _ = timed([*labkit, "grade", "--hidden", "--format", "json", "--check", SINGLE[lab]], env)
            figures["grade, one hidden check"] = f"{took:.1f} s ({SINGLE[lab]}; {took / hidden_s:.2f} of a full grade)"
        if lab in BARE:
            argv = [sys.executable if a == "python" else a for a in BARE[lab]]
            urls = {name: info["url"] for name, info in session["services"].items()}
            bare_env = {**env, **({"MLFLOW_TRACKING_URI": urls["mlflow"]} if "mlflow" in urls else {})}
            took, proc = timed(argv, bare_env, cwd=workspace)
            figures["bare: the program once by hand"] = (
                f"{took:.1f} s (`{' '.join(BARE[lab])}`, exit {proc.returncode}); "
                f"hidden grade / bare = {hidden_s / took:.0f}")
    finally:
        sampler.stop.set()
        sampler.join()
        took, _ = timed([*labkit, "stop"], env)
        figures["stop"] = f"{took:.1f} s"
    figures["peak memory while grading"] = f"{sampler.peak:.0f} MB RSS (services + grader + candidate code)"
    return figures


if __name__ == "__main__":
    main()
