"""start, stop, status, reset, solve: the lab's life on this machine.

Start is a short sequence of idempotent steps sharing one context; if any step
fails or the user presses Ctrl-C, everything started so far is stopped and no
session is left that points at nothing.
"""

from __future__ import annotations

import secrets
import shlex
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from labkit import __version__
from labkit.catalog import Lab, load_lab, require_sources
from labkit.destinations import check_folder_destination
from labkit.errors import NotFoundError, StateConflict, UserError, WorkspaceConflict
from labkit.paths import state_dir_for
from labkit.provisioning import run_provision, service_env
from labkit.runtimes import choose_runtime, get_runtime
from labkit.runtimes.base import Runtime, RuntimeContext
from labkit.session import Session, clear_session, load_session, save_session, write_json_atomic
from labkit.ui import UI
from labkit.workspace import (
    META_DIR,
    STAGING_PREFIX,
    Manifest,
    backup,
    changes_since_render,
    check_can_render,
    copy_backup,
    enclosing_workspace,
    finish_render,
    overlay_solution,
    render_starter,
    solution_conflicts,
    staging_leftovers,
)

PROVISIONED_MARKER = "provisioned.json"


@dataclass
class StartOutcome:
    session: Session
    lab: Lab
    already_running: bool = False
    workspace_action: str = ""  # new | reuse | replace
    backup_path: str = ""
    restarted: list[str] = field(default_factory=list)


def start_lab(
    *, lab_id: str, runtime: str = "auto", seed: int | None = None, workspace: Path | None = None,
    force: bool = False, ui: UI,
) -> StartOutcome:
    lab = load_lab(lab_id)
    here = _workspace_here(lab, ui) if workspace is None else None
    current = load_session()
    if current is not None and current.lab_id != lab.id:
        raise StateConflict(
            f"{current.lab_id} is running (workspace {current.workspace}); one lab runs at a time",
            hint="`labkit stop` first (your workspace is kept)",
        )
    if current is not None and not force:
        _check_same_lab(current, seed, workspace or here)
        return _resume(current, lab, ui)

    if here is not None:
        ui.note(f"you are in a workspace of {lab.id} ({here}): starting it again")
    workspace = (workspace or here or Path.cwd() / lab.id).resolve()
    seed = _resolve_seed(seed, workspace, lab)
    chosen = choose_runtime(runtime, list(lab.spec.runtimes))
    action = check_can_render(workspace, lab, seed, force=force)
    check_folder_destination(workspace, option="--workspace")
    if current is not None:  # --force on a running lab: start over from nothing
        stop_lab(ui=ui)

    state_dir = state_dir_for(lab.id, seed)
    if action != "reuse" and state_dir.exists():
        shutil.rmtree(state_dir)  # a fresh workspace gets a fresh MLflow store, not the old runs
    session = Session(
        lab_id=lab.id, seed=seed, runtime=chosen.name, workspace=str(workspace), state_dir=str(state_dir),
        started_at=_now(), labkit_version=__version__,
    )
    ctx = RuntimeContext(state_dir=state_dir, progress=ui.note, info=session.runtime_info)
    staging: Path | None = None
    try:
        _runtime_up(chosen, ctx, session, ui)
        _start_services(chosen, ctx, lab.spec.services, session, ui)
        outcome = StartOutcome(session=session, lab=lab, workspace_action=action)
        if action != "reuse" or not (state_dir / PROVISIONED_MARKER).exists():
            # An existing empty folder (perhaps a mount point, which cannot be removed) is
            # rendered into, never replaced: stage inside it, then move the files up.
            into_folder = action == "new" and workspace.is_dir()
            for leftover in staging_leftovers(workspace) if into_folder else []:
                shutil.rmtree(leftover)
            staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX if into_folder else f".{workspace.name}.staging-",
                                            dir=workspace if into_folder else _ensure_parent(workspace)))
            _provision(lab, seed, staging, session, ui)
            if action == "replace":
                outcome.backup_path = str(backup(workspace))
            if into_folder:
                for entry in sorted(staging.iterdir(), key=lambda e: e.name == META_DIR):  # manifest last
                    entry.rename(workspace / entry.name)
                staging.rmdir()
                staging = None
            elif action in ("new", "replace"):
                staging.rename(workspace)
                staging = None
        write_service_env(workspace, session)
        save_session(session)
        return outcome
    except BaseException:
        ui.note("start did not finish; stopping what it started")
        _stop_services(chosen, ctx, session, ui)
        _runtime_down(chosen, ctx, ui)
        clear_session()
        raise
    finally:
        if staging is not None and staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def stop_lab(*, ui: UI) -> Session | None:
    """Stop every service of the running lab. The workspace and the lab's data stay."""
    session = load_session()
    if session is None:
        return None
    runtime = get_runtime(session.runtime)
    ctx = _context(session, ui)
    _stop_services(runtime, ctx, session, ui)
    _runtime_down(runtime, ctx, ui)
    clear_session()
    return session


