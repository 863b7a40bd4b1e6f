"""What this machine can enforce of a sandbox policy (labkit.sandbox.limits), decided once
per review and shown in every report.

* ``docker``: the whole review of one submission runs in the grader image with
  ``--network none``, CPU, memory and pids limits, a read-only root, dropped
  capabilities and a non-root user (the review builds that ``docker run``). With
  ``candidate_namespaces`` (the default) every candidate command inside it is confined
  as in the subprocess mode, in namespaces of its own, so it cannot read the lab's
  sources the grader reads; the worker refuses to grade if the container cannot do that.
* ``subprocess`` (no Docker or no grader image): the reviewer's own processes run as
  usual, and every candidate command goes through :mod:`labkit.sandbox.runner`. What
  that enforces is listed in :class:`Enforcement`; what it cannot enforce is said in
  a loud warning that every report repeats.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from labkit.errors import BadInput
from labkit.sandbox.limits import SandboxPolicy

# Docker mode with candidate_namespaces off: candidate commands share the review's own
# container with the lab's sources.
DOCKER_SOURCES_WARNING = ("candidate commands run in the review's container beside the lab's full sources, "
                          "without a mount namespace of their own: they could read the hidden checks and the "
                          "solution (they can write only to their folders and reach no network)")


@dataclass(frozen=True)
class Enforcement:
    """What a review on this machine can enforce; every report shows it."""

    mode: str  # docker | subprocess
    unshare: bool = False  # mount (and, for service-less labs, network) namespaces
    cgroup: bool = False  # a pids + memory cgroup per candidate command (kills the whole tree)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def docker_ready(policy: SandboxPolicy) -> tuple[bool, str]:
    docker = shutil.which("docker")
    if docker is None:
        return False, "docker is not installed"
    try:
        probe = subprocess.run([docker, "image", "inspect", policy.image], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"docker does not answer ({exc})"
    if probe.returncode != 0:
        return False, f"the grader image {policy.image} is not built (infra/images/build.sh grader)"
    return True, ""


def choose_enforcement(policy: SandboxPolicy, *, sandbox: str = "auto") -> Enforcement:
    """``auto``: Docker when it and the grader image are there, else the subprocess mode."""
    if sandbox in ("auto", "docker"):
        ok, why = docker_ready(policy)
        if ok:
            if policy.candidate_namespaces:
                return Enforcement("docker", unshare=True)
            return Enforcement("docker", warnings=[DOCKER_SOURCES_WARNING])
        if sandbox == "docker":
            raise BadInput(f"--sandbox docker: {why}")
        reason = why
    else:
        reason = "--sandbox subprocess was asked for"
    unshare, cgroup = unshare_works(), cgroup_root() is not None
    warnings = [
        f"NOT CONTAINERISED: {reason}. Candidate code ran as a process of this machine's user "
        f"{'root' if os.geteuid() == 0 else os.getuid()}, with resource limits and a timeout only.",
    ]
    if not unshare:
        warnings.append("no mount or network namespace (unshare is unavailable): candidate code could write "
                        "anywhere this user can and read the lab's hidden checks and solution; only a "
                        "Python-level guard (bypassable) refuses non-loopback connections")
    else:
        warnings.append("network: own network namespace per command; only the lab's own services are "
                        "reachable, relayed into it through Unix sockets")
    if not cgroup and os.geteuid() == 0:
        warnings.append("no writable pids cgroup and running as root: RLIMIT_NPROC does not bind root, "
                        "so a fork bomb is stopped only by the timeout")
    return Enforcement("subprocess", unshare=unshare, cgroup=cgroup, warnings=warnings)


def unshare_works() -> bool:
    """True when `unshare --mount` runs here (root, or unprivileged user namespaces)."""
    if shutil.which("unshare") is None or not sys.platform.startswith("linux"):
        return False
    argv = ["unshare", "--mount", "true"] if os.geteuid() == 0 else ["unshare", "-r", "--mount", "true"]
    try:
        return subprocess.run(argv, capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def cgroup_root() -> Path | None:
    """A writable cgroup v1 pids hierarchy (what a root reviewer has on most Linux hosts)."""
    root = Path("/sys/fs/cgroup/pids")
    return root if root.is_dir() and os.access(root, os.W_OK) else None
