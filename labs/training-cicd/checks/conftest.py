"""Fixtures of the training-cicd checks, on top of the ones labkit provides.

The grader never runs the candidate's pipeline in the workspace itself: every run is a
clean checkout (a fresh git repository) with a change committed on top, played through
the candidate's workflows on act (a GitHub Actions engine) as GitHub would play a push
to main or a pull request.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from support import changes, data
from support.ci import PipelinePlayer, make_checkout
from support.static import WorkflowError, WorkflowFile, read_workflows


@pytest.fixture(scope="session")
def shipments(seed: int) -> data.Shipments:
    return data.Shipments.from_seed(seed)


@pytest.fixture(scope="session")
def clean_checkout(workspace: Path, tmp_path_factory) -> Path:
    """The workspace as a repository would hold it (no build/, caches or labkit files)."""
    repo, _ = make_checkout(workspace, tmp_path_factory.mktemp("checkout") / "repo", changes.unchanged())
    return repo


@pytest.fixture(scope="session")
def workflows(clean_checkout: Path) -> list[WorkflowFile]:
    try:
        return read_workflows(clean_checkout)
    except WorkflowError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def player(run_in_workspace, workspace, tmp_path_factory, mlflow_client, mlflow_tracking_uri) -> PipelinePlayer:
    return PipelinePlayer(run_in_workspace, workspace, tmp_path_factory.mktemp("pipelines"), mlflow_client,
                          mlflow_tracking_uri)