def lab_status() -> tuple[Session | None, dict[str, bool]]:
    session = load_session()
    if session is None:
        return None, {}
    runtime = get_runtime(session.runtime)
    return session, {name: runtime.healthy(info) for name, info in session.services.items()}


@dataclass
class ResetOutcome:
    lab_id: str
    workspace: str
    backup_path: str
    removed_state: bool


def reset_lab(*, force: bool = False, ui: UI) -> ResetOutcome:
    """Tear the lab down completely, so the next start renders it fresh.

    The workspace is deleted only when it holds nothing the candidate wrote; with
    candidate changes it takes --force, and even then it is moved to a backup.
    """
    session = require_session_here(command="labkit reset")
    workspace = session.workspace_path
    manifest = Manifest.read(workspace) if workspace.exists() else None
    changes = changes_since_render(workspace, manifest) if manifest else None
    if workspace.exists() and (changes is None or changes.any) and not force:
        detail = changes.summary() if changes else "it has no labkit manifest"
        raise WorkspaceConflict(
            f"reset would discard your work in {workspace}: {detail}",
            hint="pass --force to move the workspace to a backup folder first (nothing is deleted)",
        )
    stop_lab(ui=ui)
    backup_path = ""
    if workspace.exists():
        if changes is not None and not changes.any:
            shutil.rmtree(workspace)
        else:
            backup_path = str(backup(workspace))
    removed = session.state_path.exists()
    shutil.rmtree(session.state_path, ignore_errors=True)
    return ResetOutcome(session.lab_id, str(workspace), backup_path, removed)


@dataclass
class SolveOutcome:
    written: list[str]
    backup_path: str
    workspace: str = ""  # which workspace the solution went into


def solve_lab(*, force: bool = False) -> SolveOutcome:
    """Overlay the reference solution. For authors, CI and reviewers previewing a lab."""
    session = require_session_here(command="labkit solve")
    lab = load_lab(session.lab_id)
    require_sources(lab, solution=True, command="labkit solve")
    conflicts = solution_conflicts(lab, session.workspace_path)
    backup_path = ""
    if conflicts:
        if not force:
            raise WorkspaceConflict(
                f"the solution would overwrite files you changed: {', '.join(conflicts)}",
                hint="pass --force to copy the workspace to a backup folder first",
            )
        backup_path = str(copy_backup(session.workspace_path))
    return SolveOutcome(overlay_solution(lab, session.workspace_path), backup_path, session.workspace)


def require_session() -> Session:
    session = load_session()
    if session is None:
        raise NotFoundError("no lab is running", hint="start one with `labkit start <lab>` (see `labkit list`)")
    return session


def require_session_here(*, command: str, ui: UI | None = None) -> Session:
    """The running lab's session, for a command that acts on its workspace.

    Standing in another workspace (a copy of it, another lab's) is refused: the command
    would act on a folder other than the one the user is looking at. Standing in no
    workspace at all is fine; the command then says (through ``ui``) which one it acts on.
    """
    session = require_session()
    here = enclosing_workspace(Path.cwd())
    if here is not None and here != session.workspace_path.resolve():
        raise StateConflict(
            f"you are in the workspace {here}, but `{command}` acts on the running lab's workspace, "
            f"{session.workspace} ({session.lab_id}, seed {session.seed})",
            hint=f"cd {session.workspace} to work there; to make {here} the running workspace: "
                 f"`labkit stop`, then `labkit start {session.lab_id}` from inside it",
        )
    if here is None and ui is not None:
        ui.note(f"{command}: the running lab's workspace is {session.workspace}")
    return session


def write_service_env(workspace: Path, session: Session) -> None:
    """`.labkit/env` in the workspace: `source .labkit/env` gives the candidate's shell the
    URLs, the runtime's settings (KUBECONFIG) and, first on PATH, the folders of the tools
    labkit found off PATH (kind and kubectl in the offline cache), so the candidate's
    scripts run the same kind and kubectl as labkit."""
    runtime = get_runtime(session.runtime)
    env = {**service_env(session.service_urls()), **runtime.env(session.runtime_info)}
    lines = [f"export {k}={shlex.quote(v)}" for k, v in env.items()]
    dirs = runtime.path_dirs(session.runtime_info)
    if dirs:
        lines.append(f"export PATH={':'.join(shlex.quote(d) for d in dirs)}:\"$PATH\"")
    env_file = workspace / META_DIR / "env"
    env_file.parent.mkdir(parents=True, exist_ok=True)
    env_file.write_text("# written by labkit start; source it: . .labkit/env\n" + "\n".join(lines) + "\n")


