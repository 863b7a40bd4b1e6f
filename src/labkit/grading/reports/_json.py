"""The lossless format: exactly ``GradeResult.to_dict``, so ``from_dict`` reads it back."""

from __future__ import annotations

import json

from labkit.grading.results import GradeResult


def render(result: GradeResult) -> str:
    return json.dumps(result.to_dict(), indent=2, sort_keys=False)
