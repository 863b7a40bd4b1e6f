"""The six stages. Each either returns (passed) or raises StageFailed (CI stops there).

Heavy imports (mlflow, scikit-learn) happen inside the stages that need them, so the
quick gates (test, validate) start in well under a second.
"""

from __future__ import annotations

import sys

from pipeline.config import (
    CHAMPION_ALIAS,
    Config,
    StageFailed,
    file_sha256,
    git_sha,
    read_result,
    write_result,
)


def test(config: Config) -> None:
    """The unit tests, all of them: a failing test stops the pipeline before training."""
    import pytest

    status = pytest.main(["-q", "-p", "no:cacheprovider", "tests"])
    if status != 0:
        raise StageFailed(f"the unit tests failed (pytest exit status {int(status)})")


def validate(config: Config) -> None:
    """The training data against its schema, before anything is trained on it."""
    from pipeline.validate import schema_problems

    problems = schema_problems(config.train_path, config.schema_path)
    for problem in problems:
        print(f"  {config.train_path}: {problem}", file=sys.stderr)
    if problems:
        raise StageFailed(f"{config.train_path} breaks {config.schema_path} ({len(problems)} problems)")
    print(f"{config.train_path} matches {config.schema_path} (sha256 {file_sha256(config.train_path)[:12]})")


def train(config: Config) -> None:
    """Train the challenger on the committed data, seeded; log one MLflow run with its lineage."""
    import mlflow
    import pandas as pd

    from features import LABEL, PIP_REQUIREMENTS, SKOPS_TRUSTED_TYPES, add_features, build_model

    data_sha = file_sha256(config.train_path)
    frame = pd.read_csv(config.train_path)
    model = build_model(random_state=config.seed).fit(add_features(frame), frame[LABEL])
    mlflow.set_experiment(config.experiment)
    with mlflow.start_run(run_name=f"train-{git_sha()[:8]}") as run:
        mlflow.set_tags({"git_sha": git_sha(), "data_sha256": data_sha, "data_path": str(config.train_path)})
        mlflow.log_params({"seed": config.seed, "rows": len(frame), **_model_params(model)})
        mlflow.log_metrics({
            "train_roc_auc": _auc(model, frame),
            f"holdout_{config.gate_metric}": _auc(model, pd.read_csv(config.holdout_path)),
        })
        mlflow.sklearn.log_model(
            model, name="model", skops_trusted_types=SKOPS_TRUSTED_TYPES, pip_requirements=PIP_REQUIREMENTS
        )
    write_result("challenger", {"run_id": run.info.run_id, "model_uri": f"runs:/{run.info.run_id}/model",
                                "git_sha": git_sha(), "data_sha256": data_sha})
    print(f"trained the challenger: run {run.info.run_id}")


def evaluate(config: Config) -> None:
    """Score challenger and champion on the frozen holdout; close the gate on a regression."""
    import mlflow
    import pandas as pd

    challenger = read_result("challenger", "train")
    holdout = pd.read_csv(config.holdout_path)
    challenger_score = _auc(mlflow.sklearn.load_model(challenger["model_uri"]), holdout)
    champion = _champion(config)
    champion_score = (
        _auc(mlflow.sklearn.load_model(f"models:/{config.model_name}@{CHAMPION_ALIAS}"), holdout) if champion else None
    )
    passed = champion_score is None or challenger_score >= champion_score - config.max_drop
    with mlflow.start_run(run_id=challenger["run_id"]):
        mlflow.set_tags({"gate": "passed" if passed else "blocked",
                         "champion_version": champion.version if champion else "none"})
    write_result("evaluation", {
        "passed": passed, "metric": config.gate_metric, "challenger": challenger_score,
        "champion": champion_score, "champion_version": champion.version if champion else None,
        "max_drop": config.max_drop,
    })
    versus = f"champion v{champion.version} {champion_score:.4f}" if champion else "no champion yet"
    print(f"holdout {config.gate_metric}: challenger {challenger_score:.4f}, {versus}")
    if not passed:
        raise StageFailed(
            f"the challenger scores {champion_score - challenger_score:.4f} below the champion "
            f"(more than the allowed {config.max_drop}); not promoting it"
        )


def register(config: Config) -> None:
    """Register the challenger that passed the gate as a new version (not yet serving)."""
    import mlflow

    challenger, evaluation = read_result("challenger", "train"), read_result("evaluation", "evaluate")
    if not evaluation["passed"]:
        raise StageFailed("the challenger did not pass the gate; nothing to register")
    version = mlflow.register_model(challenger["model_uri"], config.model_name, tags={
        "git_sha": challenger["git_sha"], "data_sha256": challenger["data_sha256"],
        f"holdout_{config.gate_metric}": f"{evaluation['challenger']:.6f}",
    })
    write_result("registered", {"version": version.version, "run_id": challenger["run_id"]})
    print(f"registered {config.model_name} version {version.version}")


def deploy(config: Config) -> None:
    """Point @champion at the registered version, unless the champion moved since the gate."""
    from mlflow import MlflowClient

    registered, evaluation = read_result("registered", "register"), read_result("evaluation", "evaluate")
    if not evaluation["passed"]:
        raise StageFailed("the challenger did not pass the gate; the champion stays")
    champion = _champion(config)
    if (champion.version if champion else None) != evaluation["champion_version"]:
        raise StageFailed(
            f"@{CHAMPION_ALIAS} moved to version {champion.version if champion else None} after the evaluation "
            f"(against version {evaluation['champion_version']}); evaluate again"
        )
    MlflowClient().set_registered_model_alias(config.model_name, CHAMPION_ALIAS, registered["version"])
    print(f"{config.model_name}@{CHAMPION_ALIAS} -> version {registered['version']}")


def _champion(config: Config):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return MlflowClient().get_model_version_by_alias(config.model_name, CHAMPION_ALIAS)
    except MlflowException:
        return None  # no champion yet: the first model goes through


def _auc(model, frame) -> float:
    from sklearn.metrics import roc_auc_score

    from features import LABEL, late_probability

    return float(roc_auc_score(frame[LABEL], late_probability(model, frame)))


def _model_params(model) -> dict:
    forest = model.named_steps["forest"]
    return {k: forest.get_params()[k] for k in ("n_estimators", "min_samples_leaf", "max_features", "random_state")}