def _resume(session: Session, lab: Lab, ui: UI) -> StartOutcome:
    """start on a running lab: the same lab, with any dead service restarted."""
    runtime = get_runtime(session.runtime)
    ctx = _context(session, ui)
    outcome = StartOutcome(session=session, lab=lab, already_running=True, workspace_action="reuse")
    _runtime_up(runtime, ctx, session, ui)  # e.g. the cluster went away with a Docker restart
    for name, info in list(session.services.items()):
        if runtime.healthy(info) or runtime.comes_back(ctx, info):
            continue
        runtime.stop_service(ctx, info)
        with ui.step(f"restarting {name} (it was not answering)"):
            session.services[name] = runtime.start_service(ctx, name)
        outcome.restarted.append(name)
        save_session(session)
    if outcome.restarted:
        write_service_env(session.workspace_path, session)
    return outcome


def _check_same_lab(session: Session, seed: int | None, workspace: Path | None) -> None:
    if seed is not None and seed != session.seed:
        raise StateConflict(
            f"{session.lab_id} is running with seed {session.seed}, not {seed}",
            hint="`labkit stop` first, or --force to start over (your workspace is backed up)",
        )
    if workspace is not None and workspace.resolve() != session.workspace_path:
        raise StateConflict(
            f"{session.lab_id} is running with workspace {session.workspace}, not {workspace.resolve()}",
            hint="`labkit stop` first to use another workspace",
        )


def _workspace_here(lab: Lab, ui: UI) -> Path | None:
    """The workspace the user stands in (cwd or a folder above), when start names its lab.

    `cd` into the workspace, `labkit stop`, later `labkit start LAB` there: that resumes
    this workspace and its seed rather than rendering a fresh lab nested inside it.
    Standing in another lab's workspace is refused: its new workspace would be nested in
    this one (and packed with it by `labkit submit`).
    """
    here = enclosing_workspace(Path.cwd())
    if here is None:
        return None
    manifest = Manifest.read(here)
    if manifest is None:
        raise StateConflict(
            f"you are inside {here}, a labkit workspace whose {META_DIR}/manifest.json does not parse; "
            f"`labkit start {lab.id}` would render a new workspace inside it",
            hint="cd out of it, or pass --workspace DIR",
        )
    if manifest.lab_id != lab.id:
        raise StateConflict(
            f"you are inside {here}, the workspace of {manifest.lab_id} (seed {manifest.seed}); "
            f"`labkit start {lab.id}` here would render {lab.id} inside it",
            hint=f"cd out of it first, or pass --workspace DIR (or `labkit start {manifest.lab_id}` to resume it)",
        )
    return here


def _resolve_seed(seed: int | None, workspace: Path, lab: Lab) -> int:
    if seed is not None:
        if seed < 0:
            raise UserError("--seed must be a non-negative integer")
        return seed
    manifest = Manifest.read(workspace) if workspace.is_dir() else None
    if manifest is not None and manifest.lab_id == lab.id:
        return manifest.seed  # restarting a lab after `labkit stop`
    return secrets.randbelow(1_000_000)


def _context(session: Session, ui: UI) -> RuntimeContext:
    return RuntimeContext(state_dir=session.state_path, progress=ui.note, info=session.runtime_info)


def _runtime_up(runtime: Runtime, ctx: RuntimeContext, session: Session, ui: UI) -> None:
    if type(runtime).up is Runtime.up:
        return  # nothing to bring up (the local runtime): no step to show
    with ui.step(f"bringing up the {runtime.name} runtime"):
        try:
            runtime.up(ctx)
        finally:
            save_session(session)  # whatever up() recorded, so `labkit stop` can undo it


def _runtime_down(runtime: Runtime, ctx: RuntimeContext, ui: UI) -> None:
    if not ctx.info:
        return
    with ui.step(f"tearing down the {runtime.name} runtime"):
        runtime.down(ctx)


def _start_services(runtime: Runtime, ctx: RuntimeContext, names: list[str], session: Session, ui: UI) -> None:
    for name in names:
        with ui.step(f"starting {name} ({runtime.name} runtime)"):
            session.services[name] = runtime.start_service(ctx, name)
        save_session(session)  # a labkit killed mid-start still leaves a stoppable session


def _stop_services(runtime: Runtime, ctx: RuntimeContext, session: Session, ui: UI) -> None:
    for name, info in reversed(list(session.services.items())):
        with ui.step(f"stopping {name}"):
            runtime.stop_service(ctx, info)


def _provision(lab: Lab, seed: int, staging: Path, session: Session, ui: UI) -> None:
    variant = render_starter(lab, seed, staging)
    if lab.spec.provision:
        with ui.step(f"provisioning {lab.id} (seed {seed})"):
            run_provision(lab, workspace=staging, seed=seed, state_dir=session.state_path,
                          services=session.service_urls(), runtime_context=session.runtime_context())
    finish_render(lab, seed, variant, staging)
    write_json_atomic(session.state_path / PROVISIONED_MARKER, {"seed": seed, "at": _now()})


def _ensure_parent(workspace: Path) -> Path:
    workspace.parent.mkdir(parents=True, exist_ok=True)
    return workspace.parent


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
