"""Command handlers: call the one function that does the work, then show its answer
to a person (text) or a machine (--json). Returns the exit status."""

from __future__ import annotations

import argparse
import time
from datetime import datetime, timezone

from labkit.errors import ExitStatus
from labkit.ui import UI

Args = argparse.Namespace


def show_list(args: Args, ui: UI) -> int:
    from labkit.catalog import summaries

    labs, invalid = summaries()
    if ui.json_mode:
        ui.emit_json({"labs": labs, "invalid": invalid})
    else:
        width = max([len(lab["id"]) for lab in labs] + [4])
        ui.result(f"{'LAB':<{width}}  MIN  RUNTIMES    TITLE")
        for lab in labs:
            ui.result(f"{lab['id']:<{width}}  {lab['minutes']:>3}  {','.join(lab['runtimes']):<10}  {lab['title']}")
            if lab["skills"]:
                ui.result(f"{'':<{width}}       skills: {', '.join(lab['skills'])}")
        for lab_id, message in invalid.items():
            ui.note(f"skipped invalid lab {lab_id}: {message}")
    return ExitStatus.OK if labs or not invalid else ExitStatus.SPEC_INVALID


def show_doctor(args: Args, ui: UI) -> int:
    from labkit.doctor import diagnose, kind_ready, local_ready

    findings = diagnose()
    ready = local_ready(findings)
    if ui.json_mode:
        ui.emit_json({"local_runtime_ready": ready, "kind_runtime_ready": kind_ready(findings),
                      "findings": [f.to_dict() for f in findings]})
    else:
        marks = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}
        for f in findings:
            ui.result(f"[{marks[f.level]}] {f.name:<14} {f.detail}" + (f"\n{'':>21}fix: {f.fix}" if f.fix else ""))
        ui.result("\nlocal runtime: " + ("ready" if ready else "NOT ready (see FAIL lines)"))
        ui.result("kind runtime:  " + ("ready" if kind_ready(findings) else "not ready (see docker and kind above)"))
    return ExitStatus.OK if ready else ExitStatus.RUNTIME_UNAVAILABLE


def show_offline(args: Args, ui: UI) -> int:
    from labkit.kube.offline import prepare_offline

    outcome = prepare_offline(steps=tuple(args.steps))
    if ui.json_mode:
        ui.emit_json({"script": outcome.script, "cache": outcome.cache, "steps": list(outcome.steps)})
    else:
        ui.result(f"offline toolchain ready (cache: {outcome.cache}); `labkit doctor` shows what the kind runtime uses")
    return ExitStatus.OK


def show_start(args: Args, ui: UI) -> int:
    from labkit.lifecycle import start_lab

    outcome = start_lab(lab_id=args.lab, runtime=args.runtime, seed=args.seed, workspace=args.workspace,
                        force=args.force, ui=ui)
    session = outcome.session
    if ui.json_mode:
        ui.emit_json({**_session_json(session), "already_running": outcome.already_running,
                      "workspace_action": outcome.workspace_action, "backup": outcome.backup_path,
                      "restarted": outcome.restarted})
        return ExitStatus.OK
    if outcome.already_running:
        restarted = f" (restarted: {', '.join(outcome.restarted)})" if outcome.restarted else ""
        ui.result(f"{session.lab_id} is already running{restarted}.")
    else:
        brief = session.workspace_path / "BRIEF.md"
        if brief.exists():
            ui.result(brief.read_text())
    if outcome.backup_path:
        ui.result(f"your previous workspace was moved to {outcome.backup_path}")
    ui.result(_session_text(session))
    ui.result(f"\nnext: cd {session.workspace} && . .labkit/env   then work, and self-check with `labkit grade`")
    return ExitStatus.OK


def show_status(args: Args, ui: UI) -> int:
    from labkit.lifecycle import lab_status

    session, health = lab_status()
    if session is None:
        if ui.json_mode:
            ui.emit_json({"running": False})
        else:
            ui.result("no lab is running (start one with `labkit start <lab>`)")
        return ExitStatus.OK
    if ui.json_mode:
        data = _session_json(session)
        for name, ok in health.items():
            data["services"][name]["healthy"] = ok
        ui.emit_json({"running": True, "uptime_s": round(_uptime(session.started_at)), **data})
    else:
        ui.result(_session_text(session, health))
        ui.result(f"up for {_duration(_uptime(session.started_at))}")
    return ExitStatus.OK if all(health.values()) else ExitStatus.SERVICE_FAILED


