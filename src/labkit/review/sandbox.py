"""The review's use of the sandbox: the `docker run` of one submission's review, and the
sandbox names the review's modules use (labkit.sandbox holds them; re-exported here so
the review's callers keep importing them from one place).

The limits are data (grader/sandbox.yaml, read by labkit.sandbox.spec); how this machine
enforces them is labkit.sandbox.enforcement; a candidate command runs confined through
labkit.sandbox.runner.
"""

from __future__ import annotations

from pathlib import Path

from labkit.sandbox.enforcement import Enforcement, cgroup_root, choose_enforcement, docker_ready, unshare_works
from labkit.sandbox.limits import SandboxPolicy, parse_seconds, parse_size
from labkit.sandbox.seccomp import write_profile
from labkit.sandbox.spec import SANDBOX_ENV, load_policy

__all__ = ["SANDBOX_ENV", "Enforcement", "SandboxPolicy", "cgroup_root", "choose_enforcement", "docker_argv",
           "docker_ready", "load_policy", "parse_seconds", "parse_size", "unshare_works"]


def docker_argv(policy: SandboxPolicy, *, job_dir: Path, labs_roots: list[Path], job_file: str, name: str) -> list[str]:
    """`docker run` for one submission's review; each flag is the one sandbox.yaml names.
    The lab catalog (hidden checks included) is mounted read-only; the job folder is the
    only writable mount. With candidate namespaces, the container's seccomp profile is
    written into the job folder (docker reads it on this side)."""
    argv = [
        "docker", "run", "--rm", "--name", name, "--network", policy.network,
        "--cpus", f"{policy.cpus:g}", "--memory", str(policy.memory_bytes),
        "--memory-swap", str(policy.memory_bytes), "--pids-limit", str(policy.pids),
        "--user", policy.user,
    ]
    if policy.no_new_privileges:
        argv += ["--security-opt", "no-new-privileges"]
    for capability in policy.cap_drop:
        argv += ["--cap-drop", capability]
    if policy.candidate_namespaces:
        profile = write_profile(job_dir / "seccomp.json")
        argv += ["--security-opt", f"seccomp={profile}", "--security-opt", "systempaths=unconfined"]
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
        # -P: the worker's folder is never on its import path (it holds the submission's files)
        "--entrypoint", "python", policy.image, "-P", "-m", "labkit.review.worker", f"/review/{job_file}",
    ]
    return argv
