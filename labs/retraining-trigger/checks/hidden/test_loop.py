"""The reviewers' checks: scenarios played through the candidate's loop (see support/loop.py).

In order, on one registry: two clean batches; a drift episode of three drifted batches
2 s apart (with the verified holdout refreshed to the new traffic); the API after the
promotion; after the cooldown, one drifted batch whose labels are all wrong (and the API
after it); the traffic shifts again (holdout refreshed): after the cooldown, a drifted
batch whose challenger is better than the champion by less than the margin; after the
cooldown again, five drifted batches of the new traffic at once, whose challenger is
better by far.

Each rule is judged on every retrain of every scenario up to the last one it needs (a
fixed scope, so a grade of selected checks judges as the full grade does), from what the
registry, the alias and the API show; versions are attributed to scenarios by their
trigger_batch tag (else by when they were registered), and a scenario ends when the
grade's Prefect server has nothing left to run.
"""

from __future__ import annotations

import math
import numpy as np
import pytest

from labkit.grading import InfraError, expect
from support import data
from support.loop import COOLDOWN_S, ORDER, GRADE_SETTINGS, RETRAIN_WAIT_S, SERVING_WAIT_S, Loop, Scenario, Version

AUC_TOLERANCE = 1e-3
WINDOW_AUC_TOLERANCE = 0.01  # the team's model retrained on the tagged window scores within this of the version
MARGIN = GRADE_SETTINGS["retrain"]["min_auc_gain"]
LINEAGE_TAGS = ["trigger", "trigger_batch", "data_window", "parent_version", "challenger_auc", "champion_auc", "promoted"]


def played(scenarios, name: str, *, once: bool = False) -> tuple[Loop, Scenario]:
    loop = scenarios[name]
    loop.require_started()
    scenario = loop.scenarios[name]
    if scenario.timing_problem:
        raise InfraError(scenario.timing_problem)
    if once and scenario.spread_problem:
        raise InfraError(scenario.spread_problem)
    expect(not scenario.monitor_failures, "; ".join(scenario.monitor_failures))
    return loop, scenario


def every_scenario(scenarios, upto: str = ORDER[-1]) -> tuple[Loop, list[Scenario]]:
    """Every scenario up to ``upto``, played (a rule is judged on every retrain, not on one event)."""
    loop = scenarios[upto]
    loop.require_started()
    return loop, [played(scenarios, name)[1] for name in ORDER[: ORDER.index(upto) + 1] if name in loop.scenarios]


_AUCS: dict[tuple[str, str, str], float] = {}


def auc_on(loop: Loop, scenario: Scenario, version: str) -> float:
    """The version's AUC on the holdout of the moment the scenario played (cached: models load slowly)."""
    key = (loop.model_name, version, scenario.name)
    if key not in _AUCS:
        _AUCS[key] = data.auc(loop.model(version), scenario.holdout)
    return _AUCS[key]


def parent_of(scenario: Scenario, version: Version) -> str:
    """The champion when the version was trained: the one before the scenario, or one its own
    earlier retrains promoted (as its tag says, when that is one of them)."""
    tagged = version.tags.get("parent_version", "").strip()
    earlier = [c for c in scenario.champions if c != version.number]
    return tagged if tagged in earlier else scenario.champion_before


def retrains(loop: Loop, scenarios: list[Scenario]) -> list[tuple[Scenario, Version, float]]:
    """Every retrain of the scenarios, with its real gain: challenger AUC minus champion AUC."""
    return [(s, v, auc_on(loop, s, v.number) - auc_on(loop, s, parent_of(s, v))) for s in scenarios for v in s.versions]


def described(s: Scenario, v: Version, gain: float) -> str:
    state = "promoted" if s.promoted(v) else "not promoted"
    return f"v{v.number} ({s.name}, {gain:+.4f} AUC over v{parent_of(s, v)}, {state})"


