"""One error hierarchy, mapped to an exit status in one place (the CLI).

Every error a user can cause carries a message that says what to do next; the CLI
prints it without a traceback and exits with the error's status.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence


class ExitStatus(enum.IntEnum):
    OK = 0
    CHECKS_FAILED = 1  # a grade ran and some check failed: the candidate's work is not done
    USAGE = 2  # argparse's own status for a bad command line
    NOT_FOUND = 3  # unknown lab, no running lab, missing file
    SPEC_INVALID = 4  # a lab.yaml that does not validate
    WORKSPACE_CONFLICT = 5  # would overwrite a candidate's work without --force
    RUNTIME_UNAVAILABLE = 6  # the chosen runtime cannot run here (kind missing, extras missing)
    SERVICE_FAILED = 7  # a service did not start or became unhealthy
    GRADE_INCOMPLETE = 8  # the grader could not run some checks (infrastructure error)
    COMMAND_FAILED = 9  # an external command failed
    BAD_INPUT = 10  # a malformed archive, a file that does not parse
    LAB_SOURCES_MISSING = 11  # the lab found is a candidate copy: no hidden checks or solution here
    STATE_CONFLICT = 12  # what runs (or where you stand) contradicts the command: another lab, seed or workspace
    INTERNAL = 70  # a bug in labkit (EX_SOFTWARE)
    INTERRUPTED = 130


class LabkitError(Exception):
    """Base of every error labkit reports to a user."""

    status = ExitStatus.INTERNAL

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class UserError(LabkitError):
    status = ExitStatus.USAGE


class NotFoundError(LabkitError):
    status = ExitStatus.NOT_FOUND


class WorkspaceConflict(LabkitError):
    status = ExitStatus.WORKSPACE_CONFLICT


class StateConflict(LabkitError):
    """The command is well formed but the machine's state contradicts it: another lab runs,
    the running lab has another seed or workspace, or the user stands in another workspace
    than the one the command would act on. Not a usage error: the same command succeeds
    once the state changes (`labkit stop`, `cd`)."""

    status = ExitStatus.STATE_CONFLICT


class RuntimeUnavailable(LabkitError):
    status = ExitStatus.RUNTIME_UNAVAILABLE


class ServiceError(LabkitError):
    status = ExitStatus.SERVICE_FAILED


class BadInput(LabkitError):
    status = ExitStatus.BAD_INPUT


class LabSourcesMissing(LabkitError):
    """The lab resolved is a candidate copy (the published wheel's): it has no hidden checks
    or no solution, which only the full lab sources carry."""

    status = ExitStatus.LAB_SOURCES_MISSING


class SpecError(LabkitError):
    """A lab.yaml that does not validate; carries every problem at once, each with its key path."""

    status = ExitStatus.SPEC_INVALID

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source} is not a valid lab ({len(self.problems)} problem(s)):\n{lines}")


class CommandError(LabkitError):
    """An external command failed; carries the argv, exit code and captured output."""

    status = ExitStatus.COMMAND_FAILED

    def __init__(self, argv: Sequence[str], code: int | None, output: str, *, reason: str = "") -> None:
        self.argv = list(argv)
        self.code = code
        self.output = output
        what = reason or (f"exited with status {code}" if code is not None else "failed")
        tail = _tail(output)
        message = f"command {' '.join(self.argv)!s} {what}"
        if tail:
            message += f"\n--- last output ---\n{tail}"
        super().__init__(message)


def _tail(output: str, lines: int = 20) -> str:
    return "\n".join(output.strip().splitlines()[-lines:])
