"""Finding docker, kind and kubectl, and the offline toolchain's cache.

`infra/offline/prepare.sh` installs kind and builds kubectl into its cache rather than
onto PATH (it must not shadow a user's own tools), so labkit looks there too, after PATH.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

from labkit.paths import project_file

DOCKER_SOCKET = Path("/var/run/docker.sock")
DEFAULT_CLUSTER_CONFIG = "infra/kind/cluster.yaml"


def offline_cache() -> Path:
    return Path(os.environ.get("LABKIT_CACHE") or Path.home() / ".cache" / "labkit" / "offline").expanduser()


def offline_versions() -> dict[str, str]:
    """infra/offline/versions.env as a dict (KEY=VALUE lines)."""
    path = project_file("infra/offline/versions.env")
    out: dict[str, str] = {}
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            out[key.strip()] = value.strip()
    return out


def find_tool(name: str) -> str | None:
    """PATH first, then the offline cache, then Go's bin folder (`go install` puts kind there)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = [offline_cache() / "bin" / name, Path.home() / "go" / "bin" / name]
    k8s = offline_versions().get("K8S_VERSION")
    if k8s:
        candidates.append(offline_cache() / "k8s" / k8s / "bin" / name)
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def off_path_dirs(names: tuple[str, ...]) -> list[str]:
    """The folders of those tools that labkit finds only off PATH (the offline cache,
    ~/go/bin), in order, once each. Tools PATH already reaches add nothing: putting their
    folder (say /usr/local/bin) first would reorder the user's own PATH."""
    dirs: list[str] = []
    for name in names:
        if shutil.which(name):
            continue
        found = find_tool(name)
        if found and str(Path(found).parent) not in dirs:
            dirs.append(str(Path(found).parent))
    return dirs


def docker_socket_answers(path: Path = DOCKER_SOCKET) -> bool:
    """Is a Docker engine listening? A connect is cheap; `docker info` costs ~0.1 s."""
    host = os.environ.get("DOCKER_HOST", "")
    if host.startswith("unix://"):
        path = Path(host[len("unix://"):])
    elif host:
        return True  # a remote engine: let docker itself say whether it answers
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(1.0)
            sock.connect(str(path))
        return True
    except OSError:
        return False


def cluster_config() -> Path:
    return Path(os.environ.get("LABKIT_KIND_CONFIG") or project_file(DEFAULT_CLUSTER_CONFIG))


def cluster_name(config: Path | None = None) -> str:
    """$LABKIT_KIND_CLUSTER, else the `name:` of the kind config, else 'labkit'."""
    if os.environ.get("LABKIT_KIND_CLUSTER"):
        return os.environ["LABKIT_KIND_CLUSTER"]
    try:
        for line in (config or cluster_config()).read_text().splitlines():
            if line.startswith("name:"):
                return line.split(":", 1)[1].strip().strip("'\"")
    except OSError:
        pass
    return "labkit"
