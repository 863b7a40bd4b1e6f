"""`labkit verify LAB`: a lab proves its grader, as an author command and as what
tests/labs runs.

On each seed: the untouched starter scores at most ``max_starter_percent``; the reference
solution scores 100 % on every repeat; each ``wrong/`` fix fails (not errors) the checks
its index names; each ``fair/`` alternative keeps 100 %; mutants of the solution lose
points (a survivor is a missing check unless ``mutants/equivalent.yaml`` says in one line
why it is harmless); with ``stress``, the solution graded with every core busy gives the
idle grade's per-check results, or ``error``; with ``cold``, the solution graded with
every candidate command cold (LABKIT_WARM=0) gives the warm grade's per-check results.
"""

from __future__ import annotations

import os
import time

from labkit.catalog import Lab, load_lab, require_sources
from labkit.errors import UserError
from labkit.grading.results import GradeResult, Status
from labkit.ui import UI
from labkit.verify.entries import check_entry, corpus, failing_checks
from labkit.verify.labrun import LabUnderTest, running_lab
from labkit.verify.lanes import other_lanes, split
from labkit.verify.mutants import Mutant, equivalents, sample, solution_mutants
from labkit.verify.report import Finding, MutantOutcome, VerifyReport
from labkit.verify.stress import cores_busy


def verify_lab(*, lab_id: str, seeds: list[int], repeats: int = 3, mutants: int | None = 0,
               mutant_ids: tuple[str, ...] = (), stress: bool = False, cold: bool = False,
               mutants_only: bool = False, ui: UI) -> VerifyReport:
    """``mutants``: how many to grade (a fixed sample), None for all, 0 for none;
    ``mutant_ids``: exactly these instead (an author re-grading the survivors of a run
    after writing the checks they called for, equivalent ones included).
    ``mutants_only``: no starter and no wrong/ or fair/ corpus, the solution's grades
    being the baseline the mutants are judged against (a mutation run can take hours)."""
    lab = load_lab(lab_id)
    require_sources(lab, hidden_checks=True, solution=True, command="labkit verify")
    report = VerifyReport(lab_id=lab.id, seeds=list(seeds))
    known = equivalents(lab)
    for seed in seeds:
        with running_lab(lab, seed, ui) as under_test:
            by_id(solution_mutants(lab, under_test.pristine), mutant_ids)  # a mistyped id: before any grade
            if not mutants_only:
                report.add(check_starter(lab, under_test))
            graded = check_solution(under_test, repeats)
            report.findings += [finding for finding, _ in graded]
            if not mutants_only:
                report.findings += check_corpus(lab, under_test, "wrong") + check_corpus(lab, under_test, "fair")
            if (mutants != 0 or mutant_ids) and graded[0][1].full_marks:
                report.mutants_total, outcomes = check_mutants(lab, under_test, mutants, known, ui, mutant_ids)
                report.mutants += outcomes
            if stress:
                report.add(check_stress(under_test, graded[0][1]))
            if cold:
                report.add(check_cold(under_test, graded[0][1]))
    return report


def check_starter(lab: Lab, run: LabUnderTest) -> Finding:
    run.restore(solved=False)
    result = run.grade()
    limit = lab.spec.grading.max_starter_percent
    ok = result.complete and result.percent <= limit
    return Finding("starter", f"seed {run.seed}", ok,
                   f"{result.percent:.0f}% (limit {limit:g}%)" + ("" if result.complete else "; incomplete"),
                   failing_checks(result) if not ok else "")


def check_solution(run: LabUnderTest, repeats: int) -> list[tuple[Finding, GradeResult]]:
    out = []
    for attempt in range(1, repeats + 1):
        run.restore(solved=True)
        result = run.grade()
        out.append((Finding("solution", f"seed {run.seed} grade {attempt}", result.full_marks,
                            f"{result.percent:.0f}%", "" if result.full_marks else failing_checks(result)), result))
    return out


def check_corpus(lab: Lab, run: LabUnderTest, kind: str) -> list[Finding]:
    """``wrong``: each fails (not errors) the checks it names; ``fair``: each keeps 100 %.
    In ``grading.verify_lanes`` lanes at once (lanes.py); this one grades the first share."""
    own, *others = split(corpus(lab, kind), lab.spec.grading.verify_lanes)
    with other_lanes(lab, run.seed, kind, others) as lanes:
        found = [check_entry(lab, run, kind, name, meta) for name, meta in own]
        for lane in lanes:
            found += lane.findings()
    return found


