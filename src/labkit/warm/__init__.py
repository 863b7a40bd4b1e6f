"""A warm interpreter for candidate Python commands: a grade runs each ``python FILE`` or
``python -m MODULE`` as a fork of a Python that has already imported the lab's heavy
modules (``grading.warm_imports`` in lab.yaml), instead of a cold one that spends seconds
importing pandas, Evidently and MLflow before the candidate's first line. The result is
a cold run's: same argv, folder, environment, stdio, exit status, timeout and whole-tree
kill (see zygote.py for how, client.py for when a command stays cold). LABKIT_WARM=0
runs every command cold."""
