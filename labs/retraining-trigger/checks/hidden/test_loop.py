"""The reviewers' checks: scenarios played through the candidate's loop (see support/loop.py).

In order, on one registry: two clean batches; a drift episode of three drifted batches
3 s apart (with the verified holdout refreshed to the new traffic); the API after the
promotion; after the cooldown, one drifted batch whose labels are all wrong; after the
cooldown again, five drifted batches at once.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from support import data
from labkit.grading import expect
from support.loop import COOLDOWN_S, RETRAIN_WAIT_S, SERVING_WAIT_S, Loop, Scenario

AUC_TOLERANCE = 1e-3
LINEAGE_TAGS = ["trigger", "trigger_batch", "data_window", "parent_version", "challenger_auc", "champion_auc", "promoted"]


def played(scenarios, name: str) -> tuple[Loop, Scenario]:
    loop = scenarios[name]
    expect(not loop.startup_problem, loop.startup_problem)
    scenario = loop.scenarios[name]
    expect(not scenario.monitor_failures, "; ".join(scenario.monitor_failures))
    return loop, scenario


@pytest.mark.check(
    points=3,
    title="A clean batch starts no retrain",
    feedback="Drift was measured but not acted on: a batch that did not drift must not retrain the model.",
)
def test_clean_batches_start_no_retrain(scenarios, evidence):
    _, clean = played(scenarios, "clean")
    evidence(f"clean batches {', '.join(clean.batches)}: {len(clean.versions)} model version(s) registered")
    expect(not clean.versions, f"after clean batches {', '.join(clean.batches)}: {len(clean.versions)} retrain(s): "
                               f"{clean.describe_versions()}")


@pytest.mark.check(
    points=4,
    title="A drift episode leads to exactly one retrain",
    feedback="Three drifted batches within seconds are one episode: one retrain, not one per batch or none.",
)
def test_drift_episode_retrains_once(scenarios, evidence):
    _, episode = played(scenarios, "episode")
    evidence(f"drifted batches {', '.join(episode.batches)}: {episode.describe_versions()}")
    expect(len(episode.versions) == 1,
           f"after drifted batches {', '.join(episode.batches)} (3 s apart): {len(episode.versions)} model versions "
           f"registered within {RETRAIN_WAIT_S} s, expected exactly 1: {episode.describe_versions()}")


@pytest.mark.check(
    points=2,
    title="A better challenger becomes the champion",
    feedback="Trained on the new traffic, the challenger beats the old champion on the verified holdout by far "
             "more than the margin: it should be promoted.",
)
def test_better_challenger_promoted(scenarios, evidence):
    loop, episode = played(scenarios, "episode")
    evidence(f"champion v{episode.champion_before} before the episode, v{episode.champion_after} after")
    expect(bool(episode.versions), "the drift episode registered no model version")
    new = {v.number for v in episode.versions}
    expect(episode.champion_after in new,
           f"the champion stayed v{episode.champion_after}; versions trained on the drift: {episode.describe_versions()}")


@pytest.mark.check(
    points=4,
    title="Each retrain records its lineage",
    feedback="Tags on every new version: trigger, trigger_batch, data_window, parent_version, challenger_auc, "
             "champion_auc, promoted (BRIEF.md), with values that match what happened.",
)
def test_lineage_tags(scenarios, evidence):
    loop, episode = played(scenarios, "episode")
    _, poisoned = played(scenarios, "poisoned")
    expect(bool(episode.versions), "the drift episode registered no model version to read lineage from")
    problems = lineage_problems(loop, episode, episode.versions[0], parent=episode.champion_before)
    if poisoned.versions:
        problems += lineage_problems(loop, poisoned, poisoned.versions[0], parent=poisoned.champion_before)
    evidence(f"lineage read on {', '.join(f'v{v.versions[0].number}' for v in (episode, poisoned) if v.versions)}")
    expect(not problems, "; ".join(problems))


def lineage_problems(loop: Loop, scenario: Scenario, version, *, parent: str) -> list[str]:
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
    if tags["data_window"].replace(" ", "") != tags["trigger_batch"]:
        problems.append(f"{where}: data_window={tags['data_window']!r}; with window_batches 1 it is the triggering "
                        f"batch {tags['trigger_batch']!r} alone")
    if tags["parent_version"] != parent:
        problems.append(f"{where}: parent_version={tags['parent_version']!r}, but the champion was v{parent}")
    holdout = loop.holdout
    for tag, model_version in (("challenger_auc", version.number), ("champion_auc", parent)):
        try:
            logged = float(tags[tag])
        except ValueError:
            problems.append(f"{where}: {tag}={tags[tag]!r} is not a number")
            continue
        actual = data.auc(loop.model(model_version), holdout)
        if not math.isclose(logged, actual, abs_tol=AUC_TOLERANCE):
            problems.append(f"{where}: {tag}={logged:.4f}, but v{model_version} scores {actual:.4f} on the holdout")
    promoted = scenario.champion_after == version.number
    if tags["promoted"].lower() != str(promoted).lower():
        problems.append(f"{where}: promoted={tags['promoted']!r}, but it {'is' if promoted else 'is not'} the champion")
    return problems


@pytest.mark.check(
    points=4,
    title="A worse challenger is kept out of production",
    feedback="A drifted batch whose labels are all wrong trains a bad challenger: it must be registered "
             "(promoted=false) and the champion must stay.",
)
def test_poisoned_window_not_promoted(scenarios, evidence):
    _, poisoned = played(scenarios, "poisoned")
    evidence(f"wrong-label batch {poisoned.batches[0]}: {poisoned.describe_versions()}; champion "
             f"v{poisoned.champion_before} -> v{poisoned.champion_after}")
    expect(len(poisoned.versions) == 1,
           f"after drifted batch {poisoned.batches[0]} with wrong labels (after the {COOLDOWN_S} s cooldown): "
           f"{len(poisoned.versions)} versions registered, expected 1: {poisoned.describe_versions()}")
    expect(poisoned.champion_after == poisoned.champion_before,
           f"the champion moved from v{poisoned.champion_before} to v{poisoned.champion_after}, a model trained on "
           f"wrong labels: {poisoned.describe_versions()}")


@pytest.mark.check(
    points=3,
    title="A burst of drift events leads to one retrain",
    feedback="Five drifted batches landing at once are one episode: deduplicate (the trigger's window, a cooldown, "
             "a concurrency limit) so that exactly one retrain happens.",
)
def test_burst_retrains_once(scenarios, evidence):
    _, burst = played(scenarios, "burst")
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
