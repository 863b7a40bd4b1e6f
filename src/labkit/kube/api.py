"""What labs and checks use to work with the lab's cluster.

One object, built from the session's runtime info, so a provision hook (a child
process) and a check (the grader's child process) reach the same cluster the same way.
Manifests go in by server-side apply through the Kubernetes API (field manager
"labkit"), exactly as `kubectl apply --server-side` would, never by hand-built patches.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit.errors import ServiceError
from labkit.kube.rollout import RolloutReader, RolloutState, wait_rollout
from labkit.proc import DEFAULT_RUNNER, ProcessRunner

FIELD_MANAGER = "labkit"
PART_OF_LABEL = "app.kubernetes.io/part-of"


@dataclass(frozen=True)
class ClusterInfo:
    name: str
    kubeconfig: str
    context: str
    owned: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kubeconfig": self.kubeconfig, "context": self.context, "owned": self.owned}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClusterInfo:
        return cls(str(data["name"]), str(data["kubeconfig"]), str(data["context"]), bool(data.get("owned")))


class Cluster:
    def __init__(self, info: ClusterInfo, runner: ProcessRunner = DEFAULT_RUNNER) -> None:
        self.info = info
        self.runner = runner
        self._client: Any = None

    @property
    def client(self) -> Any:
        """A lightkube Client on our kubeconfig (imported lazily: the CLI must stay fast)."""
        if self._client is None:
            from lightkube import Client, KubeConfig

            config = KubeConfig.from_file(self.info.kubeconfig).get(context_name=self.info.context)
            self._client = Client(config=config, field_manager=FIELD_MANAGER)
        return self._client

    # ---- objects ----------------------------------------------------------------------------

    def apply(self, source: Path | str | Iterable[Any], *, namespace: str | None = None) -> list[str]:
        """Server-side apply a manifest file, a folder of them (sorted), YAML text or objects.

        Returns "Kind/name" of everything applied, in order. Namespaces go first so a
        single file holding a Namespace and its contents applies in one call.
        """
        objects = load_objects(source)
        objects.sort(key=lambda o: 0 if o.kind == "Namespace" else 1)
        applied = []
        for obj in objects:
            if namespace and obj.metadata is not None and _is_namespaced(obj):
                obj.metadata.namespace = namespace
            self.client.apply(obj, force=True)
            applied.append(f"{obj.kind}/{obj.metadata.name}")
        return applied

    def delete_namespace(self, name: str, *, wait_s: float = 120.0) -> None:
        from lightkube import ApiError
        from lightkube.resources.core_v1 import Namespace

        try:
            self.client.delete(Namespace, name)
        except ApiError as exc:
            if exc.status.code == 404:
                return
            raise
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            try:
                self.client.get(Namespace, name)
            except ApiError as exc:
                if exc.status.code == 404:
                    return
                raise
            time.sleep(1)
        raise ServiceError(f"namespace {name} is still terminating after {wait_s:.0f}s")

    def wait_api(self, *, timeout_s: float) -> None:
        """Until the API server answers (a node that was just started takes a while)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.namespaces()
                return
            except Exception as exc:  # noqa: BLE001 - refused, reset, 503 while it starts
                if time.monotonic() > deadline:
                    raise ServiceError(f"the cluster's API server does not answer after {timeout_s:.0f}s: {exc}",
                                       hint="`docker ps -a` shows the node; `labkit stop` and start again "
                                            "recreates the cluster") from None
                self._client = None  # a fresh connection: the old one may point at a dead socket
                time.sleep(2)

    def namespaces(self, *, label: str = PART_OF_LABEL) -> list[str]:
        from lightkube.resources.core_v1 import Namespace

        return [ns.metadata.name for ns in self.client.list(Namespace, labels={label: "labkit"})]

    # ---- rollouts ---------------------------------------------------------------------------

    def rollout_reader(self, namespace: str, name: str) -> RolloutReader:
        from lightkube.resources.apps_v1 import Deployment
        from lightkube.resources.core_v1 import Event, Pod

        def deployment() -> dict[str, Any]:
            return self.client.get(Deployment, name, namespace=namespace).to_dict()

        def pods() -> list[dict[str, Any]]:
            selector = deployment().get("spec", {}).get("selector", {}).get("matchLabels") or {}
            return [p.to_dict() for p in self.client.list(Pod, namespace=namespace, labels=selector)]

        def events(pod: str) -> list[dict[str, Any]]:
            found = self.client.list(Event, namespace=namespace, fields={"involvedObject.name": pod})
            return [e.to_dict() for e in found]

        return RolloutReader(deployment, pods, events)

    def wait_rollout(
        self, namespace: str, name: str, *, timeout_s: float = 300.0, progress: Callable[[str], None] | None = None,
    ) -> RolloutState:
        """Like `kubectl rollout status`, but a failure names the pod, container and reason."""
        return wait_rollout(self.rollout_reader(namespace, name), name, timeout_s=timeout_s, progress=progress)

    def pod_logs(self, namespace: str, pod: str, *, container: str | None = None, lines: int = 40) -> str:
        from lightkube import ApiError

        try:
            return "".join(self.client.log(pod, namespace=namespace, container=container, tail_lines=lines))
        except ApiError as exc:
            return f"(no logs: {exc.status.message})"

    # ---- images -----------------------------------------------------------------------------

    def build_and_load(self, context: Path, tag: str, *, dockerfile: Path | None = None,
                       build_args: dict[str, str] | None = None) -> str:
        """docker build (BASE_IMAGE filled in) and kind load, so pods run it with no registry."""
        from labkit.kube.images import build_image

        build_image(context, tag, dockerfile=dockerfile, build_args=build_args, runner=self.runner)
        self.load_image(tag)
        return tag

    def load_image(self, image: str) -> None:
        from labkit.kube.cluster import KindCluster
        from labkit.kube.tools import cluster_config

        KindCluster(self.info.name, cluster_config(), self.runner).load_image(image)


def load_objects(source: Path | str | Iterable[Any]) -> list[Any]:
    from lightkube import codecs

    if isinstance(source, Path):
        files = sorted(source.glob("*.y*ml")) if source.is_dir() else [source]
        return [obj for f in files for obj in codecs.load_all_yaml(f.read_text())]
    if isinstance(source, str):
        return list(codecs.load_all_yaml(source))
    return list(source)


def _is_namespaced(obj: Any) -> bool:
    from lightkube.core.resource import NamespacedResource

    return isinstance(obj, NamespacedResource)
