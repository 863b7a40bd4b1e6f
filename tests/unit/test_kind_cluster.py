"""KindCluster.ensure on a cluster that exists: after a reboot (or a Docker restart) kind
leaves its node containers stopped, and a lab resumed with `labkit start` must start them
again rather than wait on an API server that is not there. A fake runner plays kind and
docker; the real start/stop cycle is in tests/cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from labkit.kube.cluster import KindCluster
from labkit.proc import Completed


class FakeRunner:
    def __init__(self, nodes: str) -> None:
        self.nodes, self.calls = nodes, []

    def run(self, argv, *, timeout, **_):  # noqa: ANN001, ANN201
        argv = [str(a) for a in argv]
        self.calls.append(argv)
        out = ""
        if argv[1:3] == ["get", "clusters"]:
            out = "labkit\n"
        elif argv[:3] == ["docker", "ps", "-a"]:
            out = self.nodes
        return Completed(argv, 0, out, "", 0.01)


@pytest.fixture
def cluster(labkit_home: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(KindCluster, "_kind", lambda self: "kind")

    def make(nodes: str) -> tuple[KindCluster, FakeRunner, list[str]]:
        runner, said = FakeRunner(nodes), []
        return KindCluster("labkit", labkit_home / "kind.yaml", runner, said.append), runner, said
    return make


def test_stopped_nodes_of_an_existing_cluster_are_started_again(cluster) -> None:
    kind, runner, said = cluster("labkit-control-plane\texited\nlabkit-worker\trunning\n")
    assert kind.ensure() is False
    assert kind.woken == ["labkit-control-plane"]
    assert ["docker", "start", "labkit-control-plane"] in runner.calls
    assert "restarted" in said[0] and "labkit-control-plane" in said[0]
    assert any(c[1:3] == ["export", "kubeconfig"] for c in runner.calls[runner.calls.index(
        ["docker", "start", "labkit-control-plane"]):]), "the kubeconfig is exported after the nodes are up"


def test_a_running_cluster_is_left_as_it_is(cluster) -> None:
    kind, runner, said = cluster("labkit-control-plane\trunning\n")
    assert kind.ensure() is False
    assert kind.woken == [] and said == []
    assert not any(c[:2] == ["docker", "start"] for c in runner.calls)


def test_nodes_are_found_by_kinds_cluster_label(cluster) -> None:
    kind, runner, _ = cluster("")
    kind.stopped_nodes()
    assert "label=io.x-k8s.kind.cluster=labkit" in runner.calls[-1]
