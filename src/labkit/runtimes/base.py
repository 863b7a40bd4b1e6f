"""The interface every runtime implements, and what it hands back."""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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


class Runtime(abc.ABC):
    name: str

    @abc.abstractmethod
    def unavailable_reason(self) -> Unavailable | None:
        """None when this runtime can run on this machine; cheap (no heavy imports)."""

    @abc.abstractmethod
    def start_service(self, ctx: RuntimeContext, service: str) -> ServiceInfo:
        """Start one service, wait until it answers its health check, return how to reach it."""

    @abc.abstractmethod
    def stop_service(self, ctx: RuntimeContext, info: ServiceInfo) -> None:
        """Stop the service and everything it spawned; a no-op if it is already gone."""

    @abc.abstractmethod
    def healthy(self, info: ServiceInfo) -> bool:
        """Does the service answer its health check right now?"""