@pytest.mark.check(
    points=3,
    title="A clean batch starts no retrain",
    feedback="Drift was measured but not acted on: a batch that did not drift must not retrain the model "
             "(judged only on a loop that does retrain on drift).",
)
def test_clean_batches_start_no_retrain(scenarios, evidence):
    _, clean = played(scenarios, "clean")
    _, episode = played(scenarios, "episode")
    evidence(f"clean batches {', '.join(clean.batches)}: {len(clean.versions)} model version(s) registered; "
             f"drift episode: {len(episode.versions)}")
    expect(not clean.versions, f"after clean batches {', '.join(clean.batches)}: {len(clean.versions)} retrain(s): "
                               f"{clean.describe_versions()}")
    expect(bool(episode.versions), "the drift episode that followed registered no model version either: a loop "
                                   "that never retrains shows nothing about clean batches")


@pytest.mark.check(
    points=4,
    title="A drift episode leads to exactly one retrain",
    feedback="Three drifted batches within seconds are one episode: one retrain, not one per batch or none.",
)
def test_drift_episode_retrains_once(scenarios, evidence):
    _, episode = played(scenarios, "episode", once=True)
    evidence(f"drifted batches {', '.join(episode.batches)}: {episode.describe_versions()}")
    expect(len(episode.versions) == 1,
           f"after drifted batches {', '.join(episode.batches)} (2 s apart): {len(episode.versions)} model versions "
           f"registered within {RETRAIN_WAIT_S} s, expected exactly 1: {episode.describe_versions()}")


@pytest.mark.check(
    points=2,
    title="A better challenger becomes the champion",
    feedback="A challenger that beats the champion on the verified holdout by at least the margin is promoted: "
             "the drift episode's, and the burst's (trained on the new traffic after rejected ones).",
)
def test_better_challenger_promoted(scenarios, evidence):
    loop, played_ = every_scenario(scenarios)
    judged = retrains(loop, played_)
    evidence("; ".join(described(*r) for r in judged) or "no retrain")
    by_name = {s.name: s for s in played_}
    for name in ("episode", "burst"):
        expect(bool(by_name[name].versions), f"the {name} scenario registered no model version")
    missed = [described(*r) for r in judged if r[2] >= MARGIN + AUC_TOLERANCE and not r[0].promoted(r[1])]
    expect(not missed, f"better than the champion by at least min_auc_gain {MARGIN} and not promoted: "
                       f"{'; '.join(missed)}")


@pytest.mark.check(
    points=3,
    title="A challenger within the margin stays out",
    feedback="A challenger better than the champion, but by less than retrain.min_auc_gain, must not be promoted.",
)
def test_margin_respected(scenarios, evidence):
    loop, played_ = every_scenario(scenarios, "margin")
    judged = retrains(loop, played_)
    margin = next(s for s in played_ if s.name == "margin")
    evidence(f"margin scenario ({margin.note}): {margin.describe_versions()}; "
             + "; ".join(described(*r) for r in judged))
    expect(bool(margin.versions), f"the drifted batch {', '.join(margin.batches)} registered no model version")
    # Within the margin (and, in the margin scenario, anything short of it): must stay out.
    wrong = [described(*r) for r in judged if r[2] < MARGIN - AUC_TOLERANCE and r[0].promoted(r[1])
             and (r[2] >= 0 or r[0] is margin)]
    expect(not wrong, f"promoted, though better than the champion by less than min_auc_gain {MARGIN}: "
                      f"{'; '.join(wrong)}")


@pytest.mark.check(
    points=4,
    title="Each retrain records its lineage",
    feedback="Tags on every new version: trigger, trigger_batch, data_window, parent_version, challenger_auc, "
             "champion_auc, promoted (BRIEF.md), with values that match what happened.",
)
def test_lineage_tags(scenarios, evidence):
    loop, played_ = every_scenario(scenarios)
    versions = [(s, v) for s in played_ for v in s.versions]
    expect(bool(versions), "no scenario registered a model version to read lineage from")
    problems = [p for s, v in versions for p in lineage_problems(loop, s, v)]
    evidence(f"lineage read on {', '.join(f'v{v.number} ({s.name})' for s, v in versions)}")
    expect(not problems, "; ".join(problems))


