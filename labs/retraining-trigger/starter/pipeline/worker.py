"""Serve the retraining flow as a Prefect deployment and run what its trigger starts.

    python -m pipeline.worker

Long-running: it registers the deployment (with its trigger) on the Prefect server
named by PREFECT_API_URL, then executes the flow runs the server schedules.
"""

from __future__ import annotations

from prefect.events import DeploymentEventTrigger

from pipeline import config
from pipeline.flows import retrain


def main() -> None:
    cfg = config.load()
    retrain.serve(
        name=f"retrain-{cfg.model_name}",
        triggers=[
            DeploymentEventTrigger(
                expect={"churn.batch.received"},
                parameters={"batch_id": "{{ event.payload.batch_id }}"},
            )
        ],
    )


if __name__ == "__main__":
    main()
