"""Every lab proves its own grader, against real services: the guarantees `labkit verify`
checks (src/labkit/verify), one pytest test each.

For each lab in the catalog: its untouched starter scores at most the lab's
max_starter_percent; its reference solution scores 100% in three consecutive
grades; and every plausible-but-wrong solution kept in its wrong/ folder scores
below 100%, failing (not erroring) the checks that name its flaw — graded on just
those checks, since their failure is what takes the score below 100%; every honest
alternative in fair/ keeps full marks; and, in labs whose mutation run is on record
(mutants/), a sample of the solution's mutants loses points.
Seeds: LABKIT_LAB_SEEDS (comma-separated), default one fixed seed per lab.
"""

from __future__ import annotations

import os

import pytest

from labkit.catalog import Lab, load_all
from labkit.runtimes import get_runtime
from labkit.ui import UI
from labkit.verify import check_entry, check_solution, check_starter, corpus, grade_mutant
from labkit.verify.mutants import EQUIVALENT_FILE, equivalents, solution_mutants
from labkit.verify.entries import rotating_sample
from labkit.verify.labrun import lab_runtime, running_lab
from labkit.verify.lanes import other_lanes, split

pytestmark = pytest.mark.labs

SEEDS = [int(s) for s in os.environ.get("LABKIT_LAB_SEEDS", "2026").split(",") if s.strip()]
# Grades of the solution per lab and seed. CI grades it once (its 90 minutes hold every lab's
# guarantees only so); the repeats, and the stress grade, are `labkit verify`'s on demand.
REPEATS = int(os.environ.get("LABKIT_LAB_REPEATS", "3"))
# At most this many wrong fixes per lab (unset: all). CI sets it to stay inside its 90 minutes:
# a sample that rotates by the day, so every entry is graded within a few days of CI runs;
# `labkit verify LAB` always grades them all.
WRONG_SAMPLE = int(os.environ.get("LABKIT_WRONG_SAMPLE", "0"))
# Mutants of the solution graded per lab: a sample that rotates by the day, among the
# mutants mutants/equivalent.yaml does not explain. Only labs whose full mutation run is on
# record (a mutants/ folder, written from `labkit verify LAB --mutants all`) take part: in
# another lab a survivor is a check still to write, not a regression.
MUTANT_SAMPLE = int(os.environ.get("LABKIT_MUTANT_SAMPLE", "2"))


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


def lab_params() -> list:
    """One param per lab and seed; labs that need a cluster carry the `cluster` marker too,
    so they are skipped with the reason where no cluster can run (tests/conftest.py)."""
    return [pytest.param((lab, seed), id=f"{lab.id}-seed{seed}",
                         marks=[pytest.mark.cluster] if lab_runtime(lab) == "kind" else [])
            for lab in LABS for seed in SEEDS]


@pytest.fixture(scope="module", params=lab_params())
def running(request, tmp_path_factory):
    lab, seed = request.param
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("LABKIT_LABS_PATH", raising=False)
        with running_lab(lab, seed, UI(), root=tmp_path_factory.mktemp(lab.id)) as under_test:
            yield under_test


def test_starter_scores_low(running):
    finding = check_starter(running.lab, running)
    assert finding.ok, f"starter: {finding.summary}\n{finding.detail}"


def test_solution_scores_full_marks_every_time(running):
    for finding, _ in check_solution(running, repeats=REPEATS):
        assert finding.ok, f"{finding.name} of the solution: {finding.summary}\n{finding.detail}"


def graded_corpus(running, kind: str, entries: list[tuple[str, dict]]):
    """(name, finding) of every entry: this process grades its share in its running lab
    while the lab's other verify_lanes grade theirs (labkit.verify.lanes)."""
    own, *others = split(entries, running.lab.spec.grading.verify_lanes)
    with other_lanes(running.lab, running.seed, kind, others) as lanes:
        for name, meta in own:
            yield name, check_entry(running.lab, running, kind, name, meta)
        for lane in lanes:
            for finding in lane.findings():
                yield finding.name, finding


def test_wrong_solutions_lose_points_on_the_check_that_names_the_flaw(running, subtests):
    wrongs = corpus(running.lab, "wrong")
    assert len(wrongs) >= 5, f"{running.lab.id} keeps only {len(wrongs)} wrong solutions; at least 5 are required"
    chosen = rotating_sample(wrongs, WRONG_SAMPLE)
    print(f"grading {len(chosen)} of {len(wrongs)} wrong fixes: {', '.join(name for name, _ in chosen)}")
    for name, finding in graded_corpus(running, "wrong", chosen):
        with subtests.test(wrong=name):
            assert finding.ok, f"{name}: {finding.summary}\n{finding.detail}"


def test_fair_alternatives_keep_full_marks(running, subtests):
    fair = corpus(running.lab, "fair")
    if not fair:
        pytest.skip(f"{running.lab.id} has no fair/ alternatives yet")
    for name, finding in graded_corpus(running, "fair", fair):
        with subtests.test(fair=name):
            assert finding.ok, f"{name} (an honest alternative) lost points: {finding.summary}\n{finding.detail}"


def test_mutants_of_the_solution_lose_points(running, subtests):
    if not (running.lab.path / EQUIVALENT_FILE).parent.is_dir():
        pytest.skip(f"{running.lab.id}: no mutation run on record yet (mutants/)")
    known = equivalents(running.lab)
    mutants = [m for m in solution_mutants(running.lab, running.pristine) if m.id not in known]
    stale = set(known) - {m.id for m in solution_mutants(running.lab, running.pristine)}
    assert not stale, f"{EQUIVALENT_FILE} explains mutants the solution no longer has: {sorted(stale)}"
    chosen = rotating_sample(mutants, MUTANT_SAMPLE)
    print(f"grading {len(chosen)} of {len(mutants)} mutants: {', '.join(m.id for m in chosen)}")
    for mutant in chosen:
        with subtests.test(mutant=mutant.id):
            outcome = grade_mutant(running, mutant)
            assert outcome.outcome == "killed", f"{mutant.id} {outcome.outcome}: {outcome.detail}"
