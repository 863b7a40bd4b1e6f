"""Runtimes provide a lab's services; labs and checks do not care which one."""

from __future__ import annotations

from labkit.errors import RuntimeUnavailable, UserError
from labkit.runtimes.base import Runtime

RUNTIME_NAMES = ("local", "kind")


def get_runtime(name: str) -> Runtime:
    if name == "local":
        from labkit.runtimes.local import LocalRuntime

        return LocalRuntime()
    if name == "kind":
        from labkit.runtimes.kind import KindRuntime

        return KindRuntime()
    raise UserError(f"unknown runtime {name!r}", hint=f"choose one of: {', '.join(RUNTIME_NAMES)}, auto")


def choose_runtime(requested: str, lab_runtimes: list[str]) -> Runtime:
    """Resolve --runtime: 'auto' takes the lab's first runtime that can run here."""
    if requested != "auto":
        if requested not in lab_runtimes:
            raise UserError(
                f"this lab does not run on the {requested!r} runtime",
                hint=f"it supports: {', '.join(lab_runtimes)}",
            )
        runtime = get_runtime(requested)
        problem = runtime.unavailable_reason()
        if problem:
            raise RuntimeUnavailable(f"the {requested} runtime cannot run here: {problem.message}", hint=problem.hint)
        return runtime
    reasons = []
    for name in lab_runtimes:
        runtime = get_runtime(name)
        problem = runtime.unavailable_reason()
        if problem is None:
            return runtime
        reasons.append(f"{name}: {problem.message} ({problem.hint})")
    raise RuntimeUnavailable("no runtime of this lab can run here:\n  " + "\n  ".join(reasons))
