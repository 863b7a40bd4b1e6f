"""How a check fails: with the symptom alone, no traceback."""

from __future__ import annotations

import pytest


def expect(condition: bool, symptom: str) -> None:
    if not condition:
        pytest.fail(symptom, pytrace=False)
