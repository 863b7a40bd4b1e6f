"""Render a :class:`~labkit.grading.results.GradeResult` for people and for CI systems.

Each format lives in its own private module and is imported only when asked
for, so that importing this package (and starting the CLI) stays cheap: rich,
ElementTree and friends are paid for only by the format actually rendered.
"""

from __future__ import annotations

import importlib

from labkit.grading.results import GradeResult

FORMATS = ("text", "json", "junit", "gradescope", "markdown", "html")

_FILENAMES = {
    "text": "grade.txt",
    "json": "grade.json",
    "junit": "junit.xml",
    # Gradescope only picks up this exact name from /autograder/results/.
    "gradescope": "results.json",
    "markdown": "grade.md",
    "html": "grade.html",
}


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"unknown report format {fmt!r}; expected one of: {', '.join(FORMATS)}")


def render(result: GradeResult, fmt: str, *, color: bool = False, width: int = 100) -> str:
    """Render ``result`` as ``fmt``; ``color`` and ``width`` only matter to the terminal text."""
    _check_format(fmt)
    module = importlib.import_module(f"{__name__}._{fmt}")
    if fmt == "text":
        return module.render(result, color=color, width=width)
    return module.render(result)


def default_filename(fmt: str) -> str:
    """The file name a report is written under when the caller does not choose one."""
    _check_format(fmt)
    return _FILENAMES[fmt]


__all__ = ["FORMATS", "default_filename", "render"]
