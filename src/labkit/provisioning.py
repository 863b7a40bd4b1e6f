"""Runs a lab's provision hook in a child process.

The hook (``module:function`` in lab.yaml) trains models, writes data and registers
things in the lab's services. It runs out of process because it imports the heavy
ML stack, which the CLI must not pay for, and because a lab's code failing must not
take labkit down with it. Invoked as ``python -m labkit.provisioning CONTEXT.json``.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit.catalog import Lab
from labkit.errors import CommandError, LabkitError
from labkit.proc import DEFAULT_RUNNER, ProcessRunner
from labkit.session import write_json_atomic

PROVISION_TIMEOUT_S = 600


@dataclass(frozen=True)
class ProvisionContext:
    """What a lab's provision hook receives."""

    workspace: Path
    seed: int
    lab_dir: Path
    state_dir: Path
    services: dict[str, str]
    runtime: dict[str, Any] = field(default_factory=dict)  # Session.runtime_context()

    @property
    def cluster(self) -> Any:
        """The lab's cluster (labkit.kube.api.Cluster) on the kind runtime; None elsewhere."""
        from labkit.kube.api import Cluster, ClusterInfo

        data = self.runtime.get("cluster")
        return Cluster(ClusterInfo.from_dict(data)) if data else None

    @property
    def cluster_services(self) -> dict[str, str]:
        """How pods reach the services (in-cluster URLs), on the kind runtime."""
        return dict(self.runtime.get("cluster_services") or {})

    @property
    def mlflow_tracking_uri(self) -> str | None:
        return self.services.get("mlflow")

    @property
    def prefect_api_url(self) -> str | None:
        url = self.services.get("prefect")
        return f"{url}/api" if url else None

    def log(self, message: str) -> None:
        print(message, flush=True)


def service_env(services: dict[str, str]) -> dict[str, str]:
    """The environment variables by which lab code finds the services."""
    env = {}
    if "mlflow" in services:
        env["MLFLOW_TRACKING_URI"] = services["mlflow"]
    if "prefect" in services:
        env["PREFECT_API_URL"] = services["prefect"] + "/api"
    return env


def run_provision(
    lab: Lab, *, workspace: Path, seed: int, state_dir: Path, services: dict[str, str],
    runtime_context: dict[str, Any] | None = None, runner: ProcessRunner = DEFAULT_RUNNER,
) -> str:
    """Run the lab's hook against a staged workspace; returns its output."""
    if not lab.spec.provision:
        return ""
    context_path = state_dir / "provision-context.json"
    write_json_atomic(context_path, {
        "hook": lab.spec.provision, "workspace": str(workspace), "seed": seed,
        "lab_dir": str(lab.path), "state_dir": str(state_dir), "services": services,
        "runtime": runtime_context or {},
    })
    env = {**os.environ, **service_env(services), "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        result = runner.run(
            # -P: the workspace (cwd) is not on the import path; the hook comes from the lab folder
            [sys.executable, "-P", "-m", "labkit.provisioning", str(context_path)],
            timeout=PROVISION_TIMEOUT_S, env=env, cwd=workspace,
        )
    except CommandError as exc:
        raise LabkitError(
            f"provisioning {lab.id} failed ({exc.code if exc.code is not None else 'timeout'})",
            hint=f"this is a bug in the lab, not your doing; output:\n{exc.output[-3000:]}",
        ) from None
    return result.stdout


def _main(context_path: str) -> None:
    data = json.loads(Path(context_path).read_text())
    sys.path.insert(0, data["lab_dir"])
    module_name, func_name = data["hook"].split(":")
    hook = getattr(importlib.import_module(module_name), func_name)
    hook(ProvisionContext(
        workspace=Path(data["workspace"]), seed=int(data["seed"]), lab_dir=Path(data["lab_dir"]),
        state_dir=Path(data["state_dir"]), services=data["services"], runtime=data.get("runtime") or {},
    ))


if __name__ == "__main__":
    _main(sys.argv[1])