def show_grade(args: Args, ui: UI) -> int:
    from labkit.grading.grade import grade_lab
    from labkit.grading.reports import render

    outcome = grade_lab(hidden=args.hidden, fmt=args.fmt, out=args.out, ui=ui, timeout_s=args.timeout,
                        select=tuple(args.check))
    result = outcome.result
    if outcome.report_path is not None:
        ui.note(f"report written to {outcome.report_path}")
        print(render(result, "text", color=ui.interactive), file=ui.err if args.fmt != "text" else ui.out)
    else:
        print(render(result, args.fmt, color=ui.interactive and args.fmt == "text"), file=ui.out)
    ui.note(f"grade record: {outcome.record_path}")
    if not result.complete:
        return ExitStatus.GRADE_INCOMPLETE
    return ExitStatus.OK if result.full_marks else ExitStatus.CHECKS_FAILED


def show_solve(args: Args, ui: UI) -> int:
    from labkit.lifecycle import solve_lab

    outcome = solve_lab(force=args.force)
    if ui.json_mode:
        ui.emit_json({"workspace": outcome.workspace, "written": outcome.written, "backup": outcome.backup_path})
    else:
        if outcome.backup_path:
            ui.result(f"your workspace was copied to {outcome.backup_path} first")
        ui.result(f"applied the reference solution to {outcome.workspace}: {', '.join(outcome.written)}")
    return ExitStatus.OK


def show_submit(args: Args, ui: UI) -> int:
    from labkit.bundles.submit import submit_lab

    path, record = submit_lab(workspace=args.workspace, out=args.out, grade_first=not args.no_grade, ui=ui,
                              force=args.force)
    if ui.json_mode:
        ui.emit_json({"archive": str(path), **record})
    else:
        ui.result(f"submission written to {path}")
        for flag in record["integrity"]["flags"]:
            ui.result(f"  note for reviewers: {flag}")
    return ExitStatus.OK


def show_export(args: Args, ui: UI) -> int:
    from labkit.bundles.export import export_lab

    outcome = export_lab(lab_id=args.lab, seed=args.seed, out=args.out, force=args.force)
    if ui.json_mode:
        ui.emit_json({"bundle": str(outcome.path), "lab": outcome.lab_id, "seed": outcome.seed,
                      "variant": outcome.variant, "files": outcome.files})
    else:
        ui.result(f"candidate bundle for {outcome.lab_id} (seed {outcome.seed}) written to {outcome.path}")
        ui.result(f"  {len(outcome.files)} files: {', '.join(sorted(outcome.files))}")
    return ExitStatus.OK


def show_verify(args: Args, ui: UI) -> int:
    import random

    from labkit.errors import UserError
    from labkit.verify import verify_lab

    if args.mutants != "all" and not args.mutants.isdigit():
        raise UserError(f"--mutants takes a number or 'all', not {args.mutants!r}")
    if args.repeats < 1 or any(s < 0 for s in args.seeds or []):
        raise UserError("--repeats must be at least 1 and seeds non-negative")
    seeds = args.seeds or [random.SystemRandom().randrange(1, 1_000_000)]
    report = verify_lab(lab_id=args.lab, seeds=seeds, repeats=args.repeats,
                        mutants=None if args.mutants == "all" else int(args.mutants),
                        mutant_ids=tuple(args.mutant_ids), stress=args.stress,
                        cold=args.cold, mutants_only=args.mutants_only, ui=ui)
    if ui.json_mode:
        ui.emit_json(report.to_dict())
    else:
        ui.result(report.render())
    return ExitStatus.OK if report.ok else ExitStatus.CHECKS_FAILED


