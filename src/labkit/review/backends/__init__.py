"""Where reviews run: one small interface, the backends picked from a table.

A backend takes the submissions a batch still has to review (staged job folders are its
business) and returns one ReviewRecord per submission, each already saved in its job
folder (labkit.review.report.save). The batch does the rest the same way for every
backend: expanding the paths, resuming, refusing unreadable files, the leaderboard.
Adding a backend is a class with this shape and a line in BACKENDS; nothing branches
on a backend's name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from labkit.review.backends.k8s import KubeBackend
from labkit.review.backends.local import LocalBackend

if TYPE_CHECKING:
    from labkit.review.jobs import Pending, ReviewRecord
    from labkit.review.kube import KubeOptions
    from labkit.review.sandbox import Enforcement, SandboxPolicy
    from labkit.ui import UI


@runtime_checkable
class Backend(Protocol):
    """Constructed with every backend's options (keyword-only; each reads its own)."""

    name: str
    enforcement: Enforcement  # what confines the candidate's code: every report shows it

    def __init__(self, *, policy: SandboxPolicy, sandbox: str, kube: KubeOptions | None, ui: UI) -> None: ...

    def review(self, pending: list[Pending], *, hidden: bool, parallel: int) -> list[ReviewRecord]:
        """Review `pending`; the records in input order (a KeyboardInterrupt may cut it short)."""
        ...


BACKENDS: dict[str, type[Backend]] = {"local": LocalBackend, "k8s": KubeBackend}
