"""`labkit review --sandbox docker` for real: the whole bad-input corpus, reviewed in containers.

The image is labkit's own review image (labkit.review.kube_image) on the bare Python base
(labkit/python:3.11-slim, built by `labkit offline prepare`), which the adder test lab
needs no more than; LABKIT_REVIEW_TEST_IMAGE names another. Skipped where Docker or the
base is missing, a failure instead under LABKIT_REQUIRE_CLUSTER=1 (CI, which has both).

Each submission runs inside `docker run --network none --read-only --pids-limit ...
--user 10001:10001`, and each candidate command inside it in namespaces of its own.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from labkit.review.batch import review_submissions
from labkit.sandbox.enforcement import docker_ready
from labkit.sandbox.limits import SandboxPolicy
from labkit.ui import UI
from tests.conftest import FIXTURE_LABS, REQUIRE_ENV
from tests.unit.test_review_corpus import CASES, build_corpus, peeks_at, reviewed

BASE = "labkit/python:3.11-slim"
# Inside the container: the lab folders at /labs/N, labkit installed in /opt/venv, the job at /review.
CONTAINER_PEEK = peeks_at("peek-in-container", [
    "/labs/*/adder/checks/hidden/*.py", "/labs/*/adder/solution/*.py", "/labs/*/adder/checks/hidden",
    "/opt/venv/lib/python3*/site-packages/labkit/*.py", "/review/*.json", "/review/*.tar.gz"])
DOCKER_CASES = {**CASES, "reads-the-hidden-checks-in-the-container": (CONTAINER_PEEK, reviewed(score=6))}


@pytest.fixture(scope="module")
def image() -> str:
    """The grader base the review builds its image on (this labkit + the lab folders)."""
    from labkit.kube.images import image_exists

    base = os.environ.get("LABKIT_REVIEW_TEST_IMAGE") or BASE
    ok, why = docker_ready(SandboxPolicy(image=base))
    if not ok or not image_exists(base):
        (pytest.fail if os.environ.get(REQUIRE_ENV) else pytest.skip)(
            f"no Docker review possible here: {why or f'no image {base} (labkit offline prepare)'}")
    return base


@pytest.fixture(scope="module")
def corpus(image, tmp_path_factory):
    root = tmp_path_factory.mktemp("docker-corpus")
    mp = pytest.MonkeyPatch()
    mp.setenv("LABKIT_HOME", str(root / "home"))
    mp.setenv("LABKIT_LABS_PATH", str(FIXTURE_LABS))
    archives, outside = build_corpus(root, DOCKER_CASES)
    policy = SandboxPolicy(image=image, pids=128, command_timeout_s=5, total_timeout_s=300,
                           file_size_bytes=8 * 1024**2)
    summary = review_submissions(submissions=[root / "submissions"], out=root / "out", jobs=2, ui=UI(),
                                 sandbox="docker", policy=policy)
    by_archive = {Path(r.archive).name: r.to_dict() for r in summary.records}
    yield {name: by_archive[path.name] for name, path in archives.items()}, outside, root, summary
    mp.undo()


def test_every_review_ran_in_a_container_of_this_labkit_without_a_sandbox_warning(corpus):
    from labkit.review.kube_image import REPOSITORY

    records, _, _, summary = corpus
    assert {r.sandbox["mode"] for r in summary.records} == {"docker"}
    assert not summary.enforcement.warnings and summary.enforcement.unshare
    # the review's own image, built from this checkout on the base, not the base itself
    images = {r.sandbox["limits"]["image"] for r in summary.records if r.status == "reviewed"}
    assert len(images) == 1 and images.pop().startswith(REPOSITORY + ":"), images


@pytest.mark.parametrize("name", sorted(DOCKER_CASES))
def test_case_has_its_expected_outcome_in_docker(corpus, name):
    records, outside, root, _ = corpus
    DOCKER_CASES[name][1](records[name], outside)
    assert "Traceback" not in records[name].get("reason", "")


def test_nothing_escaped_and_no_container_outlived_the_batch(corpus):
    import subprocess

    records, outside, root, _ = corpus
    assert list(outside.iterdir()) == []
    assert not Path("/tmp/labkit-corpus-escaped.txt").exists()
    assert not list(Path("/tmp").glob("labkit-corpus-shadowed-*"))
    names = subprocess.run(["docker", "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True,
                           timeout=60, check=True).stdout.split()
    assert not [n for n in names if n.startswith("labkit-review")], names


def test_a_newer_review_image_replaces_the_older_one_on_its_base(image, tmp_path):
    import shutil

    from labkit.kube.images import image_exists
    from labkit.review.kube_image import ensure_review_image

    labs = tmp_path / "labs"
    shutil.copytree(FIXTURE_LABS / "adder", labs / "adder")
    first, _ = ensure_review_image(base=image, labs_roots=[labs], progress=print)
    brief = labs / "adder" / "BRIEF.md"
    brief.write_text(brief.read_text() + "\nA changed brief.\n")
    second, facts = ensure_review_image(base=image, labs_roots=[labs], progress=print)
    assert first != second and image_exists(second)
    assert not image_exists(first) and facts["pruned"] >= 1, facts
    again, facts = ensure_review_image(base=image, labs_roots=[labs], progress=print)
    assert (again, facts["built_s"]) == (second, 0.0)  # unchanged content: reused, nothing built