def check_mutants(lab: Lab, run: LabUnderTest, count: int | None, known: dict[str, str],
                  ui: UI, ids: tuple[str, ...] = ()) -> tuple[int, list[MutantOutcome]]:
    """(how many mutants the solution has, the outcome of each graded one)."""
    every = solution_mutants(lab, run.pristine)
    chosen = by_id(every, ids) if ids else sample(every, count, seed=run.seed)
    out = []
    for i, mutant in enumerate(chosen, 1):
        if mutant.id in known and not ids:
            out.append(MutantOutcome(mutant.id, mutant.description, "equivalent", known[mutant.id]))
            continue
        ui.note(f"mutant {i}/{len(chosen)}: {mutant.id}")
        outcome = grade_mutant(run, mutant)
        # a mutation run takes hours: each verdict shows as it comes, not only in the final report
        said = "" if outcome.outcome == "survived" else (outcome.detail.splitlines() or [""])[0]  # a survivor's diff: in the report
        ui.note(f"  {outcome.outcome} in {outcome.seconds:.0f} s" + (f": {said}" if said else ""))
        out.append(outcome)
    return len(every), out


def by_id(mutants: list[Mutant], ids: tuple[str, ...]) -> list[Mutant]:
    """The mutants named, in file order; every unknown id at once."""
    unknown = sorted(set(ids) - {m.id for m in mutants})
    if unknown:
        raise UserError(f"the solution has no mutant {', '.join(unknown)} ({len(mutants)} mutants)",
                       hint="ids are printed by `labkit verify LAB --mutants all`; they move when the solution changes")
    return [m for m in mutants if m.id in ids]


def grade_mutant(run: LabUnderTest, mutant: Mutant) -> MutantOutcome:
    """The solution with one mutant applied, graded until its first failed check: that is
    the verdict, and the checks after it would cost a whole grade per killed mutant."""
    run.restore(solved=True)
    original = (run.workspace / mutant.path).read_text(encoding="utf-8")
    mutant.apply(run.workspace)
    began = time.monotonic()
    result = run.grade(stop_at_first_fail=True)
    seconds = round(time.monotonic() - began, 1)
    if not result.complete and result.count(Status.FAIL) == 0:
        outcome, detail = "error", failing_checks(result)
    elif result.full_marks:
        outcome, detail = "survived", mutant.diff(original)
    else:
        failed = [c.check_id.split("::")[-1] for c in result.checks if c.status is Status.FAIL]
        outcome, detail = "killed", f"failed: {', '.join(failed)}"
    return MutantOutcome(mutant.id, mutant.description, outcome, detail, seconds)


def check_stress(run: LabUnderTest, idle: GradeResult) -> Finding:
    """The solution graded with every core busy: each check as idle, or ``error``."""
    run.restore(solved=True)
    with cores_busy():
        loaded = run.grade()
    changed = _changed(idle, loaded, "idle", "under load", error_ok=True)
    return Finding("stress", f"seed {run.seed}", not changed and bool(loaded.checks),
                   f"{loaded.percent:.0f}% under load ({idle.percent:.0f}% idle)", "\n".join(changed))


def check_cold(run: LabUnderTest, warm: GradeResult) -> Finding:
    """The solution graded with every candidate command cold (labkit.warm switched off):
    each check exactly as in the warm grade."""
    from labkit.warm.client import SWITCH_ENV

    run.restore(solved=True)
    saved = os.environ.get(SWITCH_ENV)
    os.environ[SWITCH_ENV] = "0"
    try:
        cold = run.grade()
    finally:
        if saved is None:
            del os.environ[SWITCH_ENV]
        else:
            os.environ[SWITCH_ENV] = saved
    changed = _changed(warm, cold, "warm", "cold", error_ok=False)
    return Finding("cold", f"seed {run.seed}", not changed and bool(cold.checks),
                   f"{cold.percent:.0f}% cold ({warm.percent:.0f}% warm)", "\n".join(changed))


def _changed(before: GradeResult, after: GradeResult, was: str, now: str, *, error_ok: bool) -> list[str]:
    first = {c.check_id: c.status for c in before.checks}
    return [f"{check}: {first.get(check)} {was}, {c} {now}" for check, c in
            ((c.check_id, c.status) for c in after.checks)
            if c is not first.get(check) and not (error_ok and c is Status.ERROR)]
