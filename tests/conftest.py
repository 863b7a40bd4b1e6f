"""Shared fixtures: every test gets its own LABKIT_HOME and sees labkit's test labs."""

from __future__ import annotations

import importlib
import os
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURE_LABS = REPO / "tests" / "fixtures" / "labs"


def adder_with_checks(tmp_path: Path, name: str, source: str):
    """The adder fixture lab copied under tmp_path with one more hidden check file
    (``name``), its solution as the workspace and an empty state folder: what a test of the
    real runner and plugin grades. Returns (lab, workspace, state_dir)."""
    from labkit.catalog import load_lab

    labs = tmp_path / "labs"
    shutil.copytree(FIXTURE_LABS / "adder", labs / "adder")
    (labs / "adder" / "checks" / "hidden" / name).write_text(source)
    workspace, state = tmp_path / "ws", tmp_path / "state"
    shutil.copytree(labs / "adder" / "solution", workspace)
    state.mkdir()
    return load_lab("adder", roots=[labs]), workspace, state


def processes_with(token: str) -> list[int]:
    """Live processes whose command line carries ``token`` (zombies have none). By token, not
    pid: a grader in a pid namespace of its own reports pids that mean nothing here."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if token.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.fixture
def lab_support(monkeypatch: pytest.MonkeyPatch):
    """``lab_support(lab, "support.x", ...)``: a lab's support modules, imported fresh (every
    lab calls its package ``support``), and gone from sys.modules after the test."""

    def ours() -> list[str]:
        return [m for m in sys.modules if m == "support" or m.startswith("support.")]

    def load(lab: str, *modules: str):  # noqa: ANN202
        for name in ours():
            monkeypatch.delitem(sys.modules, name)
        monkeypatch.syspath_prepend(str(REPO / "labs" / lab))
        loaded = tuple(importlib.import_module(m) for m in modules)
        return loaded[0] if len(loaded) == 1 else loaded

    yield load
    for name in ours():
        del sys.modules[name]


@pytest.fixture
def labkit_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("LABKIT_HOME", str(home))
    monkeypatch.setenv("LABKIT_LABS_PATH", str(FIXTURE_LABS))
    monkeypatch.chdir(tmp_path)
    return home


@pytest.fixture
def run(labkit_home: Path, capsys: pytest.CaptureFixture[str]):  # noqa: ANN201
    """The CLI as a user meets it: (exit status, stdout, stderr), never a traceback."""
    from labkit import cli

    def invoke(*argv: str) -> tuple[int, str, str]:
        code = cli.main(list(argv))
        out, err = capsys.readouterr()
        assert "Traceback" not in err, err
        return code, out, err

    return invoke


@pytest.fixture
def labs_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, labkit_home: Path) -> Path:
    """A writable copy of the test labs, for tests that break a lab on purpose."""
    root = tmp_path / "labs"
    shutil.copytree(FIXTURE_LABS, root)
    monkeypatch.setenv("LABKIT_LABS_PATH", str(root))
    return root


# ---- the `cluster` marker ------------------------------------------------------------------
# Cluster tests need Docker, kind and a node image. Where those are missing they are skipped
# with the reason, unless LABKIT_REQUIRE_CLUSTER=1 (CI, after it built the offline
# toolchain): there a missing piece is a failure, never a silent skip.
REQUIRE_ENV = "LABKIT_REQUIRE_CLUSTER"


def _missing() -> str | None:
    from labkit.kube.cluster import offline_node_image
    from labkit.kube.images import image_exists
    from labkit.runtimes.kind import KindRuntime

    problem = KindRuntime().unavailable_reason()
    if problem is not None:
        return f"{problem.message} ({problem.hint})"
    if not os.environ.get("LABKIT_KIND_NODE_IMAGE") and not image_exists(offline_node_image()):
        if not os.environ.get(REQUIRE_ENV):  # online machines pull kind's image: opt in with the env var
            return f"no offline node image {offline_node_image()} (labkit offline prepare; or set {REQUIRE_ENV}=1 online)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    cluster_items = [item for item in items if item.get_closest_marker("cluster")]
    if not cluster_items:
        return
    reason = _missing()
    if reason is None:
        return
    if os.environ.get(REQUIRE_ENV):
        raise pytest.UsageError(f"{REQUIRE_ENV} is set but the kind runtime cannot run here: {reason}")
    for item in cluster_items:
        item.add_marker(pytest.mark.skip(reason=f"no kind cluster possible here: {reason}"))
