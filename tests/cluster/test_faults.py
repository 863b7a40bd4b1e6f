"""Planted Deployment faults on a real kind cluster, each reported with its real reason.

One cluster (no host port mappings, so it can live beside a lab's cluster) serves every
case; each case gets its own namespace.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from labkit.kube.api import Cluster, ClusterInfo
from labkit.kube.cluster import KindCluster
from labkit.kube.rollout import RolloutFailed

pytestmark = pytest.mark.cluster
IMAGE = "labkit-test/faulty:1"
SERVER = """
import http.server, socketserver
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/healthz" else 404); self.end_headers()
socketserver.TCPServer(("", 8080), H).serve_forever()
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Cluster:
    home = tmp_path_factory.mktemp("home")
    mp = pytest.MonkeyPatch()
    mp.setenv("LABKIT_HOME", str(home))
    config = home / "kind.yaml"
    config.write_text("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n  - role: control-plane\n")
    kind = KindCluster("labkit-faults", config)
    try:
        if kind.exists():
            kind.delete()
        kind.ensure()
        api = Cluster(ClusterInfo(kind.name, str(kind.kubeconfig), kind.context, owned=True))
        api.wait_rollout("kube-system", "coredns", timeout_s=300)
        context = home / "image"
        context.mkdir()
        (context / "server.py").write_text(SERVER)
        (context / "Dockerfile").write_text(
            "ARG BASE_IMAGE=python:3.11-slim\nFROM ${BASE_IMAGE}\nCOPY server.py /server.py\n"
            'CMD ["python", "/server.py"]\n')
        api.build_and_load(context, IMAGE)
        yield api
    finally:
        kind.delete()
        mp.undo()


def deploy(cluster: Cluster, namespace: str, container: str, extra: str = "") -> None:
    namespace_doc = (f"apiVersion: v1\nkind: Namespace\n"
                     f"metadata: {{name: {namespace}, labels: {{app.kubernetes.io/part-of: labkit}}}}\n")
    deployment_doc = textwrap.dedent(f"""\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {{name: web, namespace: {namespace}}}
        spec:
          replicas: 1
          selector: {{matchLabels: {{app: web}}}}
          template:
            metadata: {{labels: {{app: web}}}}
            spec:
              terminationGracePeriodSeconds: 1
              containers:
        """) + textwrap.indent(textwrap.dedent(container), " " * 8)
    cluster.apply("---\n".join([namespace_doc, textwrap.dedent(extra), deployment_doc]))


CASES = {
    "missing-image-tag": (
        f"""\
        - name: app
          image: {IMAGE.replace(':1', ':does-not-exist')}
        """, "", {"ErrImagePull", "ImagePullBackOff"}, 120),
    "crash-loop": (
        f"""\
        - name: app
          image: {IMAGE}
          command: ["python", "-c", "import sys; print('boom'); sys.exit(3)"]
        """, "", {"CrashLoopBackOff"}, 240),
    "oom-killed": (
        f"""\
        - name: app
          image: {IMAGE}
          command: ["python", "-c", "b = bytearray(400 * 1024 * 1024); import time; time.sleep(600)"]
          resources: {{limits: {{memory: 64Mi}}}}
        """, "", {"OOMKilled"}, 240),
    "config-key-typo": (
        f"""\
        - name: app
          image: {IMAGE}
          env:
            - name: MODEL_URI
              valueFrom: {{configMapKeyRef: {{name: settings, key: model_uri}}}}
        """, """\
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: settings, namespace: NS}
        data: {model-uri: "models:/churn@champion"}
        """, {"CreateContainerConfigError"}, 120),
    "readiness-probe-wrong-path": (
        f"""\
        - name: app
          image: {IMAGE}
          readinessProbe:
            httpGet: {{path: /ready, port: 8080}}
            periodSeconds: 2
        """, "", {"Unhealthy"}, 30),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_planted_fault_is_reported_with_its_reason(cluster: Cluster, case: str) -> None:
    container, extra, reasons, timeout_s = CASES[case]
    namespace = f"fault-{case}"
    deploy(cluster, namespace, container, extra.replace("NS", namespace))
    try:
        with pytest.raises(RolloutFailed) as failure:
            cluster.wait_rollout(namespace, "web", timeout_s=timeout_s)
        found = {p.reason for p in failure.value.problems}
        assert found & reasons, f"expected one of {reasons}, got: {failure.value.message}"
        named = [p for p in failure.value.problems if p.reason in reasons]
        assert all(p.pod.startswith("web-") for p in named), failure.value.message
        if case != "readiness-probe-wrong-path":
            assert not failure.value.timed_out, "a fatal fault should end the wait early"
    finally:
        cluster.delete_namespace(namespace)


def test_a_sound_deployment_rolls_out(cluster: Cluster) -> None:
    deploy(cluster, "sound", f"""\
        - name: app
          image: {IMAGE}
          readinessProbe:
            httpGet: {{path: /healthz, port: 8080}}
            periodSeconds: 2
        """)
    try:
        assert cluster.wait_rollout("sound", "web", timeout_s=180).done
    finally:
        cluster.delete_namespace("sound")
