"""actions/upload-artifact and download-artifact (v4), for one graded run on one machine.

An artifact is a folder ``<store>/<run id>/<name>``; the store is in grader.conf beside
this file. What v4 does that a pipeline can notice is kept: the paths' common folder is
the artifact's root, hidden files are left out unless asked for, a name is written once
per run unless ``overwrite``, missing files warn (or fail, or pass silently) as
``if-no-files-found`` says, and downloading a name the run does not have fails.
"""

from __future__ import annotations

import glob
import os
import shutil
import sys
from pathlib import Path


def _conf() -> dict[str, str]:
    text = (Path(__file__).with_name("grader.conf")).read_text()
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def _output(key: str, value: str) -> None:
    with open(os.environ["GITHUB_OUTPUT"], "a", encoding="utf-8") as out:
        out.write(f"{key}={value}\n")


def _fail(message: str) -> None:
    print(f"::error::{message}", file=sys.stderr)
    sys.exit(1)


def upload(store: Path) -> None:
    name = os.environ.get("INPUT_NAME") or "artifact"
    hidden = os.environ.get("INPUT_INCLUDE_HIDDEN_FILES") == "true"
    patterns = [p.strip() for p in os.environ.get("INPUT_PATH", "").splitlines() if p.strip()]
    include = [p for p in patterns if not p.startswith("!")]
    exclude = [p[1:] for p in patterns if p.startswith("!")]
    files: list[Path] = []
    for pattern in include:
        for match in sorted(glob.glob(pattern, recursive=True, include_hidden=hidden)):
            path = Path(match)
            found = [f for f in path.rglob("*") if f.is_file()] if path.is_dir() else [path] if path.is_file() else []
            files += [f for f in found if (hidden or not any(part.startswith(".") for part in f.parts))
                      and not any(f.match(x) for x in exclude)]
    if not files:
        how = os.environ.get("INPUT_IF_NO_FILES_FOUND", "warn")
        message = f"No files were found with the provided path: {os.environ.get('INPUT_PATH', '')}. No artifacts will be uploaded."
        if how == "error":
            _fail(message)
        print(f"::warning::{message}" if how == "warn" else message)
        return
    roots = [Path(m).resolve() if Path(m).is_dir() else Path(m).resolve().parent
             for p in include for m in glob.glob(p, recursive=True, include_hidden=hidden)]
    root = Path(os.path.commonpath([str(r) for r in roots]))
    target = store / name
    if target.exists():
        if os.environ.get("INPUT_OVERWRITE") != "true":
            _fail(f"Failed to CreateArtifact: Received non-retryable error: Failed request: (409) Conflict: "
                  f"an artifact with this name already exists on the workflow run")
        shutil.rmtree(target)
    for f in sorted(set(f.resolve() for f in files)):
        destination = target / f.relative_to(root)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, destination)
    print(f"Artifact {name} has been successfully uploaded! ({len(files)} files)")
    _output("artifact-id", str(abs(hash((str(store), name))) % 10**9))
    _output("artifact-url", f"{os.environ['GITHUB_SERVER_URL']}/{os.environ['GITHUB_REPOSITORY']}/actions/runs/"
                            f"{os.environ['GITHUB_RUN_ID']}/artifacts")


def download(store: Path) -> None:
    name = os.environ.get("INPUT_NAME", "")
    path = Path(os.environ.get("INPUT_PATH") or os.environ["GITHUB_WORKSPACE"])
    if name:
        source = store / name
        if not source.is_dir():
            _fail(f"Unable to download artifact(s): Artifact not found for name: {name}")
        shutil.copytree(source, path, dirs_exist_ok=True)
    else:
        pattern = os.environ.get("INPUT_PATTERN") or "*"
        merge = os.environ.get("INPUT_MERGE_MULTIPLE") == "true"
        for source in sorted(store.glob(pattern)) if store.is_dir() else []:
            shutil.copytree(source, path if merge else path / source.name, dirs_exist_ok=True)
    print(f"Artifact download completed successfully into {path}")
    _output("download-path", str(path.resolve()))


if __name__ == "__main__":
    conf = _conf()
    run_id = os.environ.get("INPUT_RUN_ID") or os.environ["GITHUB_RUN_ID"]
    store = Path(conf["ARTIFACTS"]) / run_id
    store.mkdir(parents=True, exist_ok=True)
    {"upload": upload, "download": download}[sys.argv[1]](store)
