"""The terminal report a candidate or reviewer reads after ``labkit grade``.

rich is imported inside :func:`render` because the CLI imports this package on
every start. Candidate-controlled strings are wrapped in ``Text`` and console
markup is off, so feedback like ``[red]`` is shown literally, never interpreted.
"""

from __future__ import annotations

from io import StringIO

from labkit.grading.reports import _common
from labkit.grading.results import CheckResult, GradeResult, Status

_STYLE = {Status.PASS: "bold green", Status.FAIL: "bold red", Status.ERROR: "bold yellow"}


def render(result: GradeResult, *, color: bool, width: int) -> str:
    from rich import box
    from rich.console import Console
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    def status_cell(check: CheckResult) -> Text:
        return Text(_common.STATUS_LABEL[check.status], style=_STYLE[check.status])

    buffer = StringIO()
    console = Console(
        file=buffer,
        width=width,
        force_terminal=color,
        force_jupyter=False,
        color_system="standard" if color else None,
        markup=False,
        highlight=False,
        emoji=False,
    )
    console.print(Text(f"labkit grade — lab {result.lab_id} (seed {result.seed})", style="bold"))

    if result.engine_error:
        console.print(
            Panel(
                Text(result.engine_error),
                title=Text(_common.ENGINE_HEADING, style="bold red"),
                border_style="red",
            )
        )

    checks = _common.candidate_checks(result)
    if checks:
        table = Table(box=box.SIMPLE_HEAD, expand=False)
        table.add_column("Status", no_wrap=True)
        table.add_column("Check")
        table.add_column("Points", justify="right", no_wrap=True)
        table.add_column("Feedback")
        for check in checks:
            feedback = "\n".join(_common.detail(check))
            table.add_row(
                status_cell(check), Text(check.title), _common.check_points(check), Text(feedback)
            )
        console.print(table)

    errors = _common.infra_checks(result)
    if errors:
        console.print(Text(_common.INFRA_HEADING, style="bold yellow"))
        table = Table(box=box.SIMPLE_HEAD, expand=False, border_style="yellow")
        table.add_column("Status", no_wrap=True)
        table.add_column("Check")
        table.add_column("Points", justify="right", no_wrap=True)
        table.add_column("Detail")
        for check in errors:
            table.add_row(
                status_cell(check),
                Text(check.title),
                _common.check_points(check),
                Text(_common.brief(check)),
            )
        console.print(table)

    console.print(Text(_common.summary(result), style="bold"))
    verdict_style = "yellow" if not result.complete else ("green" if result.full_marks else "red")
    console.print(Text(_common.verdict(result), style=verdict_style))
    if not result.hidden:
        console.print(Text(_common.SCOPE_NOTE, style="italic"))
    return buffer.getvalue()
