"""Serve the retraining flow as a Prefect deployment and run what its trigger starts.

    python -m pipeline.worker

Long-running: it registers the deployment (with its trigger) on the Prefect server
named by PREFECT_API_URL, then executes the flow runs the server schedules.
The trigger fires on this model's drift events at most once per cooldown (Prefect's
`within` window); one run at a time, so the flow's own cooldown guard sees the last run.
"""

from __future__ import annotations

from datetime import timedelta

from prefect.events import DeploymentEventTrigger

from pipeline import config
from pipeline.flows import retrain
from pipeline.monitor import DRIFT_EVENT, model_resource


def main() -> None:
    cfg = config.load()
    retrain.serve(
        name=f"retrain-{cfg.model_name}",
        global_limit=1,
        triggers=[
            DeploymentEventTrigger(
                expect={DRIFT_EVENT},
                match={"prefect.resource.id": model_resource(cfg.model_name)},
                threshold=1,
                within=timedelta(seconds=cfg.cooldown_seconds),
                parameters={"batch_id": "{{ event.payload.batch_id }}", "trigger": "drift"},
            )
        ],
    )


if __name__ == "__main__":
    main()
