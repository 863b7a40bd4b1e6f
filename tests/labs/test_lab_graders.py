"""Every lab proves its own grader, against real services.

For each lab in the catalog: its untouched starter scores at most the lab's
max_starter_percent; its reference solution scores 100% in three consecutive
grades; and every plausible-but-wrong solution kept in its wrong/ folder scores
below 100%, failing (not erroring) the checks that name its flaw — graded on just
those checks, since their failure is what takes the score below 100% — and passing
those its entry lists under must_pass (a flaw is not charged to another rule's check).
Seeds: LABKIT_LAB_SEEDS (comma-separated), default one fixed seed per lab.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from labkit.catalog import Lab, load_all
from labkit.grading.grade import grade_lab
from labkit.grading.results import GradeResult, Status
from labkit.lifecycle import start_lab, stop_lab
from labkit.runtimes import get_runtime
from labkit.ui import UI
from labkit.workspace import overlay_solution

pytestmark = pytest.mark.labs

SEEDS = [int(s) for s in os.environ.get("LABKIT_LAB_SEEDS", "2026").split(",") if s.strip()]


def shipped_labs() -> list[Lab]:
    saved = os.environ.pop("LABKIT_LABS_PATH", None)
    try:
        labs, invalid = load_all()
    finally:
        if saved is not None:
            os.environ["LABKIT_LABS_PATH"] = saved
    assert not invalid, f"invalid labs in the catalog: {invalid}"
    return [lab for lab in labs if any(get_runtime(r).unavailable_reason() is None for r in lab.spec.runtimes)]


LABS = shipped_labs()


def lab_runtime(lab: Lab) -> str:
    """local where the lab can use it (faster), else its first runtime (kind)."""
    return "local" if "local" in lab.spec.runtimes else lab.spec.runtimes[0]


def lab_params() -> list:
    """One param per lab and seed; labs that need a cluster carry the `cluster` marker too,
    so they are skipped with the reason where no cluster can run (tests/conftest.py)."""
    return [pytest.param((lab, seed), id=f"{lab.id}-seed{seed}",
                         marks=[pytest.mark.cluster] if lab_runtime(lab) == "kind" else [])
            for lab in LABS for seed in SEEDS]


def wrong_solutions(lab: Lab) -> list[tuple[str, dict]]:
    index = lab.path / "wrong" / "index.yaml"
    return list(yaml.safe_load(index.read_text()).items()) if index.exists() else []


class RunningLab:
    def __init__(self, lab: Lab, seed: int, root: Path) -> None:
        self.lab, self.seed, self.ui = lab, seed, UI()
        self.workspace = root / "ws"
        start_lab(lab_id=lab.id, runtime=lab_runtime(lab), seed=seed, workspace=self.workspace, ui=self.ui)
        self.pristine = root / "pristine"
        shutil.copytree(self.workspace, self.pristine, symlinks=True)

    def restore(self, *, solved: bool) -> None:
        """Back to the starter as rendered (optionally with the solution), keeping the path."""
        for child in self.workspace.iterdir():
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        shutil.copytree(self.pristine, self.workspace, symlinks=True, dirs_exist_ok=True)
        if solved:
            overlay_solution(self.lab, self.workspace)

    def grade(self, select: tuple[str, ...] = ()) -> GradeResult:
        return grade_lab(hidden=True, fmt="json", out=None, ui=self.ui, select=select).result


@pytest.fixture(scope="module", params=lab_params())
def running(request, tmp_path_factory):
    lab, seed = request.param
    root = tmp_path_factory.mktemp(lab.id)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LABKIT_HOME", str(root / "home"))
        mp.delenv("LABKIT_LABS_PATH", raising=False)
        running_lab = RunningLab(lab, seed, root)
        try:
            yield running_lab
        finally:
            stop_lab(ui=running_lab.ui)


def describe(result: GradeResult) -> str:
    return "\n".join(f"  {c.status.value:5} {c.check_id}: {c.output[:300]}" for c in result.checks) + (
        f"\n  engine: {result.engine_error}" if result.engine_error else "")


def test_starter_scores_low(running):
    running.restore(solved=False)
    result = running.grade()
    limit = running.lab.spec.grading.max_starter_percent
    assert result.complete, f"the grade did not complete:\n{describe(result)}"
    assert result.percent <= limit, f"starter scored {result.percent:.0f}% > {limit:g}%:\n{describe(result)}"


def test_solution_scores_full_marks_three_times(running):
    running.restore(solved=True)
    for attempt in range(3):
        result = running.grade()
        assert result.full_marks, f"grade {attempt + 1} of the solution was {result.percent:.0f}%:\n{describe(result)}"


def test_wrong_solutions_lose_points_on_the_check_that_names_the_flaw(running, subtests):
    wrongs = wrong_solutions(running.lab)
    assert len(wrongs) >= 5, f"{running.lab.id} keeps only {len(wrongs)} wrong solutions; at least 5 are required"
    for name, meta in wrongs:
        with subtests.test(wrong=name):
            running.restore(solved=True)
            patch = next(p for p in (running.lab.path / "wrong" / f"{name}{ext}" for ext in (".patch", ".diff"))
                         if p.exists())
            subprocess.run(["git", "apply", "--whitespace=nowarn", str(patch)], cwd=running.workspace, check=True,
                           capture_output=True, text=True)
            # Only the checks that must catch this flaw (a fail among them is what makes the score < 100%),
            # and those that must not charge it (must_pass: one flaw, one check).
            must_pass = tuple(meta.get("must_pass", ()))
            result = running.grade(select=tuple(meta["must_fail"]) + must_pass)
            assert result.complete, f"{name}: the grade did not complete:\n{describe(result)}"
            assert result.percent < 100, f"{name} scored 100%: its flaw ({meta['description']}) goes unnoticed"
            status = {c.check_id.split("::")[-1]: c.status for c in result.checks}
            for check in meta["must_fail"]:
                assert status.get(check) is Status.FAIL, (
                    f"{name}: {check} should fail (flaw: {meta['description']}), was {status.get(check)}\n"
                    f"{describe(result)}")
            for check in must_pass:
                assert status.get(check) is Status.PASS, (
                    f"{name}: {check} should pass (the flaw, {meta['description']}, is another check's), "
                    f"was {status.get(check)}\n{describe(result)}")
