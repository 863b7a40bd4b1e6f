"""Per-candidate reports (Markdown, HTML) and the leaderboard (CSV, JSON).

A review report is the grade report (the same renderers `labkit grade` uses, so the
wording of pass/fail/error never differs) with what only a review knows on top:
integrity flags for a human, the diff against the starter, the time the candidate
spent, and how the candidate's code was sandboxed — with the sandbox's warnings
first, since a reviewer must know when the code ran without a container.
Everything from the submission is candidate-controlled and escaped.
"""

from __future__ import annotations

import csv
import html
import io
import json
from pathlib import Path
from typing import Any

from labkit.grading.reports import render
from labkit.grading.reports._html import _CSS as CSS  # one look for grade and review pages
from labkit.grading.results import GradeResult
from labkit.review.jobs import JobFolder, ReviewRecord
from labkit.ui import UI

LEADERBOARD_FIELDS = ("rank", "id", "archive", "status", "lab", "seed", "score", "max_score", "percent",
                      "complete", "flags", "time_spent_min", "review_s", "reason")


def write_reports(record: ReviewRecord, folder: JobFolder) -> None:
    folder.report_md.write_text(markdown(record), encoding="utf-8")
    folder.report_html.write_text(html_page(record), encoding="utf-8")


def save(record: ReviewRecord, folder: JobFolder) -> ReviewRecord:
    """The reports, then the record: result.json is written last, so its presence means done."""
    write_reports(record, folder)
    folder.write_result(record)
    return record


def announce(archive: Path, record: ReviewRecord, ui: UI) -> None:
    """One line per finished review, as the batch goes."""
    ui.note(f"{'✓' if record.status == 'reviewed' else '✗'} {archive.name}: {record.status}"
            + (f" {record.score:g}/{record.max_score:g}" if record.status == "reviewed" else "")
            + (f" — {record.reason.splitlines()[0]}" if record.reason else ""))


def _facts(record: ReviewRecord) -> list[tuple[str, str]]:
    spent = record.time_spent_s
    facts = [("submission", Path(record.archive).name), ("status", record.status),
             ("lab", f"{record.lab or '?'} (seed {record.seed})")]
    if record.status == "reviewed":
        facts.append(("score", f"{record.score:g}/{record.max_score:g} ({record.percent:.1f}%)"
                               + ("" if record.complete else " — INCOMPLETE, regrade")))
    facts += [("time spent", "unknown" if spent is None else f"{spent / 60:.0f} min (start to submit)"),
              ("review took", f"{record.review_s or 0:g} s"),
              ("sandbox", _sandbox(record.sandbox or {}))]
    return facts


def _sandbox(sandbox: dict[str, Any]) -> str:
    """What confined the candidate's code, in one line."""
    mode, limits = sandbox.get("mode", "?"), sandbox.get("limits") or {}
    if mode == "docker":
        return (f"docker ({limits.get('image')}, --network {limits.get('network')}, {limits.get('cpus')} CPUs, "
                f"{limits.get('memory_bytes', 0) / 2**30:.1f} GB, {limits.get('pids')} pids, read-only root)")
    if mode == "kubernetes":
        requests = f", requests {limits.get('request_cpus')} CPUs" if limits.get("request_cpus") is not None else ""
        return (f"kubernetes Job ({limits.get('cpus')} CPUs, {limits.get('memory_bytes', 0) / 2**30:.1f} GB limits"
                f"{requests}; user {limits.get('user')}, read-only root, no capabilities, no service-account token, "
                f"deadline {limits.get('total_timeout_s', 0):g} s)")
    parts = [f"address space {limits.get('memory_bytes', 0) / 2**30:.1f} GB per process",
             f"files up to {limits.get('file_size_bytes', 0) / 2**20:.0f} MB", "CPU time = the command's timeout"]
    if sandbox.get("cgroup"):
        parts.append(f"{limits.get('pids')} processes (pids cgroup; leftovers killed)")
    if sandbox.get("unshare"):
        parts.append("read-only filesystem except workspace and temp folders (mount namespace), own pid namespace")
    return f"{mode}: " + ", ".join(parts)


def _diff_rows(record: ReviewRecord) -> list[tuple[str, str]]:
    rows = []
    for f in (record.diff or {}).get("files", []):
        change = "binary or large" if f["binary"] else f"+{f['added']} −{f['removed']}"
        rows.append((f["path"] + (" (new)" if f.get("new") else ""), change))
    return rows