def lineage_problems(loop: Loop, scenario: Scenario, version: Version) -> list[str]:
    tags = version.tags
    where = f"v{version.number} ({scenario.name})"
    missing = [tag for tag in LINEAGE_TAGS if not tags.get(tag)]
    if missing:
        return [f"{where} has no tag {', '.join(missing)}"]
    problems = []
    if tags["trigger"] != "drift":
        problems.append(f"{where}: trigger={tags['trigger']!r}, expected 'drift'")
    if tags["trigger_batch"] not in scenario.batches:
        problems.append(f"{where}: trigger_batch={tags['trigger_batch']!r} is not one of the drifted batches "
                        f"{', '.join(scenario.batches)}")
    window = tags["data_window"].replace(" ", "")
    if window != tags["trigger_batch"]:
        problems.append(f"{where}: data_window={tags['data_window']!r}; with window_batches 1 it is the triggering "
                        f"batch {tags['trigger_batch']!r} alone")
    elif (gap := window_auc_gap(loop, scenario, version, window)) is not None and gap > WINDOW_AUC_TOLERANCE:
        problems.append(f"{where}: the team's model retrained on data_window={window} scores {gap:.3f} AUC away "
                        f"from v{version.number} on the holdout: it was not trained on that window")
    parent = parent_of(scenario, version)
    if tags["parent_version"] != parent:
        problems.append(f"{where}: parent_version={tags['parent_version']!r}, but the champion was v{parent}")
    for tag, model_version in (("challenger_auc", version.number), ("champion_auc", parent)):
        try:
            logged = float(tags[tag])
        except ValueError:
            problems.append(f"{where}: {tag}={tags[tag]!r} is not a number")
            continue
        actual = auc_on(loop, scenario, model_version)
        if not math.isclose(logged, actual, abs_tol=AUC_TOLERANCE):
            problems.append(f"{where}: {tag}={logged:.4f}, but v{model_version} scores {actual:.4f} on the holdout")
    promoted = scenario.promoted(version)
    if tags["promoted"].lower() != str(promoted).lower():
        problems.append(f"{where}: promoted={tags['promoted']!r}, but it {'was' if promoted else 'was not'} made "
                        f"the champion")
    return problems


def window_auc_gap(loop: Loop, scenario: Scenario, version: Version, window: str) -> float | None:
    """How far the team's model, retrained on the batches the tag names, scores from the version."""
    import pandas as pd

    paths = [loop.copy / "data" / "batches" / f"{batch}.csv" for batch in window.split(",")]
    if not all(path.exists() for path in paths):
        return 1.0
    retrained = data.train_model(pd.concat([pd.read_csv(path) for path in paths], ignore_index=True))
    return abs(data.auc(retrained, scenario.holdout) - auc_on(loop, scenario, version.number))


@pytest.mark.check(
    points=4,
    title="A worse challenger is kept out of production",
    feedback="A drifted batch whose labels are all wrong trains a bad challenger: it must be registered "
             "(promoted=false) and the champion must stay; no challenger worse than the champion is promoted.",
)
def test_poisoned_window_not_promoted(scenarios, evidence):
    loop, played_ = every_scenario(scenarios, "poisoned")
    poisoned = next(s for s in played_ if s.name == "poisoned")
    evidence(f"wrong-label batch {poisoned.batches[0]}: {poisoned.describe_versions()}; champion "
             f"v{poisoned.champion_before} -> v{poisoned.champion_after}")
    expect(len(poisoned.versions) == 1,
           f"after drifted batch {poisoned.batches[0]} with wrong labels (after the {COOLDOWN_S} s cooldown): "
           f"{len(poisoned.versions)} versions registered, expected 1: {poisoned.describe_versions()}")
    expect(poisoned.champion_after == poisoned.champion_before,
           f"the champion moved from v{poisoned.champion_before} to v{poisoned.champion_after}, a model trained on "
           f"wrong labels: {poisoned.describe_versions()}")
    worse = [described(*r) for r in retrains(loop, played_) if r[2] < -AUC_TOLERANCE and r[0].promoted(r[1])]
    expect(not worse, f"promoted, though worse than the champion: {'; '.join(worse)}")


