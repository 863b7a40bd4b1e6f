"""The interface every runtime implements, and what it hands back."""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit.proc import DEFAULT_RUNNER, ProcessRunner
from labkit.session import ServiceInfo

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Unavailable:
    """Why a runtime cannot run here, and the command that fixes it."""

    message: str
    hint: str


@dataclass
class RuntimeContext:
    state_dir: Path
    progress: Progress
    runner: ProcessRunner = DEFAULT_RUNNER
    # What up() returned, kept in the session: how later commands find the runtime's cluster.
    info: dict[str, Any] = field(default_factory=dict)


class Runtime(abc.ABC):
    name: str

    @abc.abstractmethod
    def unavailable_reason(self) -> Unavailable | None:
        """None when this runtime can run on this machine; cheap (no heavy imports)."""

    def up(self, ctx: RuntimeContext) -> dict[str, Any]:
        """Bring up what the services run on (a cluster); idempotent. Returns what to remember."""
        return {}

    def down(self, ctx: RuntimeContext) -> None:
        """Undo up() after the services are stopped; a no-op if it is already gone."""

    def env(self, info: dict[str, Any]) -> dict[str, str]:
        """Environment for the candidate's shell and code (e.g. KUBECONFIG)."""
        return {}

    def path_dirs(self, info: dict[str, Any]) -> list[str]:
        """Folders to put first on the candidate's PATH: where the tools this runtime uses
        live when PATH does not reach them."""
        return []

    @abc.abstractmethod
    def start_service(self, ctx: RuntimeContext, service: str) -> ServiceInfo:
        """Start one service, wait until it answers its health check, return how to reach it."""

    @abc.abstractmethod
    def stop_service(self, ctx: RuntimeContext, info: ServiceInfo) -> None:
        """Stop the service and everything it spawned; a no-op if it is already gone."""

    @abc.abstractmethod
    def healthy(self, info: ServiceInfo) -> bool:
        """Does the service answer its health check right now?"""

    def comes_back(self, ctx: RuntimeContext, info: ServiceInfo) -> bool:
        """A service that does not answer: will it, if given the time? Resume asks before it
        restarts one, since a restart starts it empty. A process that died stays dead."""
        return False
