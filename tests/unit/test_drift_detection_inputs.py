"""drift-detection's hidden inputs, without services: they come from the hidden seed (not the
lab seed alone), and nothing a monitor is handed tells one situation from another.

The lab's modules (``support``, ``checks``) run in a child process: their package names
are every lab's, and must not stay cached in this one.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from tests.conftest import REPO

LAB = REPO / "labs" / "drift-detection"

SCRIPT = textwrap.dedent('''
    import hashlib, json, sys
    from pathlib import Path
    import pandas as pd
    from support import data
    from support.provision import predictor, train
    from support.runs import MonitorRunner
    from checks.hidden.batches import hidden_batches
    from checks.hidden.conftest import jobs_for

    population = data.Population.from_seed(2026)
    predict = predictor(train(data.training_set(population), seed=2026))
    reference = data.baseline_reference(population, predict)
    names = {"clean", "subtle", "campaign-alert-day", "one-feature", "configured", "stopped-feed", "steady-missing"}

    def digest(batches):
        return {name: hashlib.sha256(pd.util.hash_pandas_object(b.frame).values.tobytes()).hexdigest()
                for name, b in batches.items()}

    first = hidden_batches(population, predict, reference, 11, names)
    again = hidden_batches(population, predict, reference, 11, names)
    other = hidden_batches(population, predict, reference, 12, names)
    alone = hidden_batches(population, predict, reference, 11, {"subtle"})

    calls = []
    class Done:
        returncode, stdout, stderr, timed_out, duration_s = 0, "", "", False, 0.0
    def run_in_workspace(argv, timeout):
        calls.append(argv)
        return Done()
    root = Path(sys.argv[1]); root.mkdir()
    runner = MonitorRunner(run_in_workspace, root)
    jobs = [job for b in first.values() for job in jobs_for(b, Path("/ws"))]
    runner.run_all(jobs)
    print(json.dumps({
        "first": digest(first), "again": digest(again), "other": digest(other), "alone": digest(alone),
        "details": {n: b.detail for n, b in first.items()}, "other_details": {n: b.detail for n, b in other.items()},
        "rows": [len(b.frame) for b in first.values()],
        "columns": sorted({tuple(b.frame.columns) for b in first.values()}),
        "days": sorted({d for b in first.values() for d in b.frame["timestamp"].str[:10]}),
        "argv": calls,
        # what a monitor could read off a grader's own monitor.yaml and logs folder
        "own_logs": {n: {"keys": sorted(b.config), "threshold": b.config["alert_threshold"],
                         "old_days": sorted(name for name in b.logs if name < "2026-11"),
                         "window_days": len([name for name in b.logs if name >= "2026-11"]),
                         "window_month": b.window["start"][:7]}
                     for n, b in first.items() if b.logs is not None},
    }))
''')


def test_hidden_batches_come_from_the_hidden_seed_and_carry_no_tell(tmp_path):
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "runs")], cwd=LAB, capture_output=True,
                          text=True, timeout=600, env={"PYTHONPATH": str(LAB), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    assert out["first"] == out["again"]  # reproducible for a reviewer with the same key
    assert all(out["first"][n] != out["other"][n] for n in out["first"])  # another key: other data
    assert out["other_details"] != out["details"]  # ...and other parameters
    assert out["alone"]["subtle"] == out["first"]["subtle"]  # drawing fewer kinds changes none
    # No tell: one column layout, one day in the timestamps, row counts from one range.
    assert len(out["columns"]) == 1 and out["days"] == ["2026-10-31"]
    assert all(1400 <= rows <= 2200 for rows in out["rows"]) and len(set(out["rows"])) > 1
    # Every argument is a random name in one flat folder: none names a situation, none repeats.
    paths = [arg for argv in out["argv"] for arg in argv if arg.startswith(str(tmp_path))]
    names = ("clean", "subtle", "campaign", "feature", "configured", "threshold")
    assert paths and not any(word in path for path in paths for word in names)
    assert len(set(paths)) == len(paths) and {p.rsplit("/", 1)[0] for p in paths} == {str(tmp_path / "runs")}
    # The batches with a monitor.yaml and logs of the grader's look alike from there.
    own = out["own_logs"]
    assert set(own) == {"configured", "steady-missing"}
    assert len({json.dumps(o["keys"]) for o in own.values()}) == 1
    assert {o["window_month"] for o in own.values()} == {"2026-11"} and all(4 <= o["window_days"] <= 6 for o in own.values())
    assert all(len(o["old_days"]) == 7 and o["threshold"] in (0.3, 0.35) for o in own.values()), own
