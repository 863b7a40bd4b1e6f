"""The check engine: pytest runs a lab's checks; labkit turns outcomes into a grade.

Check authors need only this module's names: ``InfraError`` for faults of the
platform (reported as ``error``, never as the candidate's failure), ``expect`` to fail
a check with the symptom alone, and the ``check`` marker, used as
``@pytest.mark.check(points=3, title=..., feedback=...)``.
"""

from __future__ import annotations


class InfraError(Exception):
    """Raise from a check or fixture when the platform, not the candidate, failed."""


def expect(condition: bool, symptom: str) -> None:
    """Fail the check with the symptom alone: no traceback, no dump of the grader's state
    (the symptom is the feedback a candidate or reviewer reads)."""
    if not condition:
        import pytest

        pytest.fail(symptom, pytrace=False)
