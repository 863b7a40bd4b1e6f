"""Looking at a pod from its kind node: a request straight to the pod, and its memory cgroup.

A check that asks the pod itself, or reads the pod's own container, asks code the
candidate wrote: an image can answer anything from inside. The node is labkit's (a
kind node is a Docker container), so what is seen from it is what the kernel and the
network did. Kind runs its nodes as Docker containers named after the node, which is
what a pod's `spec.nodeName` says.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import Any

from labkit.proc import DEFAULT_RUNNER, ProcessRunner

STATUS_MARK = "\n__labkit_status__="
# The headers Python's urllib sends, which is how a lab's checks call a Service: a request
# asked straight at a pod must not be told apart by its client (curl's own Accept and
# User-Agent are replaced; an empty value removes a header).
CLIENT_HEADERS = {"User-Agent": f"Python-urllib/{sys.version_info.major}.{sys.version_info.minor}",
                  "Accept-Encoding": "identity", "Connection": "close", "Accept": ""}


@dataclass(frozen=True)
class PodAnswer:
    status: int  # 0: no HTTP answer at all (refused, reset, timed out)
    body: str
    error: str = ""  # curl's reason when status is 0


@dataclass(frozen=True)
class PodMemory:
    usage_bytes: int  # what the pod's cgroup holds now, page cache that can be dropped excluded
    peak_bytes: int  # the most it ever held
    oom_kills: int  # processes of the pod the kernel killed for memory (the container may live on)


def pod_request(pod: dict[str, Any], port: int, path: str, *, method: str = "GET", body: str | None = None,
                headers: dict[str, str] | None = None, timeout_s: float = 10.0,
                runner: ProcessRunner = DEFAULT_RUNNER) -> PodAnswer:
    """An HTTP request to the pod's own IP, sent from its node: readiness and Services
    play no part, so an unready pod is asked too."""
    node, ip = pod["spec"]["nodeName"], (pod.get("status") or {}).get("podIP")
    if not ip:
        return PodAnswer(0, "", "the pod has no IP yet")
    argv = ["docker", "exec", "-i", node, "curl", "-sS", "-m", f"{timeout_s:g}", "-X", method,
            "-o", "-", "-w", STATUS_MARK + "%{http_code}"]
    for name, value in {**CLIENT_HEADERS, **(headers or {})}.items():
        argv += ["-H", f"{name}: {value}" if value else f"{name}:"]
    if body is not None:
        argv += ["--data-binary", "@-"]
    argv.append(f"http://{ip}:{port}{path}")
    done = runner.run(argv, timeout=timeout_s + 30, check=False, input_text=body if body is not None else "")
    out, _, code = done.stdout.rpartition(STATUS_MARK)
    status = int(code) if code.strip().isdigit() else 0
    return PodAnswer(status, out if status else "", "" if status else (done.stderr.strip() or "no answer")[-300:])


def pod_memory(pod: dict[str, Any], *, runner: ProcessRunner = DEFAULT_RUNNER) -> PodMemory:
    """The pod's memory cgroup as its node sees it, cgroup v1 or v2.

    OOM kills are counted over the pod's cgroup and its containers' (the larger wins: v1
    counts a kill in the container's cgroup, v2 in every ancestor too).
    """
    node, uid = pod["spec"]["nodeName"], pod["metadata"]["uid"].replace("-", "_")
    script = (
        f'for d in $(find /sys/fs/cgroup -type d -name "*pod{uid}.slice" 2>/dev/null); do '
        'for f in memory.usage_in_bytes memory.max_usage_in_bytes memory.current memory.peak; do '
        '[ -f "$d/$f" ] && echo "pod $f $(cat $d/$f)"; done; '
        'for f in memory.stat; do [ -f "$d/$f" ] && sed "s/^/pod stat /" "$d/$f"; done; '
        'for f in $(find "$d" -name memory.oom_control -o -name memory.events); do '
        'sed -n "s/^oom_kill /kills /p" "$f"; done; done')
    done = runner.run(["docker", "exec", node, "sh", "-c", script], timeout=60)
    return parse_memory(done.stdout)


def parse_memory(text: str) -> PodMemory:
    values: dict[str, int] = {}
    kills = 0
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "kills" and parts[1].isdigit():
            kills = max(kills, int(parts[1]))
        elif len(parts) == 3 and parts[0] == "pod" and parts[2].isdigit():
            values[parts[1]] = int(parts[2])
        elif len(parts) == 4 and parts[:2] == ["pod", "stat"] and parts[3].isdigit():
            values.setdefault(f"stat.{parts[2]}", int(parts[3]))
    if not values:
        raise LookupError("the pod's memory cgroup was not found on its node")
    usage = values.get("memory.current", values.get("memory.usage_in_bytes", 0))
    inactive = values.get("stat.inactive_file", values.get("stat.total_inactive_file", 0))
    peak = values.get("memory.peak", values.get("memory.max_usage_in_bytes", usage))
    return PodMemory(max(usage - inactive, 0), peak, kills)


QUANTITY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")
_UNITS = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
          "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4}


def quantity(text: str | int | float) -> float:
    """A Kubernetes quantity ("384Mi", "100m", "1.5", "2G") as a number of bytes or cores."""
    match = QUANTITY.match(str(text).strip())
    if not match or match.group(2) not in _UNITS:
        raise ValueError(f"not a Kubernetes quantity: {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]
