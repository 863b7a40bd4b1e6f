"""The limits a review applies to candidate code, flat: what grader/sandbox.yaml says
(read and validated by :mod:`labkit.sandbox.spec`), in the units the enforcement uses.

Plain data with no dependency beyond the standard library, so that the grade's own
process and the review's job files carry it without loading the file parser.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

_SIZE = re.compile(r"^(\d+(?:\.\d+)?)([kmg]?)b?$", re.I)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_SECONDS = re.compile(r"^(\d+(?:\.\d+)?)s?$")


@dataclass(frozen=True)
class SandboxPolicy:
    image: str = "labkit/grader:0.1.0"
    network: str = "none"
    cpus: float = 2.0
    memory_bytes: int = 3 * 1024**3
    pids: int = 512
    # Kubernetes backend: what the scheduler reserves per review (None: the limits above).
    # The limits are what a review may use; a request below them lets a small node run it.
    request_cpus: float | None = None
    request_memory_bytes: int | None = None
    provision_timeout_s: float = 600.0
    grade_timeout_s: float = 900.0
    total_timeout_s: float = 1800.0
    user: str = "10001:10001"
    read_only_rootfs: bool = True
    tmpfs: dict[str, str] = field(default_factory=lambda: {"/tmp": "size=512m"})
    no_new_privileges: bool = True
    cap_drop: tuple[str, ...] = ("ALL",)
    # Docker mode: candidate commands get user, mount, pid and network namespaces of their
    # own inside the container (labkit.sandbox.seccomp says what the container then allows).
    candidate_namespaces: bool = True
    # Per candidate command (both modes): the most output kept, and a cap on the check's own
    # timeout (None: the check decides).
    output_bytes: int = 1024**2
    command_timeout_s: float | None = None
    # Subprocess mode only: per-process limits of one candidate command.
    file_size_bytes: int = 64 * 1024**2
    open_files: int = 1024

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SandboxPolicy:
        """Back from :meth:`to_dict` (a job file, a grade context); keys it does not know are
        left to the caller."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if "cap_drop" in values:
            values["cap_drop"] = tuple(values["cap_drop"])
        return cls(**values)


def policy_keys() -> set[str]:
    return {f.name for f in fields(SandboxPolicy)}


def parse_size(value: Any) -> int:
    """``3g``, ``512m``, ``64k`` or a number of bytes."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a size like 3g or 512m")
    if isinstance(value, (int, float)):
        return int(value)
    match = _SIZE.match(str(value).strip())
    if not match:
        raise ValueError(f"{value!r} is not a size like 3g or 512m")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def parse_seconds(value: Any) -> float:
    """``600s`` or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration like 600s")
    if isinstance(value, (int, float)):
        return float(value)
    match = _SECONDS.match(str(value).strip())
    if not match:
        raise ValueError(f"{value!r} is not a duration like 600s")
    return float(match.group(1))
