"""The seccomp profile of a review's container when candidate commands get namespaces of
their own inside it (sandbox.yaml ``security.candidate_namespaces``).

Docker's default profile refuses ``unshare``, namespace flags of ``clone`` and ``mount``
to a process without CAP_SYS_ADMIN, so inside the default container the grader cannot
give a candidate command the user, mount, pid and network namespaces that hide the
lab's hidden checks and solution from it (the subprocess sandbox's confinement,
labkit.sandbox.confine). This profile allows everything except the system calls Docker's
documentation lists as blocked for their danger to the host kernel, minus the namespace
and mount calls that confinement needs; those stay harmless without capabilities in the
container's own user namespace (the container runs as a non-root user, with every
capability dropped and no-new-privileges).
"""

from __future__ import annotations

import json
from pathlib import Path

# Kept refused: kernel keyrings, BPF, perf, io_uring, userfaultfd, module loading, kexec,
# clock and swap changes, cross-process memory access and tracing, obsolete interfaces.
REFUSED = (
    "acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module", "delete_module",
    "finit_module", "fanotify_init", "get_kernel_syms", "get_mempolicy", "init_module", "io_uring_enter",
    "io_uring_register", "io_uring_setup", "ioperm", "iopl", "kcmp", "kexec_file_load", "kexec_load", "keyctl",
    "lookup_dcookie", "mbind", "move_pages", "name_to_handle_at", "nfsservctl", "open_by_handle_at",
    "perf_event_open", "pivot_root", "process_vm_readv", "process_vm_writev", "ptrace", "query_module",
    "quotactl", "reboot", "request_key", "set_mempolicy", "setns", "settimeofday", "swapoff", "swapon",
    "sysfs", "_sysctl", "uselib", "userfaultfd", "ustat", "vm86", "vm86old",
)
EPERM = 1


def profile() -> dict:
    return {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"],
        "syscalls": [{"names": list(REFUSED), "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM}],
    }


def write_profile(path: Path) -> Path:
    """The profile as a file: `docker run --security-opt seccomp=FILE` reads it client-side."""
    path.write_text(json.dumps(profile(), indent=1) + "\n", encoding="utf-8")
    return path
