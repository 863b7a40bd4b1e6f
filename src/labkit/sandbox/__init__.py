"""The sandbox candidate code runs in during a review; below the check engine (grading/).

* :mod:`labkit.sandbox.spec`: grader/sandbox.yaml as typed, validated models, flattened
  into the limits of :mod:`labkit.sandbox.limits`.
* :mod:`labkit.sandbox.enforcement`: what this machine can enforce of them (Docker, or
  namespaces, cgroups and rlimits), with the warnings every report repeats.
* :mod:`labkit.sandbox.runner`: a confined process runner with the interface of
  :class:`labkit.proc.ProcessRunner`; :mod:`labkit.sandbox.confine` is its child side,
  :mod:`labkit.sandbox.relay` its route to the lab's services, ``netguard/`` a Python
  socket guard.

Nothing here imports the check engine or the review (a unit test holds every module to
its layer); this package's ``__init__`` imports nothing, since the confined child starts
by importing :mod:`labkit.sandbox.confine` and must stay small.
"""
