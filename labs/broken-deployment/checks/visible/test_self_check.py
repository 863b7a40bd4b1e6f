"""Self-checks: the deploy works end to end. The hidden checks ask much more of it."""

import pytest

from support.api_client import call, wait_answering


@pytest.mark.check(points=1, title="churn-api rolls out from your k8s/ and app/",
                   feedback="Deploy with ./deploy.sh and watch `kubectl -n churn-api get pods`.")
def test_rolls_out(deployed):
    deployed.require()


@pytest.mark.check(points=1, title="http://127.0.0.1:30080/readyz answers 200 and /predict answers a request",
                   feedback="The Service is how traffic reaches the pods.")
def test_answers(deployed, token):
    deployed.require()
    status, body = wait_answering()
    assert status == 200, f"/readyz through the Service answered {status or 'nothing'}: {body}"
    row = {"tenure_months": 12, "monthly_charges": 80.5, "support_calls": 3, "contract": "monthly"}
    status, body = call("/predict", {"rows": [row]}, token=token)
    assert status == 200 and isinstance(body, dict) and len(body.get("predictions", [])) == 1, (
        f"/predict answered {status}: {body}")
