"""The kind runtime: the lab's services and its workloads on a local Kubernetes cluster.

up() creates (or reuses) the kind cluster named by infra/kind/cluster.yaml and waits for
its DNS; the platform services (MLflow, Prefect) run from k8s/platform on the image
labkit builds once per machine and loads into the cluster, so nothing is pulled from a
registry. Services are reached from the host through NodePorts that the cluster config
maps to 127.0.0.1, and from pods by their Service names. down() deletes the cluster if
labkit created it; a cluster the user brought keeps everything but labkit's namespaces.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit.errors import ServiceError
from labkit.kube import tools
from labkit.paths import project_file
from labkit.runtimes.base import Runtime, RuntimeContext, Unavailable
from labkit.runtimes.local import http_ok
from labkit.session import ServiceInfo

PLATFORM_NAMESPACE = "labkit"
SYSTEM_READY_TIMEOUT_S = 300
NODE_PORT_LAG_S = 60  # a Deployment rolled out, its NodePort from the host may answer a moment later
CANDIDATE_TOOLS = ("kind", "kubectl", "docker")  # what a kind lab's deploy scripts call


@dataclass(frozen=True)
class PlatformService:
    name: str
    manifest: str  # under k8s/platform/
    node_port: int  # mapped to 127.0.0.1 by infra/kind/cluster.yaml
    port: int
    health_path: str
    ready_timeout_s: float  # first start on a loaded 2-core host: image load + server start


PLATFORM = {
    "mlflow": PlatformService("mlflow", "10-mlflow.yaml", 30500, 5000, "/health", 600.0),
    "prefect": PlatformService("prefect", "20-prefect.yaml", 30420, 4200, "/api/health", 600.0),
}


class KindRuntime(Runtime):
    name = "kind"

    def unavailable_reason(self) -> Unavailable | None:
        offline = "offline machines: labkit offline prepare"
        if tools.find_tool("docker") is None:
            return Unavailable("docker is not installed", f"install Docker Engine or Docker Desktop ({offline})")
        if not tools.docker_socket_answers():
            return Unavailable("the Docker engine is not running",
                               "start it (`sudo systemctl start docker`, or `sudo dockerd &`); `labkit doctor` checks")
        if tools.find_tool("kind") is None:
            return Unavailable("kind is not installed", f"go install sigs.k8s.io/kind@v0.33.0 ({offline})")
        return None

    def up(self, ctx: RuntimeContext) -> dict[str, Any]:
        from labkit.kube.api import Cluster, ClusterInfo
        from labkit.kube.cluster import KindCluster

        kind = KindCluster.default(runner=ctx.runner, progress=ctx.progress)
        kind.ensure()
        info = ClusterInfo(kind.name, str(kind.kubeconfig), kind.context, owned=kind.owned)
        ctx.info["cluster"] = info.to_dict()  # recorded before waiting: a failure below still tears it down
        cluster = Cluster(info, ctx.runner)
        if kind.woken:
            cluster.wait_api(timeout_s=SYSTEM_READY_TIMEOUT_S)
        cluster.wait_rollout("kube-system", "coredns", timeout_s=SYSTEM_READY_TIMEOUT_S)
        return ctx.info

    def down(self, ctx: RuntimeContext) -> None:
        from labkit.kube.cluster import KindCluster

        cluster = self._cluster(ctx)
        if cluster is None:
            return
        kind = KindCluster(cluster.info.name, tools.cluster_config(), ctx.runner, ctx.progress)
        if cluster.info.owned and kind.owned:
            kind.delete()
        elif kind.exists():  # the user's cluster: take labkit's namespaces back, nothing else
            for namespace in cluster.namespaces():
                cluster.delete_namespace(namespace)

    def env(self, info: dict[str, Any]) -> dict[str, str]:
        cluster = info.get("cluster")
        return {"KUBECONFIG": cluster["kubeconfig"]} if cluster else {}

    def path_dirs(self, info: dict[str, Any]) -> list[str]:
        return tools.off_path_dirs(CANDIDATE_TOOLS)

    def start_service(self, ctx: RuntimeContext, service: str) -> ServiceInfo:
        from labkit.kube.images import ensure_platform_image
        from labkit.kube.rollout import RolloutFailed

        definition = PLATFORM[service]
        cluster = self._require_cluster(ctx)
        image = ensure_platform_image(progress=ctx.progress, runner=ctx.runner)
        ctx.progress(f"loading {image} into the cluster")
        cluster.load_image(image)
        cluster.apply(project_file("k8s/platform/00-namespace.yaml"))
        cluster.apply(project_file(f"k8s/platform/{definition.manifest}"))
        log_path = ctx.state_dir / "logs" / f"{service}.log"
        try:
            cluster.wait_rollout(PLATFORM_NAMESPACE, service, timeout_s=definition.ready_timeout_s)
        except RolloutFailed as exc:
            logs = _save_logs(cluster, service, log_path)
            raise ServiceError(f"{service} did not start on the cluster: {exc.message}",
                               hint=f"its log says:\n{logs}\n  (full log: {log_path})") from None
        info = ServiceInfo(
            service, f"http://127.0.0.1:{definition.node_port}", definition.node_port, 0, str(log_path),
            definition.health_path,
            in_cluster_url=f"http://{service}.{PLATFORM_NAMESPACE}.svc.cluster.local:{definition.port}",
        )
        if not self._answers_within(info, NODE_PORT_LAG_S):  # ready in the cluster; the NodePort may lag
            raise ServiceError(f"{service} is ready in the cluster but {info.url} does not answer",
                               hint="is another program bound to that port? the kind config maps it")
        return info

    def stop_service(self, ctx: RuntimeContext, info: ServiceInfo) -> None:
        from lightkube import ApiError
        from lightkube.resources.apps_v1 import Deployment
        from lightkube.resources.core_v1 import Service

        cluster = self._cluster(ctx)
        if cluster is None or not _reachable(cluster):
            return
        _save_logs(cluster, info.name, Path(info.log_path))
        for kind in (Deployment, Service):
            try:
                cluster.client.delete(kind, info.name, namespace=PLATFORM_NAMESPACE)
            except ApiError as exc:
                if exc.status.code != 404:
                    raise

    def healthy(self, info: ServiceInfo) -> bool:
        return http_ok(info.url + info.health_path)

    def comes_back(self, ctx: RuntimeContext, info: ServiceInfo) -> bool:
        """Its Deployment still stands (its pod is restarting, say after the node was started
        again): wait for the rollout and the NodePort, rather than replace it with an empty one."""
        from lightkube import ApiError
        from lightkube.resources.apps_v1 import Deployment

        definition = PLATFORM.get(info.name)
        cluster = self._cluster(ctx)
        if definition is None or cluster is None or not _reachable(cluster):
            return False
        try:
            cluster.client.get(Deployment, info.name, namespace=PLATFORM_NAMESPACE)
        except ApiError:
            return False
        ctx.progress(f"waiting for {info.name} on the cluster to answer again")
        try:
            cluster.wait_rollout(PLATFORM_NAMESPACE, info.name, timeout_s=definition.ready_timeout_s)
        except Exception:  # noqa: BLE001 - it does not roll out: resume replaces it
            return False
        return self._answers_within(info, NODE_PORT_LAG_S)

    def _answers_within(self, info: ServiceInfo, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while not self.healthy(info):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.5)
        return True

    def _cluster(self, ctx: RuntimeContext) -> Any:
        from labkit.kube.api import Cluster, ClusterInfo

        data = ctx.info.get("cluster")
        return Cluster(ClusterInfo.from_dict(data), ctx.runner) if data else None

    def _require_cluster(self, ctx: RuntimeContext) -> Any:
        cluster = self._cluster(ctx)
        if cluster is None:
            raise ServiceError("the kind runtime has no cluster up", hint="run `labkit start` again")
        return cluster


def _reachable(cluster: Any) -> bool:
    if not Path(cluster.info.kubeconfig).exists():
        return False
    try:
        cluster.namespaces()
        return True
    except Exception:  # noqa: BLE001 - any API/transport failure means "gone", which is fine on stop
        return False


def _save_logs(cluster: Any, service: str, log_path: Path) -> str:
    """Copy the service's pod logs to the state folder (the pod's own go with the cluster)."""
    from lightkube.resources.core_v1 import Pod

    try:
        pods = list(cluster.client.list(Pod, namespace=PLATFORM_NAMESPACE,
                                        labels={"app.kubernetes.io/name": service}))
        text = "\n".join(cluster.pod_logs(PLATFORM_NAMESPACE, p.metadata.name, lines=200) for p in pods)
    except Exception as exc:  # noqa: BLE001 - logs are a courtesy; never mask the real error
        text = f"(could not read logs: {exc})"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text(text)
    return "\n".join(text.strip().splitlines()[-15:])
