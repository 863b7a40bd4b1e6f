"""Where the candidate's code runs during a review, and under which limits.

The limits are data (grader/sandbox.yaml); this module reads them and decides how
they are enforced on this machine:

* ``docker``: the whole review of one submission (provisioning, checks and the
  candidate's code) runs in the grader image with ``--network none``, CPU, memory
  and pids limits, a read-only root, dropped capabilities and a non-root user.
* ``subprocess`` (no Docker or no grader image): the reviewer's own processes run as
  usual, and every command a check runs through ``run_in_workspace`` — the only way
  checks run candidate code — goes through :mod:`labkit.review.confine`. What that
  enforces is listed, per run, in :func:`describe`; what it cannot enforce is said
  in a loud warning that every report repeats.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from labkit.errors import BadInput

SANDBOX_ENV = "LABKIT_SANDBOX"
_REPO_SANDBOX = Path(__file__).resolve().parents[3] / "grader" / "sandbox.yaml"
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)([kmg]?)b?$", re.I)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


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
    # Per candidate command (both modes): the most output kept, and a cap on the check's own
    # timeout (None: the check decides).
    output_bytes: int = 1024**2
    command_timeout_s: float | None = None
    # Subprocess mode only: per-process limits of one candidate command.
    file_size_bytes: int = 64 * 1024**2
    open_files: int = 1024

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_policy(path: Path | None = None) -> SandboxPolicy:
    """grader/sandbox.yaml (or $LABKIT_SANDBOX); the built-in defaults mirror that file."""
    import yaml

    path = path or Path(os.environ.get(SANDBOX_ENV) or _REPO_SANDBOX)
    if not path.is_file():
        return SandboxPolicy()
    try:
        raw = yaml.safe_load(path.read_text()) or {}
        res, timeout, sec = raw.get("resources", {}), raw.get("timeout", {}), raw.get("security", {})
        req = res.get("requests") or {}
        base = SandboxPolicy()
        return SandboxPolicy(
            image=str(raw.get("image", base.image)), network=str(raw.get("network", base.network)),
            cpus=float(res.get("cpus", base.cpus)), memory_bytes=parse_size(res.get("memory", base.memory_bytes)),
            pids=int(res.get("pids", base.pids)),
            request_cpus=float(req["cpus"]) if "cpus" in req else None,
            request_memory_bytes=parse_size(req["memory"]) if "memory" in req else None,
            provision_timeout_s=parse_seconds(timeout.get("provision", base.provision_timeout_s)),
            grade_timeout_s=parse_seconds(timeout.get("grade", base.grade_timeout_s)),
            total_timeout_s=parse_seconds(timeout.get("total", base.total_timeout_s)),
            command_timeout_s=parse_seconds(timeout["command"]) if timeout.get("command") else None,
            output_bytes=parse_size(res.get("output", base.output_bytes)),
            user=str(raw.get("user", base.user)), read_only_rootfs=bool(sec.get("read_only_rootfs", True)),
            tmpfs=dict(sec.get("tmpfs", base.tmpfs)),
        )
    except (ValueError, TypeError, AttributeError) as exc:
        raise BadInput(f"{path}: not a valid sandbox file ({exc})") from None


def parse_size(value: Any) -> int:
    if isinstance(value, (int, float)):
        return int(value)
    match = _SIZE.match(str(value).strip())
    if not match:
        raise ValueError(f"{value!r} is not a size like 3g or 512m")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def parse_seconds(value: Any) -> float:
    return float(str(value).strip().removesuffix("s"))


# ---- how this machine enforces the policy ---------------------------------------------------


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
            return Enforcement("docker")
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
                        "anywhere this user can; only a Python-level guard (bypassable) refuses non-loopback "
                        "connections")
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


def docker_argv(policy: SandboxPolicy, *, job_dir: Path, labs_roots: list[Path], job_file: str, name: str) -> list[str]:
    """`docker run` for one submission's review; each flag is the one sandbox.yaml names.
    The lab catalog (hidden checks included) is mounted read-only; the job folder is the
    only writable mount."""
    argv = [
        "docker", "run", "--rm", "--name", name, "--network", policy.network,
        "--cpus", f"{policy.cpus:g}", "--memory", str(policy.memory_bytes),
        "--memory-swap", str(policy.memory_bytes), "--pids-limit", str(policy.pids),
        "--user", policy.user, "--security-opt", "no-new-privileges", "--cap-drop", "ALL",
    ]
    if policy.read_only_rootfs:
        argv.append("--read-only")
    for target, options in policy.tmpfs.items():
        argv += ["--tmpfs", f"{target}:{options}"]
    for i, root in enumerate(labs_roots):
        argv += ["-v", f"{root}:/labs/{i}:ro"]
    argv += [
        "-v", f"{job_dir}:/review", "-e", "LABKIT_LABS_PATH=" + ":".join(f"/labs/{i}" for i in range(len(labs_roots))),
        "-e", "LABKIT_HOME=/review/home",
        "-e", "LABKIT_REVIEW_KEY",  # by name: its value comes from the caller's env, never from argv
        "--entrypoint", "python", policy.image, "-m", "labkit.review.worker", f"/review/{job_file}",
    ]
    return argv
