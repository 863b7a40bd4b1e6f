"""python -m pipeline {test,validate,train,evaluate,register,deploy}

Each stage exits 0 when it passed and 1 when it failed, so CI stops the pipeline there.
Stages hand their results on through files in build/ (CI carries them between jobs as
artifacts); the MLflow tracking server comes from $MLFLOW_TRACKING_URI.
"""

from __future__ import annotations

import argparse
import sys

from pipeline import stages
from pipeline.config import StageFailed, load_config

STAGES = {
    "test": stages.test,
    "validate": stages.validate,
    "train": stages.train,
    "evaluate": stages.evaluate,
    "register": stages.register,
    "deploy": stages.deploy,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__.split("\n\n")[1])
    parser.add_argument("stage", choices=list(STAGES))
    parser.add_argument("--config", default="pipeline.yaml")
    args = parser.parse_args(argv)
    try:
        STAGES[args.stage](load_config(args.config))
    except StageFailed as failure:
        print(f"{args.stage}: FAILED: {failure}", file=sys.stderr)
        return 1
    print(f"{args.stage}: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