def show_review(args: Args, ui: UI) -> int:
    from labkit.review.batch import review_submissions

    from labkit.review.kube import KubeOptions

    kube = KubeOptions(kubeconfig=args.kubeconfig, context=args.context, grader_image=args.grader_image,
                       grader_base=args.grader_base, namespace=args.namespace)
    summary = review_submissions(submissions=args.submissions, out=args.out, jobs=args.jobs, hidden=args.hidden,
                                 sandbox=args.sandbox, ui=ui, backend=args.backend, kube=kube)
    if ui.json_mode:
        ui.emit_json({"out": str(summary.out), "sandbox": summary.enforcement.to_dict(), "skipped": summary.skipped,
                      "leaderboard": summary.rows, "csv": str(summary.leaderboard_csv)})
    else:
        for warning in summary.enforcement.warnings:
            ui.result(f"!! SANDBOX WARNING: {warning}")
        ui.result(f"{'RANK':>4}  {'STATUS':<9} {'SCORE':>9}  FLAGS  SUBMISSION")
        for row in summary.rows:
            score = f"{row['score']:g}/{row['max_score']:g}" if row["status"] == "reviewed" else "-"
            ui.result(f"{row['rank']!s:>4}  {row['status']:<9} {score:>9}  {row['flags']:>5}  {row['archive']}"
                      + (f"\n{'':>32}{row['reason']}" if row["reason"] else ""))
        if summary.skipped:
            ui.result(f"({len(summary.skipped)} already reviewed, not redone)")
        ui.result(f"reports: {summary.out}/submissions/*/report.html  leaderboard: {summary.leaderboard_csv}")
    if any(r.blocked_by is not None for r in summary.records):
        return ExitStatus.STATE_CONFLICT  # another lab holds the kind cluster: stop it, then rerun
    if any(r.sources_missing for r in summary.records):
        return ExitStatus.LAB_SOURCES_MISSING
    statuses = {r["status"] for r in summary.rows}
    return ExitStatus.OK if statuses <= {"reviewed", "rejected"} else ExitStatus.GRADE_INCOMPLETE


def show_stop(args: Args, ui: UI) -> int:
    from labkit.lifecycle import stop_lab

    session = stop_lab(ui=ui)
    if ui.json_mode:
        ui.emit_json({"stopped": session is not None, "lab": session.lab_id if session else None})
    elif session is None:
        ui.result("nothing is running")
    else:
        ui.result(f"stopped {session.lab_id}; your workspace is kept at {session.workspace}")
    return ExitStatus.OK


def show_reset(args: Args, ui: UI) -> int:
    from labkit.lifecycle import reset_lab

    outcome = reset_lab(force=args.force, ui=ui)
    if ui.json_mode:
        ui.emit_json(outcome.__dict__)
    else:
        kept = f"; your files are in {outcome.backup_path}" if outcome.backup_path else ""
        ui.result(f"reset {outcome.lab_id}: services stopped, lab data removed{kept}")
    return ExitStatus.OK


def _session_json(session) -> dict:  # noqa: ANN001
    data = session.to_dict()
    data["services"] = {name: {"url": s.url, "pid": s.pid, "log": s.log_path, "in_cluster_url": s.in_cluster_url}
                        for name, s in session.services.items()}
    return data


def _session_text(session, health: dict[str, bool] | None = None) -> str:  # noqa: ANN001
    lines = [f"lab:       {session.lab_id} (seed {session.seed}, {session.runtime} runtime)",
             f"workspace: {session.workspace}"]
    cluster = session.runtime_info.get("cluster")
    if cluster:
        lines.append(f"cluster:   kind {cluster['name']} (KUBECONFIG={cluster['kubeconfig']})")
    for name, info in session.services.items():
        state = "" if health is None else ("  healthy" if health.get(name) else "  NOT ANSWERING")
        inside = f"  (pods: {info.in_cluster_url})" if info.in_cluster_url else ""
        lines.append(f"{name + ':':<10} {info.url}{state}{inside}")
        if info.log_path:  # where a server's own errors go (a trigger's template error, a crash)
            lines.append(f"{'':<10} log: {info.log_path}")
    return "\n".join(lines)


def _uptime(started_at: str) -> float:
    return (datetime.now(timezone.utc) - datetime.fromisoformat(started_at)).total_seconds()


def _duration(seconds: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(max(seconds, 0)))
