"""The training-cicd lab reads workflows the way GitHub does: fast checks of its reader.

The lab's graders are proven end to end in tests/labs (real MLflow, real pipelines);
these pin down the pure parts (expressions, needs order, pins, secrets) in milliseconds.
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("check_jsonschema")

LAB = Path(__file__).resolve().parents[2] / "labs" / "training-cicd"
LEAKED = ("mlf-ci-4f9d2c7e1b8a60357c21",)
TOKEN = "MLFLOW_TRACKING_TOKEN"


@pytest.fixture
def lab(monkeypatch: pytest.MonkeyPatch):
    """The lab's support package, imported fresh (other labs also call theirs `support`)."""
    for name in [m for m in sys.modules if m == "support" or m.startswith("support.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.syspath_prepend(str(LAB))
    yield importlib.import_module("support.workflow"), importlib.import_module("support.expressions")
    for name in [m for m in sys.modules if m == "support" or m.startswith("support.")]:
        del sys.modules[name]


def solved(tmp_path: Path, wrong: str | None = None) -> Path:
    root = tmp_path / "ws"
    shutil.copytree(LAB / "starter", root)
    shutil.copytree(LAB / "solution", root, dirs_exist_ok=True)
    if wrong:
        subprocess.run(["git", "apply", str(LAB / "wrong" / f"{wrong}.diff")], cwd=root, check=True)
    return root


def test_expressions_follow_github(lab):
    _, ex = lab
    context = {"github": {"event_name": "push", "ref": "refs/heads/main"}, "needs": {"a": {"result": "failure"}}}
    ok = {"success": True, "failure": False, "always": True, "cancelled": False}
    failed = {**ok, "success": False, "failure": True}
    assert ex.evaluate_condition("github.event_name == 'push' && github.ref == 'refs/heads/main'", context, ok)
    assert not ex.evaluate_condition("${{ github.event_name == 'pull_request' }}", context, ok)
    assert not ex.evaluate_condition("github.ref == 'refs/heads/main'", context, failed)  # implied success()
    assert ex.evaluate_condition("always()", context, failed)
    assert ex.evaluate_condition("!cancelled() && needs.a.result == 'failure'", context, failed)
    assert ex.evaluate_condition("startsWith(github.ref, 'refs/heads/')", context, ok)
    assert ex.substitute("sha=${{ github.ref }} x=${{ vars.NONE }}", context) == "sha=refs/heads/main x="
    with pytest.raises(ex.ExpressionError):
        ex.evaluate("hashFiles('x') == ''", context, ok)


def test_the_starter_workflow_shows_every_planted_fault(lab):
    wf, _ = lab
    root = LAB / "starter"
    workflow = wf.pipeline_workflow(root)
    assert wf.schema_problems(workflow.raw) == []  # GitHub accepts it: the faults are in what it does
    assert wf.triggers(workflow.raw) == {"workflow_dispatch"}
    assert len(wf.order_problems(workflow)) == len(wf.STAGES)
    assert len(wf.unpinned(wf.action_references(root))) == 4
    assert len(wf.secret_problems(workflow, root, LEAKED, TOKEN)) == 2


def test_the_solution_workflow_passes_every_structural_rule(lab, tmp_path):
    wf, _ = lab
    root = solved(tmp_path)
    workflow = wf.pipeline_workflow(root)
    assert wf.schema_problems(workflow.raw) == []
    assert {"push", "pull_request"} <= wf.triggers(workflow.raw)
    assert wf.order_problems(workflow) == []
    assert wf.unpinned(wf.action_references(root)) == []
    assert wf.secret_problems(workflow, root, LEAKED, TOKEN) == []
    assert [j.id for j in workflow.execution_order()] == list(wf.STAGES)


@pytest.mark.parametrize(("wrong", "rule"), [
    ("deploy_skips_gate", "order"), ("validation_after_training", "order"), ("unpinned_action", "pins"),
    ("secret_inlined", "secrets"), ("push_only", "triggers"),
])
def test_wrong_workflows_break_the_rule_they_name(lab, tmp_path, wrong, rule):
    wf, _ = lab
    root = solved(tmp_path, wrong)
    workflow = wf.pipeline_workflow(root)
    problems = {
        "order": wf.order_problems(workflow),
        "pins": wf.unpinned(wf.action_references(root)),
        "secrets": wf.secret_problems(workflow, root, LEAKED, TOKEN),
        "triggers": [] if "pull_request" in wf.triggers(workflow.raw) else ["no pull_request"],
    }
    assert problems.pop(rule), f"{wrong} should break the {rule} rule"
    assert not any(problems.values()), f"{wrong} breaks other rules too: {problems}"


def test_a_workflow_github_would_reject_is_reported(lab, tmp_path):
    wf, _ = lab
    (tmp_path / "w.yml").write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps: []\n")
    assert wf.schema_problems(wf.load_yaml(tmp_path / "w.yml")) == ["jobs.a.steps: [] should be non-empty"]
