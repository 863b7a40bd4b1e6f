"""`labkit submit`: the archive carries every timestamp, tool version and hash a reviewer needs."""

from __future__ import annotations

import json
import tarfile

from labkit import __version__, lifecycle
from labkit.bundles.submit import submit_lab
from labkit.grading.grade import grade_lab
from labkit.ui import UI
from labkit.workspace import sha256_file


def test_submission_records_start_each_grade_submit_tools_and_protected_hashes(labkit_home, tmp_path):
    ui = UI()
    ws = tmp_path / "ws"
    lifecycle.start_lab(lab_id="adder", seed=4, workspace=ws, ui=ui)
    original = sha256_file(ws / "data" / "numbers.txt")
    grade_lab(hidden=False, fmt="json", out=None, ui=ui)
    grade_lab(hidden=True, fmt="json", out=None, ui=ui)
    (ws / "data" / "numbers.txt").write_text("1 2 3 4 5\n")  # a protected file
    lifecycle.solve_lab()
    path, record = submit_lab(workspace=None, out=tmp_path / "sub.tar.gz", grade_first=True, ui=ui)

    stamps = record["timestamps"]
    assert stamps["rendered_at"] and stamps["session_started_at"] and stamps["submitted_at"]
    assert [g["hidden"] for g in stamps["grades"]] == [False, True, False]  # the pre-submit grade too
    assert stamps["grades"][-1]["score"] == stamps["grades"][-1]["max_score"] == 2
    assert record["tools"]["labkit"] == __version__ and record["tools"]["pytest"]
    assert record["integrity"]["flags"] == ["protected file changed: data/numbers.txt"]

    with tarfile.open(path) as archive:
        names = set(archive.getnames())
        integrity = json.loads(archive.extractfile("integrity.json").read())
        diff = archive.extractfile("changes.diff").read().decode()
    assert {"submission.json", "integrity.json", "changes.diff", "last-grade.json",
            "workspace/adder.py", "workspace/.labkit/manifest.json"} <= names
    assert integrity["protected"]["data/numbers.txt"]["rendered"] == original
    assert integrity["protected"]["data/numbers.txt"]["current"] == sha256_file(ws / "data" / "numbers.txt")
    assert integrity["rendered"]["adder.py"] != integrity["current"]["adder.py"]
    assert "+print(int(sys.argv[1]) + int(sys.argv[2]))" in diff
