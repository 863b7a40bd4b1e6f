"""The running lab, persisted so that every labkit command (and a new shell) finds it.

One lab runs at a time per LABKIT_HOME: ports, the MLflow store and the candidate's
attention are all single. The file is written atomically so a crash mid-write never
leaves a session nobody can stop.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from labkit.errors import BadInput
from labkit.paths import session_file


@dataclass
class ServiceInfo:
    name: str
    url: str
    port: int
    pid: int
    log_path: str
    health_path: str
    in_cluster_url: str = ""  # how pods reach it, when it runs on a cluster


@dataclass
class Session:
    lab_id: str
    seed: int
    runtime: str
    workspace: str
    state_dir: str
    started_at: str
    services: dict[str, ServiceInfo] = field(default_factory=dict)
    labkit_version: str = ""
    runtime_info: dict[str, Any] = field(default_factory=dict)  # Runtime.up()'s answer

    @property
    def workspace_path(self) -> Path:
        return Path(self.workspace)

    @property
    def state_path(self) -> Path:
        return Path(self.state_dir)

    def service_urls(self) -> dict[str, str]:
        return {name: s.url for name, s in self.services.items()}

    def runtime_context(self) -> dict[str, Any]:
        """What lab hooks and checks learn of the runtime: its info (the cluster, on kind)
        and how pods reach the services (their in-cluster URLs)."""
        in_cluster = {name: s.in_cluster_url for name, s in self.services.items() if s.in_cluster_url}
        return {"runtime": self.runtime, **self.runtime_info, "cluster_services": in_cluster}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Session:
        services = {k: ServiceInfo(**v) for k, v in data.get("services", {}).items()}
        return cls(**{**data, "services": services})


def load_session() -> Session | None:
    path = session_file()
    if not path.exists():
        return None
    try:
        return Session.from_dict(json.loads(path.read_text()))
    except (ValueError, TypeError, KeyError) as exc:
        raise BadInput(
            f"{path} is corrupt ({exc})",
            hint="stop any stray service by hand, then delete that file; your workspace is not affected",
        ) from None


def save_session(session: Session) -> None:
    write_json_atomic(session_file(), session.to_dict())


def clear_session() -> None:
    session_file().unlink(missing_ok=True)


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
    os.replace(tmp, path)