def markdown(record: ReviewRecord) -> str:
    def cell(text: Any) -> str:
        return html.escape(str(text), quote=False).replace("|", "\\|").replace("\n", "<br>")

    lines = [f"# Review: {cell(Path(record.archive).name)}", ""]
    for warning in (record.sandbox or {}).get("warnings", []):
        lines += [f"> **⚠ SANDBOX WARNING:** {cell(warning)}", ""]
    lines += ["", "| | |", "| --- | --- |", *(f"| {cell(k)} | {cell(v)} |" for k, v in _facts(record)), ""]
    if record.reason:
        lines += ["## Why this submission was not fully graded" if record.status != "reviewed" else "## Note",
                  "", "```", record.reason.replace("```", "'''"), "```", ""]
    lines += ["## Integrity flags (for a human; nothing was rejected for these)", ""]
    lines += [f"- {cell(f)}" for f in record.flags] or ["- none"]
    lines += [""] + ([f"- note: {cell(n)}" for n in record.notes] + [""] if record.notes else [])
    rows = _diff_rows(record)
    if rows:
        lines += ["## Changes against the starter", "", "| file | lines |", "| --- | --- |",
                  *(f"| {cell(a)} | {cell(b)} |" for a, b in rows), ""]
    if record.grade:
        grade_md = render(GradeResult.from_dict(record.grade), "markdown")
        lines += [line.replace("# ", "## ", 1) if line.startswith("#") else line for line in grade_md.splitlines()]
    return "\n".join(lines) + "\n"


def html_page(record: ReviewRecord) -> str:
    e = html.escape
    body = [f"<h1>Review: {e(Path(record.archive).name)}</h1>"]
    for warning in (record.sandbox or {}).get("warnings", []):
        body.append(f'<p class="banner"><strong>⚠ SANDBOX WARNING:</strong> {e(warning)}</p>')
    body.append("<table>" + "".join(f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in _facts(record))
                + "</table>")
    if record.reason:
        body.append(f"<h2>{'Why this submission was not fully graded' if record.status != 'reviewed' else 'Note'}"
                    f"</h2><pre>{e(record.reason)}</pre>")
    flags = record.flags
    body.append("<h2>Integrity flags (for a human; nothing was rejected for these)</h2><ul>"
                + ("".join(f"<li>{e(f)}</li>" for f in flags) or "<li>none</li>") + "</ul>")
    if record.notes:
        body.append("<ul>" + "".join(f"<li>note: {e(n)}</li>" for n in record.notes) + "</ul>")
    rows = _diff_rows(record)
    if rows:
        body.append("<h2>Changes against the starter</h2><table><tr><th>file</th><th>lines</th></tr>"
                    + "".join(f"<tr><td>{e(a)}</td><td>{e(b)}</td></tr>" for a, b in rows) + "</table>")
    if record.grade:
        grade_html = render(GradeResult.from_dict(record.grade), "html")
        body.append(grade_html.split("<body>", 1)[1].rsplit("</body>", 1)[0].replace("<h1>", "<h2>").replace("</h1>", "</h2>"))
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>Review: {e(Path(record.archive).name)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


def leaderboard(records: list[ReviewRecord]) -> list[dict[str, Any]]:
    """Reviewed first, by percent (incomplete grades after complete ones), then rejected and errors."""
    order = {"reviewed": 0, "error": 1, "rejected": 2}
    ranked = sorted(records, key=lambda r: (order.get(r.status, 3), not r.complete, -r.percent, r.id))
    rows = []
    for i, r in enumerate(ranked, 1):
        spent = r.time_spent_s
        rows.append({
            "rank": i if r.status == "reviewed" else "", "id": r.id, "archive": Path(r.archive).name,
            "status": r.status, "lab": r.lab, "seed": r.seed, "score": r.score,
            "max_score": r.max_score, "percent": r.percent, "complete": r.complete,
            "flags": len(r.flags), "time_spent_min": None if spent is None else round(spent / 60, 1),
            "review_s": r.review_s, "reason": (r.reason or "").splitlines()[0][:200] if r.reason else "",
        })
    return rows


def write_leaderboard(rows: list[dict[str, Any]], out: Path) -> tuple[Path, Path]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=LEADERBOARD_FIELDS)
    writer.writeheader()
    for row in rows:
        # A leading =, +, - or @ would be a formula in a spreadsheet: candidate text is data.
        writer.writerow({k: ("'" + v if isinstance(v, str) and v and v[0] in "=+-@" else v) for k, v in row.items()})
    csv_path, json_path = out / "leaderboard.csv", out / "leaderboard.json"
    csv_path.write_text(buffer.getvalue(), encoding="utf-8")
    json_path.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return csv_path, json_path
