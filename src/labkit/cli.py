"""The command line: parse, call one keyword-only function, map errors to an exit status.

No logic lives here. Heavy modules are imported inside the handlers so that
`labkit --help` and `labkit list` stay fast.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from datetime import datetime, timezone
from pathlib import Path

from labkit import __version__
from labkit.errors import ExitStatus, LabkitError
from labkit.ui import UI

GRADE_FORMATS = ("text", "json", "junit", "gradescope", "markdown", "html")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="labkit", description="Hands-on MLOps take-home labs, graded by behaviour.",
        epilog="Start here: labkit list, then labkit start <lab>.",
    )
    parser.add_argument("--version", action="version", version=f"labkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help_text: str, handler: str, json_flag: bool = True,
                labs_flag: bool = False) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        if json_flag:
            p.add_argument("--json", action="store_true", help="print one JSON document for machines")
        if labs_flag:
            p.add_argument("--labs", type=Path, metavar="DIR",
                           help="look for labs in DIR first (hiring teams: the full lab sources, hidden checks "
                                "and solutions included; the same as LABKIT_LABS_PATH=DIR)")
        return p

    command("list", "the catalog: id, title, minutes, skills, runtimes", "views:show_list", labs_flag=True)
    command("doctor", "what this machine has for each runtime, and how to fix what is missing", "views:show_doctor")

    p = command("start", "provision a lab's services, render the workspace, print the brief", "views:show_start",
                labs_flag=True)
    p.add_argument("lab", help="lab id (see `labkit list`)")
    p.add_argument("--runtime", choices=("auto", "local", "kind"), default="auto")
    p.add_argument("--seed", type=int, help="which variant and data (default: random; printed)")
    p.add_argument("--workspace", type=Path, help="where your files go (default: ./<lab>)")
    p.add_argument("--force", action="store_true", help="start over: back the old workspace up, render afresh")

    command("status", "what runs, where, and for how long", "views:show_status")

    p = command("grade", "run the visible checks (a self-check); --hidden runs all of them", "views:show_grade",
                json_flag=False, labs_flag=True)
    p.add_argument("--hidden", action="store_true", help="also run hidden checks (reviewers, lab authors)")
    p.add_argument("--format", choices=GRADE_FORMATS, default="text", dest="fmt")
    p.add_argument("--json", action="store_const", const="json", dest="fmt",
                   help="the same as --format json, as in every other command")
    p.add_argument("--out", type=Path, help="write the report to this file (or folder) instead of stdout")
    p.add_argument("--timeout", type=float, help="seconds before the grader gives up (default: the lab's)")
    p.add_argument("--check", action="append", default=[], metavar="NAME",
                   help="run only this check (its function name); repeatable; for lab authors")

    p = command("solve", "apply the reference solution to the workspace (authors, CI, previews)", "views:show_solve",
                labs_flag=True)
    p.add_argument("--force", action="store_true", help="overwrite your changes (they are backed up first)")

    p = command("submit", "pack the workspace, its last grade and an integrity manifest", "views:show_submit",
                labs_flag=True)
    p.add_argument("--workspace", type=Path,
                   help="the workspace to pack (default: the one you stand in, else the running lab's)")
    p.add_argument("--out", type=Path, help="archive path (default: next to the workspace)")
    p.add_argument("--no-grade", action="store_true", help="do not run the visible checks before packing")
    p.add_argument("--force", action="store_true", help="replace an existing --out archive")

    p = command("export", "the candidate bundle: brief, starter of a seed, visible checks; nothing hidden",
                "views:show_export", labs_flag=True)
    p.add_argument("lab", help="lab id (see `labkit list`)")
    p.add_argument("--seed", type=int, required=True, help="the variant and data the candidate gets")
    p.add_argument("--out", type=Path, required=True, help="a folder, or a FILE.tar.gz")
    p.add_argument("--force", action="store_true", help="replace an existing --out")

    p = command("review", "hiring team: unpack submissions safely, re-provision, grade sandboxed, report",
                "views:show_review", labs_flag=True)
    p.add_argument("submissions", nargs="+", type=Path, metavar="SUBMISSION",
                   help="submission archives, or folders of them")
    p.add_argument("--out", type=Path, default=Path("reviews"), help="reports and leaderboard (default: ./reviews)")
    p.add_argument("--jobs", type=int, default=1, help="submissions reviewed at a time (default: 1)")
    scope = p.add_mutually_exclusive_group()
    scope.add_argument("--hidden", dest="hidden", action="store_true", default=True,
                       help="visible and hidden checks (the default)")
    scope.add_argument("--visible-only", dest="hidden", action="store_false", help="the visible checks only")
    p.add_argument("--sandbox", choices=("auto", "docker", "subprocess"), default="auto",
                   help="auto: Docker with the grader image when available, else a confined subprocess")
    p.add_argument("--backend", choices=("local", "k8s"), default="local",
                   help="local: workers on this machine (default); k8s: one Kubernetes Job per submission")
    k8s = p.add_argument_group("--backend k8s (default cluster: the lab's kind cluster, LABKIT_KIND_CLUSTER)")
    k8s.add_argument("--kubeconfig", type=Path, help="the cluster's kubeconfig (default: $KUBECONFIG, ~/.kube/config)")
    k8s.add_argument("--context", help="a context of that kubeconfig (default: its current one)")
    k8s.add_argument("--grader-image", metavar="IMAGE",
                     help="run this image as is (labkit + the full lab sources on LABKIT_LABS_PATH); default: "
                          "build one here from --grader-base and kind-load it")
    k8s.add_argument("--grader-base", metavar="IMAGE",
                     help="base of the built review image (default: sandbox.yaml's image, labkit/grader); "
                          "labkit/python:3.11-slim suits labs that start no service")
    k8s.add_argument("--namespace", default="labkit-review", help="where the Jobs run (default: labkit-review)")

    p = command("verify", "authors: the lab proves its grader (starter low, solution full marks, wrong fixes, mutants)",
                "views:show_verify", labs_flag=True)
    p.add_argument("lab", help="lab id (see `labkit list`)")
    p.add_argument("--seed", type=int, action="append", dest="seeds", metavar="N",
                   help="a seed to verify on (repeatable; default: one random seed)")
    p.add_argument("--repeats", type=int, default=3, help="grades of the solution per seed (default: 3)")
    p.add_argument("--mutants", default="0", metavar="N|all",
                   help="mutants of the solution to grade: a fixed sample of N, or all (default: 0)")
    p.add_argument("--mutant", action="append", dest="mutant_ids", default=[], metavar="ID",
                   help="grade this mutant (repeatable; ids as a mutation run prints them), not a sample")
    p.add_argument("--mutants-only", action="store_true",
                   help="grade only the solution (the baseline) and its mutants: no starter, wrong/ or fair/")
    p.add_argument("--stress", action="store_true", help="also grade the solution with every core busy")
    p.add_argument("--cold", action="store_true",
                   help="also grade the solution with every candidate command cold (no warm interpreter)")

    p = command("offline", "build the kind toolchain with no container registry (root, Debian, Go)",
                "views:show_offline")
    p.add_argument("action", choices=("prepare",), help="prepare: build or reuse everything (cached)")
    p.add_argument("steps", nargs="*", metavar="STEP",
                   help="only these steps (by number prefix, e.g. 10 50); default: all")

    command("stop", "stop the lab's services; your workspace and data stay", "views:show_stop")
    p = command("reset", "tear the lab down completely so the next start is fresh", "views:show_reset")
    p.add_argument("--force", action="store_true", help="also when you changed files (moved to a backup first)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    ui = UI(json_mode=getattr(args, "json", False))
    try:
        if getattr(args, "labs", None) is not None:
            from labkit.catalog import use_labs_folder

            use_labs_folder(args.labs)
        return int(_handler(args.handler)(args, ui))
    except LabkitError as exc:
        return _report_error(ui, exc.status, str(exc))
    except BrokenPipeError:  # `labkit ... | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return int(ExitStatus.OK)
    except KeyboardInterrupt:
        return _report_error(ui, ExitStatus.INTERRUPTED, "interrupted; anything half-started was stopped")
    except Exception as exc:  # noqa: BLE001 - a bug in labkit: say so, keep the traceback in a file
        crash = _save_crash_report()
        return _report_error(ui, ExitStatus.INTERNAL,
                             f"labkit hit an internal error: {exc!r}\n  details: {crash}\n  please report it with that file")


def _handler(spec: str):  # noqa: ANN202
    module, func = spec.split(":")
    return getattr(__import__(f"labkit.{module}", fromlist=[func]), func)


def _report_error(ui: UI, status: ExitStatus, message: str) -> int:
    if ui.json_mode:
        ui.emit_json({"error": message, "status": int(status), "status_name": status.name.lower()})
    print(f"labkit: error: {message}", file=sys.stderr)
    return int(status)


def _save_crash_report() -> Path:
    from labkit.paths import labkit_home

    path = labkit_home() / "crash" / f"{datetime.now(timezone.utc):%Y%m%d-%H%M%S}.txt"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(traceback.format_exc())
    except OSError:
        return Path("(could not write a crash report)")
    return path


if __name__ == "__main__":
    sys.exit(main())
