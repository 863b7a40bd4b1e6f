"""The late-delivery training pipeline, as the stages CI runs: python -m pipeline STAGE."""
