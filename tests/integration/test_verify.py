"""`labkit verify` on a small lab of labkit's own: every verdict it gives can go either way,
so each is shown both ways here (a survivor, an equivalent, a starter over its limit)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from labkit.cli import main
from labkit.verify import verify_lab
from labkit.verify.mutants import solution_mutants
from labkit.catalog import load_lab
from labkit.ui import UI
from tests.conftest import FIXTURE_LABS

pytestmark = pytest.mark.integration

SOLUTION = "import sys\n\nVERBOSE = False\nprint(int(sys.argv[1]) + int(sys.argv[2]))\n"
WRONG = """--- a/adder.py
+++ b/adder.py
@@ -3,2 +3,2 @@
 VERBOSE = False
-print(int(sys.argv[1]) + int(sys.argv[2]))
+print(abs(int(sys.argv[1]) - int(sys.argv[2])))
"""


@pytest.fixture
def lab(tmp_path, monkeypatch):
    root = tmp_path / "labs"
    shutil.copytree(FIXTURE_LABS / "adder", root / "adder")
    spec = root / "adder" / "lab.yaml"
    spec.write_text(spec.read_text().replace("  timeout_s: 60", "  timeout_s: 60\n  max_starter_percent: 60"))
    (root / "adder" / "solution" / "adder.py").write_text(SOLUTION)
    (root / "adder" / "wrong" / "swapped_operands_minus.patch").write_text(WRONG)
    monkeypatch.setenv("LABKIT_LABS_PATH", str(root))
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path / "home"))
    return root / "adder"


def test_mutants_are_made_only_of_the_lines_the_solution_changes(lab, tmp_path):
    starter = tmp_path / "starter"
    shutil.copytree(lab / "starter", starter)
    mutants = solution_mutants(load_lab("adder"), starter)
    assert mutants and {m.line for m in mutants} == {3, 4}  # not `import sys`, which the starter has
    ids = {m.id.split(":")[2] for m in mutants}
    assert {"ReplaceBinaryOperator_Add_Sub", "ReplaceFalseWithTrue", "NumberReplacer"} <= ids
    sub = next(m for m in mutants if "Add_Sub" in m.id)
    assert "print(int(sys.argv[1]) - int(sys.argv[2]))" in sub.text


def test_a_surviving_mutant_fails_verification_until_it_is_explained(lab, tmp_path):
    report = verify_lab(lab_id="adder", seeds=[3], repeats=1, mutants=None, ui=UI())
    sections = {(f.section, f.name): f for f in report.findings}
    assert sections[("starter", "seed 3")].ok and sections[("solution", "seed 3 grade 1")].ok
    assert sections[("wrong", "swapped_operands_minus")].ok
    survivors = [m for m in report.mutants if m.outcome == "survived"]
    assert [m.id.split(":")[2] for m in survivors] == ["ReplaceFalseWithTrue"], report.render()
    assert "+VERBOSE = True" in survivors[0].detail
    assert report.count("killed") >= 3 and not report.ok and "NOT verified" in report.render()

    (lab / "mutants").mkdir()
    (lab / "mutants" / "equivalent.yaml").write_text(f"{survivors[0].id}: VERBOSE is never read\n")
    again = verify_lab(lab_id="adder", seeds=[3], repeats=1, mutants=None, ui=UI())
    assert again.count("survived") == 0 and again.count("equivalent") == 1 and again.ok, again.render()
    assert again.kill_rate == 1.0


def test_mutants_only_grades_the_solution_and_its_mutants_each_until_its_first_fail(lab, capsys):
    code = main(["verify", "adder", "--seed", "3", "--repeats", "1", "--mutants", "all", "--mutants-only", "--json"])
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert code == 1 and {f["section"] for f in doc["findings"]} == {"solution"}  # no starter, no wrong/
    killed = [m for m in doc["mutants"]["outcomes"] if m["outcome"] == "killed"]
    assert killed and doc["mutants"]["survived"] == 1
    # one failed check is the verdict: the checks after it did not run
    assert all(m["detail"].count(",") == 0 and m["seconds"] > 0 for m in killed), killed
    # each verdict shows as it comes, before the report
    assert "  killed in " in captured.err and "  survived in " in captured.err, captured.err


def test_named_mutants_are_graded_even_when_explained_and_an_unknown_id_is_refused(lab, tmp_path, capsys):
    mutants = solution_mutants(load_lab("adder"), lab / "starter")
    survivor = next(m for m in mutants if "ReplaceFalseWithTrue" in m.id)
    killer = next(m for m in mutants if "Add_Sub" in m.id)
    (lab / "mutants").mkdir()
    (lab / "mutants" / "equivalent.yaml").write_text(f"{survivor.id}: VERBOSE is never read\n")
    code = main(["verify", "adder", "--seed", "3", "--repeats", "1", "--mutants-only", "--json",
                 "--mutant", killer.id, "--mutant", survivor.id])
    doc = json.loads(capsys.readouterr().out)
    outcomes = {m["id"]: m["outcome"] for m in doc["mutants"]["outcomes"]}
    assert outcomes == {killer.id: "killed", survivor.id: "survived"} and code == 1, doc["mutants"]

    assert main(["verify", "adder", "--seed", "3", "--repeats", "1", "--mutant", "monitor.py:1:AddNot:9"]) == 2
    assert "no mutant monitor.py:1:AddNot:9" in capsys.readouterr().err


def test_a_starter_over_its_limit_and_a_wrong_fix_that_passes_are_reported(lab, capsys):
    spec = lab / "lab.yaml"
    spec.write_text(spec.read_text().replace("max_starter_percent: 60", "max_starter_percent: 10"))
    (lab / "wrong" / "index.yaml").write_text(
        "swapped_operands_minus:\n  description: subtracts\n  must_fail: [test_data_file]\n")
    code = main(["verify", "adder", "--seed", "3", "--repeats", "1", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1 and doc["ok"] is False
    failed = {(f["section"], f["name"]) for f in doc["findings"] if not f["ok"]}
    assert failed == {("starter", "seed 3"), ("wrong", "swapped_operands_minus")}


def test_a_corpus_in_two_lanes_is_judged_entry_by_entry_as_in_one(lab, capsys):
    """verify_lanes: 2 grades the second entry in a lane of its own (a process with a lab
    of its own): its verdicts come back, a wrong fix that passes included."""
    spec = lab / "lab.yaml"
    spec.write_text(spec.read_text().replace("  timeout_s: 60", "  timeout_s: 60\n  verify_lanes: 2"))
    (lab / "wrong" / "passes_anyway.patch").write_text(WRONG.replace("abs(int(sys.argv[1]) - int(sys.argv[2]))",
                                                                      "int(sys.argv[2]) + int(sys.argv[1])"))
    (lab / "wrong" / "index.yaml").write_text(
        "swapped_operands_minus:\n  description: subtracts\n  must_fail: [test_seeded_sums]\n"
        "passes_anyway:\n  description: adds the other way round, which is right\n  must_fail: [test_seeded_sums]\n")
    code = main(["verify", "adder", "--seed", "3", "--repeats", "1", "--json"])
    doc = json.loads(capsys.readouterr().out)
    wrong = {f["name"]: f for f in doc["findings"] if f["section"] == "wrong"}
    assert set(wrong) == {"swapped_operands_minus", "passes_anyway"} and code == 1
    assert wrong["swapped_operands_minus"]["ok"] and not wrong["passes_anyway"]["ok"], wrong
    assert "should fail, was pass" in wrong["passes_anyway"]["detail"]


def test_verify_rejects_bad_arguments_without_a_traceback(lab, capsys):
    assert main(["verify", "adder", "--mutants", "many"]) == 2
    assert "--mutants takes a number" in capsys.readouterr().err
    assert main(["verify", "no-such-lab"]) == 3


def test_every_operator_labkit_names_exists_in_the_pinned_cosmic_ray():
    from cosmic_ray.plugins import operator_names

    from labkit.verify.mutants import PYTHON_OPERATORS

    assert set(PYTHON_OPERATORS) <= set(operator_names())
