"""Reviewer checks: the workflow file, as GitHub and a security review would read it."""

from __future__ import annotations

import pytest

from labkit.grading import expect
from support.ci import TOKEN_VAR
from support.provision import LEAKED_TOKEN
from support.workflow import (
    CHAIN,
    action_references,
    order_problems,
    schema_problems,
    secret_problems,
    triggers,
    unpinned,
)


@pytest.mark.check(
    points=1,
    title="The workflow validates against GitHub's workflow schema",
    feedback="A workflow GitHub cannot parse never runs; validate it against the workflow schema.",
)
def test_workflow_matches_github_schema(workflow):
    problems = schema_problems(workflow.raw)
    expect(not problems, f"{workflow.rel} does not match GitHub's workflow schema: " + "; ".join(problems[:5]))


@pytest.mark.check(
    points=1,
    title="Runs on every push and pull request",
    feedback="A pipeline run by hand protects nothing: changes should go through it on their own.",
)
def test_runs_on_push_and_pull_request(workflow):
    on = triggers(workflow.raw)
    missing = [event for event in ("push", "pull_request") if event not in on]
    expect(not missing, f"{workflow.rel} does not run on {' or '.join(missing)} (it runs on: {sorted(on) or 'nothing'})")


@pytest.mark.check(
    points=2,
    title="Stages wait for the ones before them",
    feedback="Nothing may train before the tests and the data check passed, nor deploy before the gate.",
)
def test_stages_run_in_order(workflow):
    problems = order_problems(workflow)
    expect(not problems, f"the order {CHAIN} is not enforced: " + "; ".join(problems))


@pytest.mark.check(
    points=1,
    title="Every action is pinned to a full commit SHA",
    feedback="A tag or a branch can be moved to other code; pin third-party actions immutably.",
)
def test_actions_pinned_to_commit_sha(clean_checkout):
    bad = unpinned(action_references(clean_checkout))
    expect(not bad, "actions referenced by a tag or branch that can move: " + "; ".join(bad))


@pytest.mark.check(
    points=1,
    title="No credential in plain text; secrets come from the repository's secrets",
    feedback="Credentials belong in the repository's secrets, read through ${{ secrets.* }}, never in files.",
)
def test_no_plaintext_secrets(workflow, clean_checkout):
    problems = secret_problems(workflow, clean_checkout, (LEAKED_TOKEN,), TOKEN_VAR)
    expect(not problems, "; ".join(problems))
