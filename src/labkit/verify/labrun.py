"""One lab running for an author's verification: started once in a LABKIT_HOME of its own
(so a lab the author has running is never touched), then reset to the starter, the
solution, or the solution with a change applied, and graded, as often as needed."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from labkit.catalog import Lab
from labkit.errors import BadInput
from labkit.grading.results import GradeResult
from labkit.ui import UI


def lab_runtime(lab: Lab) -> str:
    """local where the lab can use it (faster), else its first runtime (kind)."""
    return "local" if "local" in lab.spec.runtimes else lab.spec.runtimes[0]


class LabUnderTest:
    def __init__(self, lab: Lab, seed: int, root: Path, ui: UI) -> None:
        from labkit.lifecycle import start_lab

        self.lab, self.seed, self.ui = lab, seed, ui
        self.workspace = root / "ws"
        start_lab(lab_id=lab.id, runtime=lab_runtime(lab), seed=seed, workspace=self.workspace, ui=ui)
        self.pristine = root / "pristine"
        shutil.copytree(self.workspace, self.pristine, symlinks=True)

    def restore(self, *, solved: bool) -> None:
        """Back to the starter as rendered (optionally with the solution), keeping the path."""
        from labkit.workspace import overlay_solution

        for child in self.workspace.iterdir():
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        shutil.copytree(self.pristine, self.workspace, symlinks=True, dirs_exist_ok=True)
        if solved:
            overlay_solution(self.lab, self.workspace)

    def apply_patch(self, patch: Path) -> None:
        done = subprocess.run(["git", "apply", "--whitespace=nowarn", str(patch)], cwd=self.workspace,
                              capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise BadInput(f"{patch} does not apply to the solution: {done.stderr.strip()}",
                           hint="regenerate it from the current solution")

    def grade(self, select: tuple[str, ...] = (), *, stop_at_first_fail: bool = False) -> GradeResult:
        from labkit.grading.grade import grade_lab

        return grade_lab(hidden=True, fmt="json", out=None, ui=self.ui, select=select,
                         stop_at_first_fail=stop_at_first_fail).result


@contextmanager
def running_lab(lab: Lab, seed: int, ui: UI, root: Path | None = None) -> Iterator[LabUnderTest]:
    """The lab started in a home of its own for the block; stopped (and the home removed,
    when labkit made it) afterwards."""
    from labkit.lifecycle import stop_lab

    own = root is None
    root = Path(tempfile.mkdtemp(prefix=f"labkit-verify-{lab.id}-")) if own else root
    saved = os.environ.get("LABKIT_HOME")
    os.environ["LABKIT_HOME"] = str(root / "home")
    try:
        under_test = LabUnderTest(lab, seed, root, ui)
        try:
            yield under_test
        finally:
            stop_lab(ui=ui)
    finally:
        if saved is None:
            os.environ.pop("LABKIT_HOME", None)
        else:
            os.environ["LABKIT_HOME"] = saved
        if own:
            shutil.rmtree(root, ignore_errors=True)
