"""Cluster tests need Docker, kind and a node image. Where those are missing they are
skipped with the reason — unless LABKIT_REQUIRE_CLUSTER=1 (CI, after it built the offline
toolchain), where a missing piece is a failure, never a silent skip."""

from __future__ import annotations

import os

import pytest

from labkit.kube.cluster import offline_node_image
from labkit.kube.images import image_exists
from labkit.runtimes.kind import KindRuntime

REQUIRE_ENV = "LABKIT_REQUIRE_CLUSTER"


def _missing() -> str | None:
    problem = KindRuntime().unavailable_reason()
    if problem is not None:
        return f"{problem.message} ({problem.hint})"
    if not os.environ.get("LABKIT_KIND_NODE_IMAGE") and not image_exists(offline_node_image()):
        if not os.environ.get(REQUIRE_ENV):  # online machines pull kind's image: opt in with the env var
            return f"no offline node image {offline_node_image()} (labkit offline prepare; or set {REQUIRE_ENV}=1 online)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    cluster_items = [item for item in items if item.get_closest_marker("cluster")]
    if not cluster_items:
        return
    reason = _missing()
    if reason is None:
        return
    if os.environ.get(REQUIRE_ENV):
        raise pytest.UsageError(f"{REQUIRE_ENV} is set but the kind runtime cannot run here: {reason}")
    for item in cluster_items:
        item.add_marker(pytest.mark.skip(reason=f"no kind cluster possible here: {reason}"))
