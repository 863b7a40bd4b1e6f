"""grader/sandbox.yaml: the limits a review applies to candidate code, validated at the boundary.

Parsed into pydantic models the way lab.yaml is (labkit.spec): every problem at once,
each with its key path (``resources.memory: ...``), and an unknown key is an error, so
a misspelt limit is never silently replaced by its default. :meth:`SandboxFile.policy`
flattens the file into the :class:`~labkit.sandbox.policy.SandboxPolicy` the review and
the confinement read.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from labkit.errors import SandboxSpecError
from labkit.sandbox.limits import SandboxPolicy, parse_seconds, parse_size
from labkit.spec import flatten_errors, read_yaml_mapping

SANDBOX_ENV = "LABKIT_SANDBOX"
_REPO_SANDBOX = Path(__file__).resolve().parents[3] / "grader" / "sandbox.yaml"

Size = Annotated[int, BeforeValidator(parse_size), Field(gt=0)]
Seconds = Annotated[float, BeforeValidator(parse_seconds), Field(gt=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Requests(_Strict):
    """--backend k8s only: what the scheduler reserves per review (default: the limits)."""

    cpus: float | None = Field(default=None, gt=0)
    memory: Size | None = None


class Resources(_Strict):
    cpus: float = Field(default=2.0, gt=0)
    memory: Size = 3 * 1024**3
    pids: int = Field(default=512, gt=0)
    output: Size = 1024**2  # the most stdout/stderr kept per candidate command
    # Subprocess mode only: per-process limits of one candidate command.
    file_size: Size = 64 * 1024**2
    open_files: int = Field(default=1024, gt=0)
    requests: Requests = Field(default_factory=Requests)


class Timeouts(_Strict):
    provision: Seconds = 600.0
    grade: Seconds = 900.0
    total: Seconds = 1800.0
    command: Seconds | None = None  # a cap on one candidate command (default: the check's own)


class Security(_Strict):
    read_only_rootfs: bool = True
    tmpfs: dict[str, str] = Field(default_factory=lambda: {"/tmp": "size=512m"})
    no_new_privileges: bool = True
    cap_drop: list[str] = Field(default_factory=lambda: ["ALL"])
    candidate_namespaces: bool = True


class SandboxFile(_Strict):
    """The whole of grader/sandbox.yaml."""

    api_version: Literal["labkit/v1"] = Field(alias="apiVersion")
    kind: Literal["Sandbox"]
    image: str = Field(default="labkit/grader:0.1.0", min_length=1)
    # Docker's --network: a review's container reaches nothing; its services run inside it.
    network: Literal["none"] = "none"
    user: str = Field(default="10001:10001", pattern=r"^\d+(:\d+)?$")  # never root: uid[:gid]
    resources: Resources = Field(default_factory=Resources)
    timeout: Timeouts = Field(default_factory=Timeouts)
    security: Security = Field(default_factory=Security)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def policy(self) -> SandboxPolicy:
        res, timeout, sec = self.resources, self.timeout, self.security
        return SandboxPolicy(
            image=self.image, network=self.network, cpus=res.cpus, memory_bytes=res.memory, pids=res.pids,
            request_cpus=res.requests.cpus, request_memory_bytes=res.requests.memory,
            provision_timeout_s=timeout.provision, grade_timeout_s=timeout.grade, total_timeout_s=timeout.total,
            user=self.user, read_only_rootfs=sec.read_only_rootfs, tmpfs=dict(sec.tmpfs),
            no_new_privileges=sec.no_new_privileges, cap_drop=tuple(sec.cap_drop),
            candidate_namespaces=sec.candidate_namespaces,
            output_bytes=res.output, command_timeout_s=timeout.command,
            file_size_bytes=res.file_size, open_files=res.open_files,
        )


def load_policy(path: Path | None = None) -> SandboxPolicy:
    """grader/sandbox.yaml (or $LABKIT_SANDBOX), validated; the built-in defaults, which
    mirror that file, when there is none."""
    path = path or Path(os.environ.get(SANDBOX_ENV) or _REPO_SANDBOX)
    if not path.is_file():
        return SandboxPolicy()
    return load_sandbox_file(path).policy()


def load_sandbox_file(path: Path) -> SandboxFile:
    """Parse and validate one sandbox file; SandboxSpecError lists every problem."""
    raw, problems = read_yaml_mapping(path)
    if problems:
        raise SandboxSpecError(str(path), problems)
    try:
        return SandboxFile.model_validate(raw)
    except ValidationError as exc:
        raise SandboxSpecError(str(path), flatten_errors(exc)) from None
