"""Self-check: the workflows are valid GitHub workflows that call the six stages, and the
pipeline goes through on the repository as it is. Reviewers push more changes through it."""

from __future__ import annotations

import pytest

from labkit.grading import expect
from support import changes
from support.static import STAGES, schema_problems, stage_calls


@pytest.mark.check(
    points=1,
    title="The workflow is valid and calls every stage",
    feedback="GitHub must accept the workflow files, and their jobs must call each `python -m pipeline STAGE`.",
)
def test_workflow_calls_every_stage(workflows, clean_checkout):
    for workflow in workflows:
        problems = schema_problems(workflow.raw)
        expect(not problems, f"GitHub would reject {workflow.rel}: " + "; ".join(problems[:5]))
    missing = [s for s in STAGES if s not in stage_calls(clean_checkout)]
    expect(not missing, "no `run:` step under .github/ calls " + ", ".join(f"`python -m pipeline {s}`" for s in missing))


@pytest.mark.check(
    points=1,
    title="The pipeline goes through on the repository as it is",
    feedback="Pushed to main unchanged, every stage should run and pass, from test to deploy.",
)
def test_pipeline_runs_end_to_end(player):
    run = player.play(changes.unchanged())
    failed = [s for s in STAGES if not (run.stage(s) and run.stage(s).passed)]
    expect(not failed, f"pushed to main unchanged: {run.summary()}{run.failure_output()}")
