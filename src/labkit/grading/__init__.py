"""The check engine: pytest runs a lab's checks; labkit turns outcomes into a grade.

Check authors need only this module's names: ``InfraError`` for faults of the
platform (reported as ``error``, never as the candidate's failure), and the
``check`` marker, used as ``@pytest.mark.check(points=3, title=..., feedback=...)``.
"""

from __future__ import annotations


class InfraError(Exception):
    """Raise from a check or fixture when the platform, not the candidate, failed."""
