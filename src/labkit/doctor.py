"""`labkit doctor`: what this machine has for each runtime, and the command that fixes what it lacks."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from labkit.kube.tools import find_tool, offline_versions
from labkit.paths import labkit_home
from labkit.proc import DEFAULT_RUNNER, ProcessRunner
from labkit.runtimes.local import SERVICES, pick_port

LOCAL_STACK = ("mlflow", "evidently", "prefect", "scikit-learn", "pandas")
MIN_LOCAL_MEMORY_GB = 2.0
MIN_KIND_MEMORY_GB = 6.0
KIND_VERSION = offline_versions().get("KIND_VERSION", "v0.33.0")
ACT_VERSION = offline_versions().get("ACT_VERSION", "v0.2.89")


@dataclass(frozen=True)
class Finding:
    name: str
    level: str  # ok | warn | fail  (fail: the local runtime cannot run)
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def diagnose(*, runner: ProcessRunner = DEFAULT_RUNNER) -> list[Finding]:
    findings = [_python()]
    findings += [_package(name) for name in LOCAL_STACK]
    findings.append(_memory())
    findings.append(_disk())
    findings += [_port(name) for name in SERVICES]
    docker = _tool("docker", ["docker", "version", "--format", "{{.Server.Version}}"], runner,
                   "install Docker Engine (Debian: apt-get install docker.io) or Docker Desktop")
    findings += [docker,
                 _tool("kind", ["kind", "version"], runner,
                       f"go install sigs.k8s.io/kind@{KIND_VERSION}   (offline: labkit offline prepare)"),
                 _tool("kubectl", ["kubectl", "version", "--client"], runner,
                       "https://kubernetes.io/docs/tasks/tools/ (offline: labkit offline prepare builds one)")]
    if docker.level == "ok":
        findings.append(_node_image(runner))
    findings.append(_act(runner))
    findings.append(_cgroup())
    return findings


def kind_ready(findings: list[Finding]) -> bool:
    levels = {f.name: f.level for f in findings}
    return all(levels.get(name) == "ok" for name in ("docker", "kind"))


def _python() -> Finding:
    version = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info >= (3, 11):
        return Finding("python", "ok", version)
    return Finding("python", "fail", f"{version} is too old", "install Python 3.11 or newer")


def _package(dist: str) -> Finding:
    module = {"scikit-learn": "sklearn"}.get(dist, dist)
    if importlib.util.find_spec(module) is None:
        return Finding(dist, "fail", "not installed", "pip install 'labkit-mlops[local]'")
    return Finding(dist, "ok", importlib.metadata.version(dist))


def _memory() -> Finding:
    available = _meminfo_gb("MemAvailable")
    if available is None:
        return Finding("memory", "warn", "unknown (no /proc/meminfo)")
    detail = f"{available:.1f} GB available"
    if available < MIN_LOCAL_MEMORY_GB:
        return Finding("memory", "fail", detail, f"free memory: the local runtime needs ~{MIN_LOCAL_MEMORY_GB:g} GB")
    if available < MIN_KIND_MEMORY_GB:
        return Finding("memory", "warn", detail + f"; the kind runtime wants {MIN_KIND_MEMORY_GB:g} GB")
    return Finding("memory", "ok", detail)


def _disk() -> Finding:
    home = labkit_home()
    probe = home if home.exists() else Path.home()
    free_gb = shutil.disk_usage(probe).free / 1e9
    if free_gb < 2:
        return Finding("disk", "fail", f"{free_gb:.1f} GB free at {probe}", "free disk space or set LABKIT_HOME")
    return Finding("disk", "ok", f"{free_gb:.0f} GB free at {probe}")


def _port(service: str) -> Finding:
    preferred = SERVICES[service].preferred_port
    if pick_port(preferred) == preferred:
        return Finding(f"port {preferred}", "ok", f"free for {service}")
    return Finding(f"port {preferred}", "warn", f"in use; {service} will take another free port")


def _tool(name: str, argv: list[str], runner: ProcessRunner, fix: str) -> Finding:
    path = find_tool(name)
    if path is None:
        return Finding(name, "warn", "not installed (needed for the kind runtime)", fix)
    result = runner.run([path, *argv[1:]], timeout=10, check=False)
    text = (result.stdout or result.stderr).strip().splitlines()
    if not result.ok:
        detail = text[-1] if text else f"exit {result.returncode}"
        if name == "docker":
            return Finding(name, "warn", f"the client is installed but the engine does not answer: {detail}",
                           "start the Docker engine: sudo systemctl start docker (or: sudo dockerd &)")
        return Finding(name, "warn", f"installed but not working: {detail}", fix)
    where = "" if shutil.which(name) else f" ({path})"
    return Finding(name, "ok", (text[0] if text else "installed") + where)


def _act(runner: ProcessRunner) -> Finding:
    """act plays GitHub workflows (training-cicd grades with it); only the pinned version
    is trusted to behave as the lab's checks were proven against."""
    fix = f"bash infra/offline/17-act.sh   (or: go install github.com/nektos/act@{ACT_VERSION})"
    path = find_tool("act")
    if path is None:
        return Finding("act", "warn", "not installed (needed to grade training-cicd)", fix)
    result = runner.run([path, "--version"], timeout=10, check=False)
    text = (result.stdout or result.stderr).strip()
    if not result.ok:
        return Finding("act", "warn", f"installed but not working: {text[-200:] or result.returncode}", fix)
    if not text.endswith(ACT_VERSION.lstrip("v")):
        return Finding("act", "warn", f"{text} at {path}; training-cicd is graded with {ACT_VERSION}", fix)
    return Finding("act", "ok", f"{text} ({path})")


def _node_image(runner: ProcessRunner) -> Finding:
    from labkit.kube.cluster import offline_node_image

    image = offline_node_image()
    if runner.run(["docker", "image", "inspect", image], timeout=20, check=False).ok:
        return Finding("kind node image", "ok", f"{image} (offline build)")
    return Finding("kind node image", "ok", "kind's default (pulled from its registry on first use)",
                   "without a registry: labkit offline prepare")


def _cgroup() -> Finding:
    root = Path("/sys/fs/cgroup")
    if not root.exists():
        return Finding("cgroup", "warn", "no /sys/fs/cgroup (not Linux; Docker Desktop provides its own)")
    version = "v2" if (root / "cgroup.controllers").exists() else "v1"
    return Finding("cgroup", "ok", version)


def _meminfo_gb(key: str) -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1e6
    except OSError:
        return None
    return None


def local_ready(findings: list[Finding]) -> bool:
    return all(f.level != "fail" for f in findings)
