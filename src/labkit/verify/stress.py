"""Every core busy for a block: a grade whose results depend on the machine being idle
is a grade a hiring team cannot trust (a candidate's laptop, a loaded review machine)."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from contextlib import contextmanager


def _spin() -> None:  # pragma: no cover - runs in the burner processes
    os.nice(0)
    while True:
        pass


@contextmanager
def cores_busy(count: int | None = None) -> Iterator[int]:
    """``count`` busy-loop processes (default: one per core) for the block; yields the count."""
    count = count or os.cpu_count() or 2
    context = multiprocessing.get_context("spawn")
    burners = [context.Process(target=_spin, daemon=True) for _ in range(count)]
    for burner in burners:
        burner.start()
    try:
        yield count
    finally:
        for burner in burners:
            burner.kill()
        for burner in burners:
            burner.join(timeout=10)
