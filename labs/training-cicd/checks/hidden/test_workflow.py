"""Reviewer checks: the workflow files, as GitHub and a security review would read them."""

from __future__ import annotations

import pytest

from labkit.grading import expect
from support.provision import LEAKED_TOKEN
from support.static import events, schema_problems, secret_problems, unpinned


@pytest.mark.check(
    points=1,
    title="The workflow validates against GitHub's workflow schema",
    feedback="A workflow GitHub cannot parse never runs; validate it against the workflow schema.",
)
def test_workflow_matches_github_schema(workflows):
    for workflow in workflows:
        problems = schema_problems(workflow.raw)
        expect(not problems, f"{workflow.rel} does not match GitHub's workflow schema: " + "; ".join(problems[:5]))


@pytest.mark.check(
    points=1,
    title="Runs on every push and pull request",
    feedback="A pipeline run by hand protects nothing: changes should go through it on their own.",
)
def test_runs_on_push_and_pull_request(workflows, pushes):
    on = events(workflows)
    missing = [event for event in ("push", "pull_request") if event not in on]
    expect(not missing, f"no workflow runs on {' or '.join(missing)} (they run on: {sorted(on) or 'nothing'})")
    run = pushes["pull-request"]
    expect(run.ran("test"), f"a pull request into main ran no stage: {run.summary()}")


@pytest.mark.check(
    points=1,
    title="Every action is pinned to a full commit SHA",
    feedback="A tag or a branch can be moved to other code; pin third-party actions immutably.",
)
def test_actions_pinned_to_commit_sha(clean_checkout):
    bad = unpinned(clean_checkout)
    expect(not bad, "actions referenced by a tag or branch that can move: " + "; ".join(bad))


@pytest.mark.check(
    points=1,
    title="No credential in plain text; secrets come from the repository's secrets",
    feedback="Credentials belong in the repository's secrets, read through ${{ secrets.* }}, never in files.",
)
def test_no_plaintext_secrets(clean_checkout, pushes):
    problems = secret_problems(clean_checkout, (LEAKED_TOKEN,))
    expect(not problems, "; ".join(problems))
    run = pushes["good"]
    blind = sorted({f"{s.stage} (job {s.job})" for s in run.stages
                    if s.stage in ("train", "evaluate", "register", "deploy") and not s.saw_secret})
    expect(not blind, "on a push to main, these stages talk to MLflow without MLFLOW_TRACKING_TOKEN holding the "
                      "repository secret MLFLOW_TRACKING_TOKEN: " + ", ".join(blind))
