"""broken-deployment's registry outage, its pure parts: how long a replica that cannot
load its model is watched (from the submitted probes, so a readiness that waits 50 s or a
liveness that restarts after 40 s is seen), which port a probe means, and that an alias a
killed grade took is given back. The outage itself is proven on kind in tests/labs."""

from __future__ import annotations

import pytest


@pytest.fixture
def outage(lab_support):
    return lab_support("broken-deployment", "support.outage")


def http(path: str, **timing) -> dict:
    return {"httpGet": {"path": path, "port": "http"}, **timing}


def test_the_reference_probes_are_watched_until_liveness_would_have_acted(outage) -> None:
    container = {"readinessProbe": http("/readyz", periodSeconds=2, failureThreshold=2),
                 "livenessProbe": http("/livez", initialDelaySeconds=10, periodSeconds=10, failureThreshold=3)}
    assert outage.watch_window(container) == 10 + (10 + 1) * 3 + outage.SLACK_S


def test_a_readiness_that_waits_50_s_is_watched_past_its_first_probe(outage) -> None:
    container = {"readinessProbe": http("/livez", initialDelaySeconds=50, periodSeconds=2)}
    assert outage.watch_window(container) >= 50 + 2


def test_kubernetes_defaults_apply_to_a_probe_without_timing(outage) -> None:
    assert outage.watch_window({"livenessProbe": http("/readyz")}) == (10 + 1) * 3 + outage.SLACK_S


def test_probes_behind_a_startup_probe_are_watched_after_it(outage) -> None:
    container = {"startupProbe": http("/livez", periodSeconds=5, failureThreshold=3),
                 "livenessProbe": http("/readyz", initialDelaySeconds=0, periodSeconds=10, failureThreshold=3)}
    assert outage.watch_window(container) == 5 + (10 + 1) * 3 + outage.SLACK_S


def test_the_watch_has_a_floor_and_a_ceiling(outage) -> None:
    assert outage.watch_window({}) == outage.MIN_WATCH_S
    assert outage.watch_window({"livenessProbe": http("/x", initialDelaySeconds=900)}) == outage.MAX_WATCH_S


@pytest.mark.parametrize(("port", "expected"), [("http", 3000), ("metrics", 9090), (8080, 8080), ("8081", 8081),
                                                ("nameless", 3000)])
def test_a_probe_port_by_number_or_by_name(outage, port, expected) -> None:
    container = {"ports": [{"name": "http", "containerPort": 3000}, {"name": "metrics", "containerPort": 9090}]}
    assert outage.container_port(container, port) == expected


class FakeRegistry:
    def __init__(self) -> None:
        self.aliases = {}

    def set_registered_model_alias(self, name, alias, version) -> None:  # noqa: ANN001
        self.aliases[(name, alias)] = version


def test_an_alias_a_killed_grade_took_is_given_back(outage, tmp_path) -> None:
    (tmp_path / outage.RESTORE_FILE).write_text('{"model": "churn-classifier", "version": "3"}')
    registry = FakeRegistry()
    assert outage.restore_alias(registry, tmp_path) is True
    assert registry.aliases == {("churn-classifier", "champion"): "3"}
    assert not (tmp_path / outage.RESTORE_FILE).exists()


def test_an_alias_nobody_took_is_left_alone(outage, tmp_path) -> None:
    registry = FakeRegistry()
    assert outage.restore_alias(registry, tmp_path) is False
    assert registry.aliases == {}


def test_the_liveness_path_is_asked_as_the_kubelet_asks_it(outage) -> None:
    class Nodes:
        def get(self, kind, name):  # noqa: ANN001, ANN201
            info = type("Info", (), {"kubeletVersion": "v1.34.4"})()
            return type("Node", (), {"status": type("Status", (), {"nodeInfo": info})()})()

    cluster = type("Cluster", (), {"client": Nodes()})()
    assert outage.kubelet_agent(cluster, {"spec": {"nodeName": "n"}}) == "kube-probe/1.34"
