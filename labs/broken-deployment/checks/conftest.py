"""What every check of broken-deployment stands on: the candidate's files, deployed.

The grader deploys from the workspace, not from whatever is live: it deletes the
namespace, rebuilds the image from app/ the way deploy.sh does, applies k8s/ and waits
for the rollout. So a grade depends on the files the candidate submits, and a reviewer
re-grading on a fresh cluster gets the same answer.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import pytest

from labkit.kube.rollout import RolloutFailed
from support import data
from support.outage import restore_alias
from support.provision import NAMESPACE, build_app_image

ROLLOUT_TIMEOUT_S = 240


@dataclass
class Deployed:
    error: str  # empty when the rollout completed

    def require(self) -> None:
        if self.error:
            pytest.fail(f"cannot check this while the deployment does not roll out: {self.error}", pytrace=False)


@pytest.fixture(scope="session")
def deployed(kube_cluster, workspace, mlflow_client, state_dir) -> Deployed:
    restore_alias(mlflow_client, state_dir)  # taken by a hidden check of a grade that was killed
    kube_cluster.delete_namespace(NAMESPACE, wait_s=180)
    try:
        build_app_image(kube_cluster, workspace)
    except Exception as exc:  # noqa: BLE001 - the candidate's Dockerfile or service may not build
        return Deployed(f"the image does not build from app/: {str(exc)[-800:]}")
    try:
        kube_cluster.apply(workspace / "k8s")
    except Exception as exc:  # noqa: BLE001 - e.g. a manifest the API server rejects
        return Deployed(f"the manifests in k8s/ do not apply: {str(exc)[-800:]}")
    try:
        kube_cluster.wait_rollout(NAMESPACE, "churn-api", timeout_s=ROLLOUT_TIMEOUT_S)
    except RolloutFailed as exc:
        return Deployed(exc.message)
    except Exception as exc:  # noqa: BLE001 - no Deployment named churn-api, say
        return Deployed(f"no churn-api Deployment rolled out: {exc}")
    return Deployed("")


@pytest.fixture(scope="session")
def token(kube_cluster) -> str:
    from lightkube.resources.core_v1 import Secret

    secret = kube_cluster.client.get(Secret, "churn-api-token", namespace=NAMESPACE)
    return base64.b64decode(secret.data["predict-token"]).decode()


@pytest.fixture(scope="session")
def champion(mlflow_tracking_uri):
    import mlflow

    mlflow.set_tracking_uri(mlflow_tracking_uri)
    return mlflow.sklearn.load_model(f"models:/{data.MODEL_NAME}@champion")
