"""The kind runtime: Kubernetes in Docker. Not built yet; it plugs in here."""

from __future__ import annotations

from labkit.runtimes.base import Runtime, RuntimeContext, Unavailable
from labkit.session import ServiceInfo


class KindRuntime(Runtime):
    name = "kind"

    def unavailable_reason(self) -> Unavailable | None:
        return Unavailable(
            "the kind runtime is not available in this version of labkit yet",
            "use --runtime local (labs that need Kubernetes will list kind once it ships)",
        )

    def start_service(self, ctx: RuntimeContext, service: str) -> ServiceInfo:
        raise NotImplementedError

    def stop_service(self, ctx: RuntimeContext, info: ServiceInfo) -> None:
        raise NotImplementedError

    def healthy(self, info: ServiceInfo) -> bool:
        return False
