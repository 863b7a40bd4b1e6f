"""Human output on stderr (progress, notes), machine output on stdout.

Progress always goes to stderr so that ``--json`` leaves stdout to exactly one JSON
document. On a terminal a step shows a live spinner with elapsed time; elsewhere
(CI, pipes) it prints one line when it starts and one when it ends.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator
from typing import Any, TextIO


class UI:
    def __init__(self, *, json_mode: bool = False, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.json_mode = json_mode
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.interactive = self.err.isatty()

    def note(self, message: str) -> None:
        print(message, file=self.err, flush=True)

    def result(self, text: str) -> None:
        """The command's answer for a person; suppressed in --json mode."""
        if not self.json_mode:
            print(text, file=self.out, flush=True)

    def emit_json(self, data: Any) -> None:
        print(json.dumps(data, indent=2, default=str), file=self.out, flush=True)

    @contextlib.contextmanager
    def step(self, message: str) -> Iterator[None]:
        started = time.monotonic()
        status = None
        if self.interactive:
            from rich.console import Console

            status = Console(file=self.err).status(f"{message} ...")
            status.start()
        else:
            self.note(f"... {message}")
        try:
            yield
        except BaseException:
            if status:
                status.stop()
            self.note(f"✗ {message} (failed after {time.monotonic() - started:.1f}s)")
            raise
        if status:
            status.stop()
        self.note(f"✓ {message} ({time.monotonic() - started:.1f}s)")
