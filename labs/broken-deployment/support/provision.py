"""Provision broken-deployment: a champion in MLflow on the cluster, the serving image, and
the model API deployed with this seed's faults — so the candidate is paged for real.

The reference manifests (solution/k8s) are the template; the seed's faults are planted
in a copy that becomes the workspace's k8s/ and is applied as the "bad deploy". Which
faults were planted is written to the lab's state folder only, never to the workspace.
"""

from __future__ import annotations

import json
import secrets
from importlib.metadata import version
from pathlib import Path

import yaml

from support import data, faults

SERVING_BASE = "labkit/churn-serving-base:0.1.0"
NAMESPACE = "churn-api"


def serving_requirements() -> tuple[str, ...]:
    """The serving image runs the very versions that trained and serialized the model."""
    pinned = [f"{name}=={version(name)}" for name in ("scikit-learn", "skops", "numpy", "pandas", "scipy")]
    return ("bentoml==1.4.40", f"mlflow-skinny=={version('mlflow')}", *pinned)


def provision(ctx) -> None:
    cluster = ctx.cluster
    if cluster is None:
        raise RuntimeError("broken-deployment runs on the kind runtime only")
    model_version = register_champion(ctx.seed, ctx.mlflow_tracking_uri)
    ctx.log(f"registered {data.MODEL_NAME} version {model_version} as @champion")

    from labkit.kube.images import ensure_image

    ensure_image(SERVING_BASE, dockerfile=ctx.lab_dir / "support" / "serving-base.Dockerfile",
                 requirements=serving_requirements(), progress=ctx.log)
    tag = build_app_image(cluster, ctx.workspace)
    ctx.log(f"built and loaded {tag}")

    planted = faults.choose(ctx.seed)
    manifests = load_manifests(ctx.lab_dir / "solution" / "k8s")
    manifests["20-secret.yaml"][0]["stringData"]["predict-token"] = secrets.token_hex(16)
    write_manifests(faults.plant(manifests, planted), ctx.workspace / "k8s")
    cluster.apply(ctx.workspace / "k8s")
    (ctx.state_dir / "faults.json").write_text(json.dumps([f.id for f in planted]))
    ctx.log(f"deployed churn-api with {len(planted)} planted faults")


def build_app_image(cluster, workspace: Path) -> str:
    """What the workspace's deploy.sh does: build app/ as churn-api:<app/VERSION>, load it."""
    tag = f"churn-api:{(workspace / 'app' / 'VERSION').read_text().strip()}"
    cluster.build_and_load(workspace / "app", tag, build_args={"SERVING_BASE": SERVING_BASE})
    return tag


def register_champion(seed: int, tracking_uri: str) -> str:
    import mlflow
    from mlflow.models import infer_signature

    training = data.population(seed, 3000)
    model = train(training)
    features = training[data.FEATURES]
    example = features.head(5)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment("churn-training")
    with mlflow.start_run(run_name=f"champion-seed{seed}"):
        mlflow.log_params({"classifier": "LogisticRegression", "rows": len(training)})
        info = mlflow.sklearn.log_model(
            model, name="model", input_example=example, signature=infer_signature(example, model.predict(example)),
            registered_model_name=data.MODEL_NAME,
            pip_requirements=[f"{n}=={version(n)}" for n in ("mlflow", "scikit-learn", "skops")],
            skops_trusted_types=["numpy.dtype"],  # the one-hot encoder stores its output dtype
        )
    model_version = str(info.registered_model_version)
    mlflow.MlflowClient().set_registered_model_alias(data.MODEL_NAME, "champion", model_version)
    return model_version


def train(training):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = ["tenure_months", "monthly_charges", "support_calls"]
    pipeline = Pipeline([
        ("features", ColumnTransformer([("num", StandardScaler(), numeric),
                                        ("cat", OneHotEncoder(handle_unknown="ignore"), ["contract"])])),
        ("model", LogisticRegression(max_iter=500)),
    ])
    return pipeline.fit(training[data.FEATURES], training["churned"])


def load_manifests(folder: Path) -> faults.Manifests:
    return {f.name: [d for d in yaml.safe_load_all(f.read_text()) if d] for f in sorted(folder.glob("*.yaml"))}


def write_manifests(manifests: faults.Manifests, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, docs in manifests.items():
        (folder / name).write_text(yaml.safe_dump_all(docs, sort_keys=False))