@pytest.mark.check(
    points=3,
    title="A burst of drift events leads to one retrain",
    feedback="Five drifted batches landing at once are one episode: deduplicate (the trigger's window, a cooldown, "
             "a concurrency limit) so that exactly one retrain happens.",
)
def test_burst_retrains_once(scenarios, evidence):
    _, burst = played(scenarios, "burst", once=True)
    evidence(f"burst of {len(burst.batches)} drifted batches: {burst.describe_versions()}")
    expect(len(burst.versions) == 1,
           f"after 5 drifted batches at once ({', '.join(burst.batches)}): {len(burst.versions)} versions registered, "
           f"expected exactly 1: {burst.describe_versions()}")


@pytest.mark.check(
    points=3,
    title="Serving follows the new champion",
    feedback="After a promotion, POST /predict must answer with the new champion's version and predictions "
             f"within {SERVING_WAIT_S} s, without a restart.",
)
def test_serving_follows_champion(scenarios, evidence):
    scenarios["serving"]
    loop, episode = played(scenarios, "episode")
    seen = loop.serving
    if seen is not None:
        evidence(f"API answered model_version={seen.answered_version!r} "
                 + (f"{seen.seconds:.0f} s after v{seen.expected_version} became the champion"
                    if seen.seconds is not None else f"while v{seen.expected_version} was the champion"))
    expect(seen is not None, "the drift episode promoted no challenger, so there was no new champion to follow")
    expect(seen.seconds is not None,
           f"{SERVING_WAIT_S} s after v{seen.expected_version} became the champion, the API still answered "
           f"model_version={seen.answered_version!r}" + (f" ({seen.problem})" if seen.problem else ""))
    expected = loop.model(seen.expected_version).predict_proba(seen.rows[data.FEATURES])[:, 1]
    expect(len(seen.probabilities) == len(expected) and np.allclose(seen.probabilities, expected, atol=1e-6),
           f"the API says model_version={seen.answered_version} but its probabilities are not that version's")


@pytest.mark.check(
    points=2,
    title="Serving stays on the champion after a rejected retrain",
    feedback="A retrain that was not promoted must not reach the API: POST /predict answers with the champion "
             "(its version and its predictions), not the newest version.",
)
def test_serving_keeps_champion_after_rejection(scenarios, evidence):
    loop, played_ = every_scenario(scenarios, "poisoned")
    held = [s for s in played_ if s.name == "poisoned" and s.champion_after == s.champion_before and s.versions]
    evidence("; ".join(f"after {s.name} (champion v{s.champion_after}): API answered "
                       f"{', '.join('v' + a for a, _ in s.held) or 'nothing'}" for s in held) or "no rejected retrain")
    expect(bool(held), "the wrong-label challenger was promoted or not registered, so nothing showed serving "
                       "staying on the champion after a rejected retrain")
    problems = []
    for s in held:
        if s.hold_problem:
            problems.append(f"after {s.name}: {s.hold_problem}")
            continue
        expected = loop.model(s.champion_after).predict_proba(s.hold_rows[data.FEATURES])[:, 1]
        for answered, probabilities in s.held:
            if answered != s.champion_after:
                problems.append(f"after {s.name}'s rejected v{s.versions[-1].number}, the API answered "
                                f"model_version={answered!r}; the champion is v{s.champion_after}")
                break
            if len(probabilities) != len(expected) or not np.allclose(probabilities, expected, atol=1e-6):
                problems.append(f"after {s.name}, the API says model_version={answered} but its probabilities are "
                                f"not that version's")
                break
    expect(not problems, "; ".join(problems))


@pytest.mark.check(
    points=1,
    title="Retrains run as Prefect flow runs",
    feedback="The retraining flow should run through the Prefect server (a deployment started by a trigger or an "
             "automation). If NOTES.md justifies another design, a reviewer may grant this point by hand.",
)
def test_retrains_are_prefect_flow_runs(scenarios, evidence):
    loop, episode = played(scenarios, "episode")
    runs = [run for run in loop.flow_runs() if run.get("deployment_id")]
    completed = [run for run in runs if (run.get("state") or {}).get("type") == "COMPLETED"]
    evidence(f"{len(completed)} of {len(runs)} deployment flow runs completed on the grade's Prefect server")
    expect(bool(completed), f"the Prefect server recorded {len(runs)} deployment flow runs and none completed")
