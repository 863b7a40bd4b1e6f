"""Container images for the kind runtime, built with no registry in the build.

Every image labkit builds takes `ARG BASE_IMAGE`. Online that is python:3.11-slim; on a
machine without a registry it is the local stand-in that infra/offline builds, picked up
automatically when present. Python packages enter images from a wheelhouse that the
host's pip fills (`pip download`), never from an index inside the build, so the same
Dockerfile works on both kinds of machine.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from labkit.paths import labkit_home, project_file
from labkit.proc import DEFAULT_RUNNER, ProcessRunner

PUBLIC_BASE_IMAGE = "python:3.11-slim"
OFFLINE_BASE_IMAGE = "labkit/python:3.11-slim"
PLATFORM_IMAGE = "labkit/platform:0.1.0"
# Kept in step with pyproject's `local` extra: prefect 3.8.8's server crashes at start with
# fastapi >= 0.151; pandas 3 breaks evidently.
PLATFORM_REQUIREMENTS = ("mlflow==3.17.2", "prefect==3.8.8", "fastapi>=0.115,<0.151", "pandas<3")
BUILD_TIMEOUT_S = 1800


def image_exists(image: str, runner: ProcessRunner = DEFAULT_RUNNER) -> bool:
    return runner.run(["docker", "image", "inspect", image], timeout=60, check=False).ok


def base_image(runner: ProcessRunner = DEFAULT_RUNNER) -> str:
    """$LABKIT_BASE_IMAGE, else the offline stand-in if this Docker has it, else the public one."""
    if os.environ.get("LABKIT_BASE_IMAGE"):
        return os.environ["LABKIT_BASE_IMAGE"]
    return OFFLINE_BASE_IMAGE if image_exists(OFFLINE_BASE_IMAGE, runner) else PUBLIC_BASE_IMAGE


def build_image(
    context: Path, tag: str, *, dockerfile: Path | None = None, build_args: dict[str, str] | None = None,
    runner: ProcessRunner = DEFAULT_RUNNER,
) -> str:
    """docker build with BASE_IMAGE filled in; returns the tag."""
    args = {"BASE_IMAGE": base_image(runner), **(build_args or {})}
    argv = ["docker", "build", "-t", tag]
    for key, value in args.items():
        argv += ["--build-arg", f"{key}={value}"]
    if dockerfile is not None:
        argv += ["-f", str(dockerfile)]
    runner.run([*argv, str(context)], timeout=BUILD_TIMEOUT_S, env={**os.environ, "DOCKER_BUILDKIT": "0"})
    return tag


def download_wheels(dest: Path, requirements: tuple[str, ...], runner: ProcessRunner = DEFAULT_RUNNER) -> Path:
    """Fill `dest` with wheels for `requirements` (host pip) once; a marker makes it reusable."""
    done = dest / ".complete"
    if done.exists():
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    runner.run([*pip, "download", "-q", "-d", str(dest), *requirements], timeout=BUILD_TIMEOUT_S)
    # Debian bookworm's python3 (the offline base) is 3.11.2, and redis wants async-timeout
    # below 3.11.3; markers are evaluated for the host interpreter, so fetch it explicitly.
    runner.run([*pip, "download", "-q", "--no-deps", "-d", str(dest), "async-timeout>=4.0.3"], timeout=600)
    for sdist in [*dest.glob("*.tar.gz"), *dest.glob("*.zip")]:  # the image has no compiler
        runner.run([*pip, "wheel", "-q", "--no-deps", "-w", str(dest), str(sdist)], timeout=600)
        sdist.unlink()
    (dest / "requirements.txt").write_text("\n".join(requirements) + "\n")
    done.touch()
    return dest


def ensure_image(
    image: str, *, dockerfile: Path, requirements: tuple[str, ...], progress: Callable[[str], None],
    runner: ProcessRunner = DEFAULT_RUNNER,
) -> str:
    """Build `image` from `dockerfile` once per machine: the build context holds only a
    wheelhouse (`wheelhouse/`, with its requirements.txt) for the requirements."""
    if image_exists(image, runner):
        return image
    key = hashlib.sha256("\n".join([image, *requirements]).encode()).hexdigest()[:12]
    build_dir = labkit_home() / "cache" / "images" / f"{image.replace('/', '_').replace(':', '_')}-{key}"
    progress(f"downloading wheels for {image} into {build_dir / 'wheelhouse'} (once per machine)")
    download_wheels(build_dir / "wheelhouse", requirements, runner)
    progress(f"building {image} (once per machine; a few minutes)")
    build_image(build_dir, image, dockerfile=dockerfile, runner=runner)
    shutil.rmtree(build_dir / "wheelhouse", ignore_errors=True)  # the image holds what it needs
    return image


def ensure_platform_image(*, progress: Callable[[str], None], runner: ProcessRunner = DEFAULT_RUNNER) -> str:
    """labkit/platform (MLflow + Prefect servers)."""
    return ensure_image(PLATFORM_IMAGE, dockerfile=project_file("infra/images/platform/Dockerfile"),
                        requirements=PLATFORM_REQUIREMENTS, progress=progress, runner=runner)
