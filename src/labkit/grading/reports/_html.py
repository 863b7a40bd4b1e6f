"""A single self-contained HTML page, safe to open from a CI artifact or email.

No external assets, so it renders offline and leaks nothing. Feedback and
output are candidate-controlled (a submission can print ``<script>``), so every
value from the grade passes through :func:`html.escape` before it is placed.
"""

from __future__ import annotations

import html

from labkit.grading.reports import _common
from labkit.grading.results import CheckResult, GradeResult, Status

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 60rem; padding: 0 1rem; color: #1f2328; }
table { border-collapse: collapse; width: 100%; margin-bottom: 1.5rem; }
th, td { border: 1px solid #d0d7de; padding: .4rem .6rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.points { text-align: right; white-space: nowrap; }
.status { font-weight: bold; white-space: nowrap; }
.pass { color: #1a7f37; } .fail { color: #cf222e; } .error { color: #9a6700; }
.banner { border: 2px solid #cf222e; background: #ffebe9; padding: .75rem 1rem;
          border-radius: 6px; }
.infra { border-left: 4px solid #bf8700; padding-left: 1rem; }
td.detail { white-space: pre-wrap; }
.note { font-style: italic; color: #59636e; }
pre { background: #f6f8fa; padding: .5rem; overflow-x: auto; white-space: pre-wrap; }
"""


def _e(text: object) -> str:
    return html.escape(_common.plain(str(text)), quote=True)


def _row(check: CheckResult) -> str:
    status = check.status.value
    detail = "<br>".join(_e(line) for line in _common.detail(check))
    if check.output and check.status is not Status.PASS and len(check.output.splitlines()) > 3:
        detail += f"<details><summary>full output</summary><pre>{_e(check.output)}</pre></details>"
    label = _e(_common.STATUS_LABEL[check.status])
    return (
        f'<tr class="{status}"><td class="status {status}">{label}</td>'
        f'<td title="{_e(check.check_id)}">{_e(check.title)}</td>'
        f'<td class="points">{_e(_common.check_points(check))}</td>'
        f'<td class="detail">{detail}</td></tr>'
    )


def _table(checks: list[CheckResult], last_column: str) -> str:
    rows = "\n".join(_row(c) for c in checks)
    return (
        "<table><thead><tr><th>Status</th><th>Check</th><th>Points</th>"
        f"<th>{_e(last_column)}</th></tr></thead>\n<tbody>\n{rows}\n</tbody></table>"
    )


def render(result: GradeResult) -> str:
    title = f"Grade: {result.lab_id} (seed {result.seed}) — {_common.score(result)}"
    body = [f"<h1>{_e(title)}</h1>"]
    if result.engine_error:
        body.append(
            f'<section class="banner"><h2>⚠ {_e(_common.ENGINE_HEADING)}</h2>'
            f"<pre>{_e(result.engine_error)}</pre></section>"
        )
    body += [
        f"<p><strong>{_e(_common.verdict(result))}</strong></p>",
        f"<p>{_e(_common.summary(result))}</p>",
    ]
    if not result.hidden:
        body.append(f'<p class="note">{_e(_common.SCOPE_NOTE)}</p>')

    checks = _common.candidate_checks(result)
    if checks:
        body += ["<h2>Checks</h2>", _table(checks, "What the grader saw")]
    errors = _common.infra_checks(result)
    if errors:
        body.append(
            f'<section class="infra"><h2>{_e(_common.INFRA_HEADING)}</h2>'
            f'{_table(errors, "Detail")}</section>'
        )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
