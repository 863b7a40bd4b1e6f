"""`labkit review --sandbox docker` for real: opt-in, since it needs Docker and an image.

Set LABKIT_REVIEW_TEST_IMAGE to an image built from tests/fixtures/review-image (or the
real labkit/grader rebuilt from this checkout). The adder lab's submissions run inside
`docker run --network none --read-only --pids-limit ... --user 10001:10001`.
"""

from __future__ import annotations

import os

import pytest

from labkit import lifecycle
from labkit.bundles.submit import build_submission
from labkit.review.batch import review_submissions
from labkit.sandbox.enforcement import docker_ready
from labkit.sandbox.limits import SandboxPolicy
from labkit.ui import UI
from tests.unit.test_review_corpus import CASES, SUM, Base

IMAGE = os.environ.get("LABKIT_REVIEW_TEST_IMAGE", "")
pytestmark = pytest.mark.skipif(not IMAGE or not docker_ready(SandboxPolicy(image=IMAGE))[0],
                                reason="set LABKIT_REVIEW_TEST_IMAGE to a built review image (Docker needed)")


def test_reviews_run_in_the_container(labkit_home, tmp_path):
    ws = tmp_path / "ws"
    lifecycle.start_lab(lab_id="adder", seed=5, workspace=ws, ui=UI())
    (ws / "adder.py").write_text(SUM)
    lifecycle.stop_lab(ui=UI())
    honest, _ = build_submission(workspace=ws, out=tmp_path / "subs" / "honest.tar.gz")
    base, outside = Base(honest), tmp_path / "outside"
    outside.mkdir()
    for name in ("opens-the-network", "writes-outside-workspace", "fork-bomb", "path-traversal"):
        CASES[name][0](tmp_path / "subs", base, outside)
    summary = review_submissions(submissions=[tmp_path / "subs"], out=tmp_path / "out", jobs=2, ui=UI(),
                                 sandbox="docker", policy=SandboxPolicy(image=IMAGE, pids=128, command_timeout_s=5))
    by_name = {r.archive.rsplit("/", 1)[1]: r.to_dict() for r in summary.records}
    assert {r.sandbox["mode"] for r in summary.records} == {"docker"} and not summary.enforcement.warnings
    for name in ("honest", "network", "escape"):
        assert (by_name[f"{name}.tar.gz"]["status"], by_name[f"{name}.tar.gz"]["score"]) == ("reviewed", 6), name
    assert by_name["forkbomb.tar.gz"]["status"] == "reviewed" and by_name["forkbomb.tar.gz"]["score"] < 6
    assert by_name["traversal.tar.gz"]["status"] == "rejected"
    assert list(outside.iterdir()) == []
