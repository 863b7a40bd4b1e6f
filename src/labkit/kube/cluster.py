"""A kind cluster: create or reuse, load images, delete — and who owns it.

labkit deletes on `stop` only a cluster it created itself (an ownership marker in
LABKIT_HOME says so); a cluster the user made, even under the same name, is reused and
left standing. The kubeconfig is written apart from ~/.kube/config, so labkit never edits
the user's own contexts; `.labkit/env` in the workspace points KUBECONFIG at it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from labkit.errors import RuntimeUnavailable
from labkit.kube import tools
from labkit.paths import labkit_home
from labkit.proc import DEFAULT_RUNNER, ProcessRunner

CREATE_TIMEOUT_S = 900  # measured 35 s idle, 97 s on a loaded 2-core host; image pulls online
LOAD_TIMEOUT_S = 900
NODE_IMAGE_ENV = "LABKIT_KIND_NODE_IMAGE"
NODE_LABEL = "io.x-k8s.kind.cluster"
WAKE_TIMEOUT_S = 120


def offline_node_image() -> str:
    return f"labkit/kind-node:{tools.offline_versions().get('K8S_VERSION', 'v1.34.4')}"


@dataclass
class KindCluster:
    name: str
    config: Path
    runner: ProcessRunner = DEFAULT_RUNNER
    progress: Callable[[str], None] = field(default=lambda message: None)
    woken: list[str] = field(default_factory=list)  # nodes ensure() had to start again

    @classmethod
    def default(cls, *, runner: ProcessRunner = DEFAULT_RUNNER,
                progress: Callable[[str], None] = lambda message: None) -> KindCluster:
        config = tools.cluster_config()
        return cls(tools.cluster_name(config), config, runner, progress)

    @property
    def context(self) -> str:
        return f"kind-{self.name}"

    @property
    def kubeconfig(self) -> Path:
        return labkit_home() / "kind" / f"{self.name}.kubeconfig"

    @property
    def _owner_marker(self) -> Path:
        return labkit_home() / "kind" / f"{self.name}.created-by-labkit"

    @property
    def owned(self) -> bool:
        return self._owner_marker.exists()

    def _kind(self) -> str:
        kind = tools.find_tool("kind")
        if kind is None:
            raise RuntimeUnavailable(
                "kind is not installed",
                hint="go install sigs.k8s.io/kind@v0.33.0  (or: bash infra/offline/prepare.sh / labkit offline prepare)",
            )
        return kind

    def exists(self) -> bool:
        result = self.runner.run([self._kind(), "get", "clusters"], timeout=60)
        return self.name in result.stdout.split()

    def node_image(self) -> str | None:
        """$LABKIT_KIND_NODE_IMAGE, else the offline node image if built here, else kind's default."""
        if os.environ.get(NODE_IMAGE_ENV):
            return os.environ[NODE_IMAGE_ENV]
        from labkit.kube.images import image_exists

        image = offline_node_image()
        return image if image_exists(image, self.runner) else None

    def ensure(self) -> bool:
        """Create the cluster unless it exists; always (re)write our kubeconfig. True if created.

        An existing cluster whose node containers stopped (Docker or the machine restarted)
        has them started again; `woken` names them, so the caller waits for the API server.
        """
        self.kubeconfig.parent.mkdir(parents=True, exist_ok=True)
        self.woken = []
        if self.exists():
            self.woken = self.wake()
            self.runner.run([self._kind(), "export", "kubeconfig", "--name", self.name,
                             "--kubeconfig", str(self.kubeconfig)], timeout=60)
            return False
        argv = [self._kind(), "create", "cluster", "--name", self.name, "--config", str(self.config),
                "--kubeconfig", str(self.kubeconfig), "--wait", "5m"]
        image = self.node_image()
        if image:
            argv += ["--image", image]
        self.progress(f"creating kind cluster {self.name!r}" + (f" from {image}" if image else ""))
        self._owner_marker.write_text("created by labkit start; labkit stop deletes this cluster\n")
        try:
            self.runner.run(argv, timeout=CREATE_TIMEOUT_S)
        except BaseException:
            self.delete()  # kind leaves a half-made node container behind on failure
            raise
        return True

    def stopped_nodes(self) -> list[str]:
        """The cluster's node containers that are not running (kind labels them with its name)."""
        out = self.runner.run(["docker", "ps", "-a", "--filter", f"label={NODE_LABEL}={self.name}",
                               "--format", "{{.Names}}\t{{.State}}"], timeout=60).stdout
        rows = [line.split("\t", 1) for line in out.splitlines() if "\t" in line]
        return sorted(name for name, state in rows if state.strip() != "running")

    def wake(self) -> list[str]:
        """docker start the stopped nodes: kind does not restart them after a reboot itself."""
        stopped = self.stopped_nodes()
        if stopped:
            self.progress(f"starting the stopped node(s) of kind cluster {self.name!r}: {', '.join(stopped)} "
                          "(Docker or the machine was restarted)")
            self.runner.run(["docker", "start", *stopped], timeout=WAKE_TIMEOUT_S)
        return stopped

    def load_image(self, image: str) -> None:
        """kind load docker-image: skipped by kind itself when the node already has that ID."""
        self.runner.run([self._kind(), "load", "docker-image", image, "--name", self.name], timeout=LOAD_TIMEOUT_S)

    def delete(self) -> None:
        self.runner.run([self._kind(), "delete", "cluster", "--name", self.name,
                         "--kubeconfig", str(self.kubeconfig)], timeout=300)
        self._owner_marker.unlink(missing_ok=True)
        self.kubeconfig.unlink(missing_ok=True)
