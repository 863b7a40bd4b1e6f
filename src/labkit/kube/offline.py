"""`labkit offline prepare`: the kind toolchain for machines with no container registry.

The work is infra/offline/prepare.sh (shipped inside the wheel too): Docker from Debian,
kind and the Kubernetes binaries built from the Go module proxy, a kind node image and a
Python base image built locally. It is idempotent and cached, so a second run takes
seconds; the first takes the better part of an hour on 2 cores (the Go builds).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

from labkit.errors import RuntimeUnavailable
from labkit.kube.tools import offline_cache
from labkit.paths import project_file
from labkit.proc import DEFAULT_RUNNER, ProcessRunner

PREPARE_TIMEOUT_S = 4 * 3600


@dataclass(frozen=True)
class OfflineOutcome:
    script: str
    cache: str
    steps: tuple[str, ...]


def prepare_offline(*, steps: tuple[str, ...] = (), runner: ProcessRunner = DEFAULT_RUNNER) -> OfflineOutcome:
    script = project_file("infra/offline/prepare.sh")
    missing = [tool for tool in ("bash", "go", "apt-get") if shutil.which(tool) is None]
    if missing or os.geteuid() != 0:
        why = f"missing {', '.join(missing)}" if missing else "it installs Debian packages and starts dockerd"
        raise RuntimeUnavailable(
            f"offline prepare needs root on a Debian-like host with Go ({why})",
            hint="on a machine with internet access, install Docker + kind + kubectl instead (see README)",
        )
    runner.run_attached(["bash", str(script), *steps], timeout=PREPARE_TIMEOUT_S)
    return OfflineOutcome(str(script), str(offline_cache()), steps)
