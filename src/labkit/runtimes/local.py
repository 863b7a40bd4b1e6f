"""The local runtime: real MLflow and Prefect servers as supervised processes on 127.0.0.1.

Each service runs in its own process group (so stopping it takes its workers too),
logs to the lab's state folder, and counts as started only once it answers its
health endpoint. Data lives in the state folder, so stop/start keeps a candidate's
MLflow runs; only `labkit reset` deletes it.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from labkit.errors import ServiceError
from labkit.runtimes import templates
from labkit.runtimes.base import Runtime, RuntimeContext, Unavailable
from labkit.session import ServiceInfo

HOST = "127.0.0.1"


@dataclass(frozen=True)
class ServiceDef:
    name: str
    module: str  # the Python package that must be importable
    preferred_port: int
    health_path: str
    ready_timeout_s: float
    env: dict[str, str] = field(default_factory=dict)

    def argv(self, data_dir: Path, port: int) -> list[str]:
        if self.name == "mlflow":
            return [
                sys.executable, "-m", "mlflow", "server",
                "--backend-store-uri", f"sqlite:///{data_dir / 'mlflow.db'}",
                "--artifacts-destination", str(data_dir / "artifacts"),
                "--host", HOST, "--port", str(port), "--workers", "1",
            ]
        return [sys.executable, "-m", "prefect", "server", "start", "--host", HOST, "--port", str(port)]

    def service_env(self, data_dir: Path) -> dict[str, str]:
        env = dict(self.env)
        if self.name == "prefect":
            env["PREFECT_HOME"] = str(data_dir)
            env["PREFECT_API_DATABASE_CONNECTION_URL"] = f"sqlite+aiosqlite:///{data_dir / 'prefect.db'}"
        return env


SERVICES = {
    # Measured: defaults take ~14 s and ~1 GB; one worker and no job runners ~5 s, ~0.5 GB.
    # The ready limits are far above that: on 2 cores at load ~20 MLflow took 86-100 s, and a
    # start that gives up there fails a review or a grader test that would have passed.
    "mlflow": ServiceDef("mlflow", "mlflow", 5000, "/health", 240.0, {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}),
    # Analytics off: no network here, and candidates should not phone home.
    "prefect": ServiceDef(
        "prefect", "prefect", 4200, "/api/health", 240.0,
        {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false",
         "PREFECT_LOGGING_LEVEL": "WARNING"},
    ),
}


class LocalRuntime(Runtime):
    name = "local"

    def unavailable_reason(self) -> Unavailable | None:
        missing = [d.module for d in SERVICES.values() if importlib.util.find_spec(d.module) is None]
        if missing:
            return Unavailable(
                f"the ML stack is not installed (missing: {', '.join(missing)})",
                "pip install 'labkit-mlops[local]'  (from a checkout: pip install -e '.[local]')",
            )
        return None

    def start_service(self, ctx: RuntimeContext, service: str) -> ServiceInfo:
        return launch_service(service, data_dir=ctx.state_dir / service, log_path=ctx.state_dir / "logs" / f"{service}.log",
                              runner=ctx.runner, progress=ctx.progress)

    def stop_service(self, ctx: RuntimeContext, info: ServiceInfo) -> None:
        ctx.runner.terminate(info.pid)

    def healthy(self, info: ServiceInfo) -> bool:
        return http_ok(info.url + info.health_path)


def launch_service(service: str, *, data_dir: Path, log_path: Path, runner: Any,
                   progress: Callable[[str], None] | None = None) -> ServiceInfo:
    """Start one service (data in data_dir) and return once it answers; the runtime's
    services, and the private ones a grader starts for itself, go through here."""
    definition = SERVICES[service]
    data_dir.mkdir(parents=True, exist_ok=True)
    port = pick_port(definition.preferred_port)
    if port != definition.preferred_port and progress is not None:
        progress(f"port {definition.preferred_port} is in use; {service} takes port {port}")
    env = {**os.environ, **definition.service_env(data_dir)}
    seeded = templates.seed(service, data_dir)
    pid = runner.spawn(definition.argv(data_dir, port), log_path=log_path, cwd=data_dir, env=env)
    info = ServiceInfo(service, f"http://{HOST}:{port}", port, pid, str(log_path), definition.health_path)
    try:
        _wait_ready(runner, info, definition.ready_timeout_s)
    except BaseException:
        runner.terminate(pid)
        raise
    if not seeded:
        templates.save(service, data_dir)
    return info


def _wait_ready(runner: Any, info: ServiceInfo, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if http_ok(info.url + info.health_path):
            return
        if not runner.alive(info.pid):
            raise ServiceError(
                f"{info.name} exited during start-up",
                hint=f"its log says:\n{log_tail(Path(info.log_path))}\n  (full log: {info.log_path})",
            )
        time.sleep(0.25)
    raise ServiceError(
        f"{info.name} did not answer {info.url}{info.health_path} within {timeout_s:.0f}s",
        hint=f"log: {info.log_path}\n{log_tail(Path(info.log_path))}",
    )


def pick_port(preferred: int) -> int:
    """The preferred port when it is free, else one the kernel hands out."""
    for port in (preferred, 0):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            # As the servers bind: a port whose last server stopped a moment ago (its
            # connections in TIME_WAIT) is free to them, so it is free here too.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((HOST, port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise ServiceError("no free TCP port on 127.0.0.1")


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback only
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return "(no log)"
