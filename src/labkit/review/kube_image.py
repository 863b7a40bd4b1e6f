"""The review Jobs' image: a grader base + this labkit + the full lab sources, built locally.

Tagged by content (labkit's code, the lab folders, the Dockerfile, the base image's id),
so an unchanged rerun reuses it in milliseconds and a changed hidden check gets a new
image. Nothing is pulled: the base must be in the local Docker (labkit/grader, built by
infra/images/build.sh grader, or the bare Python base for service-less labs) and
labkit's wheel and requirements come from the host's pip.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

from labkit import __version__
from labkit.errors import RuntimeUnavailable
from labkit.kube.images import build_image, image_exists
from labkit.paths import labkit_home, project_file
from labkit.proc import DEFAULT_RUNNER, ProcessRunner

REPOSITORY = "labkit/review-grader"
_SKIP = shutil.ignore_patterns("__pycache__", ".pytest_cache", "*.pyc", ".labkit")


def tree_digest(roots: list[Path], extra: list[bytes] = ()) -> str:
    """sha256 over every file's relative path and content under `roots` (caches skipped)."""
    digest = hashlib.sha256()
    for blob in extra:
        digest.update(hashlib.sha256(blob).digest())
    for i, root in enumerate(roots):
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            rel = path.relative_to(root)
            if {"__pycache__", ".pytest_cache", ".labkit"} & set(rel.parts) or path.suffix == ".pyc":
                continue
            digest.update(f"{i}:{rel.as_posix()}\0".encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def labkit_source() -> str:
    """What pip builds labkit's wheel from: this checkout, else the published release."""
    from labkit.bundles.wheel import DISTRIBUTION, source_checkout

    root = source_checkout()
    return str(root) if root else f"{DISTRIBUTION}=={__version__}"


def ensure_review_image(*, base: str, labs_roots: list[Path], progress: Callable[[str], None],
                        runner: ProcessRunner = DEFAULT_RUNNER) -> tuple[str, dict[str, float | str]]:
    """The review image for this labkit and these lab folders; built unless it exists.
    Returns (tag, facts: build seconds, size) for the reviewer and the measurements."""
    if not image_exists(base, runner):
        raise RuntimeUnavailable(
            f"the grader base image {base} is not in the local Docker",
            hint="infra/images/build.sh grader (the ML stack: every lab); or --grader-base "
                 "labkit/python:3.11-slim for labs that start no service; or --grader-image IMAGE",
        )
    dockerfile = project_file("infra/images/review/Dockerfile")
    base_id = runner.run(["docker", "image", "inspect", "-f", "{{.Id}}", base], timeout=60).stdout.strip()
    package = Path(__file__).resolve().parents[1]
    key = tree_digest([package, *labs_roots], extra=[dockerfile.read_bytes(), base_id.encode()])[:12]
    tag = f"{REPOSITORY}:{__version__}-{key}"
    facts: dict[str, float | str] = {"image": tag, "base": base}
    if image_exists(tag, runner):
        return tag, {**facts, "built_s": 0.0}
    started = time.monotonic()
    context = labkit_home() / "cache" / "review-image" / key
    shutil.rmtree(context, ignore_errors=True)
    try:
        progress(f"building the review image {tag} from {base} (labkit + {len(labs_roots)} lab folder(s))")
        runner.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "wheel", "-q",
                    "-w", str(context / "wheels"), labkit_source()], timeout=1800)
        for i, root in enumerate(labs_roots):
            shutil.copytree(root, context / "labs" / str(i), ignore=_SKIP, symlinks=False)
        labs_path = ":".join(f"/labs/{i}" for i in range(len(labs_roots)))
        build_image(context, tag, dockerfile=dockerfile, build_args={"BASE_IMAGE": base, "LABS_PATH": labs_path},
                    runner=runner)
    finally:
        shutil.rmtree(context, ignore_errors=True)
    size = runner.run(["docker", "image", "inspect", "-f", "{{.Size}}", tag], timeout=60).stdout.strip()
    pruned = prune_older(tag, base=base, runner=runner)
    return tag, {**facts, "built_s": round(time.monotonic() - started, 1), "size_mb": round(int(size) / 1e6, 1),
                 "pruned": len(pruned)}


def prune_older(tag: str, *, base: str, runner: ProcessRunner = DEFAULT_RUNNER) -> list[str]:
    """Remove the review images this one replaces (same base, another labkit or lab content):
    every change would otherwise leave 0.2-1 GB behind. One still used by a container
    (a review running now) is kept: docker refuses, and that is not an error."""
    listed = runner.run(["docker", "images", "--filter", f"label=labkit.review.base={base}",
                         "--format", "{{.Repository}}:{{.Tag}}", REPOSITORY], timeout=60, check=False)
    older = [t for t in listed.stdout.split() if t != tag and t.startswith(REPOSITORY + ":")]
    return [t for t in older if runner.run(["docker", "rmi", t], timeout=120, check=False).ok]
