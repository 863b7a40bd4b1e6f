"""The labkit wheel a bundle carries, so a candidate installs the hiring team's exact build
from a file, with no package index involved for labkit itself.

Two ways to have it, by how this labkit was installed:

* from a source checkout (editable: a hiring team's usual set-up): build the wheel from
  that checkout with hatchling, the project's own build backend. The wheel's build rules
  (pyproject.toml) leave every lab's hidden checks, solution and wrong fixes out.
* from a wheel: pack the installed distribution back into a wheel from its RECORD (the
  installed files are that wheel's files), less what the installer added.

Either way the result is the same kind of artifact ``pip install`` takes; its sha256 goes
into the bundle's version file so a review can tell which build a candidate ran.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib.metadata
import json
import shutil
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from labkit import __version__
from labkit.errors import LabkitError

DISTRIBUTION = "labkit-mlops"  # `labkit` on PyPI is an unrelated 2015 project
# What an installer writes into dist-info that the wheel did not carry.
_INSTALLER_FILES = {"INSTALLER", "REQUESTED", "direct_url.json", "RECORD"}


class WheelUnavailable(LabkitError):
    """The running labkit cannot be turned into a wheel (no checkout, no RECORD)."""


@dataclass(frozen=True)
class BuiltWheel:
    path: Path
    sha256: str


def wheel_filename() -> str:
    return f"{DISTRIBUTION.replace('-', '_')}-{__version__}-py3-none-any.whl"


def write_wheel(dest_dir: Path) -> BuiltWheel:
    """Put this labkit's wheel into ``dest_dir``; returns its path and sha256."""
    source = _cached_wheel()
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / source.name
    shutil.copyfile(source, target)
    return BuiltWheel(target, _sha256(target))


@functools.lru_cache(maxsize=1)
def _cached_wheel() -> Path:
    """Built once per process: an export of several labs or seeds carries one build."""
    out = Path(tempfile.mkdtemp(prefix="labkit-wheel-"))
    checkout = source_checkout()
    return _build_from_checkout(checkout, out) if checkout else repack_installed(_installed(), out)


def source_checkout() -> Path | None:
    """The checkout this labkit runs from, when it runs from one (editable or on sys.path)."""
    root = Path(__file__).resolve().parents[3]
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and (root / "src" / "labkit").is_dir() and DISTRIBUTION in pyproject.read_text():
        return root
    return None


def _build_from_checkout(root: Path, out: Path) -> Path:
    try:
        import hatchling  # noqa: F401  (the build backend; a core dependency)
    except ImportError:
        raise WheelUnavailable("building the bundle's labkit wheel needs hatchling",
                               hint="pip install 'hatchling>=1.25'") from None
    from labkit.proc import DEFAULT_RUNNER

    argv = [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(out)]
    DEFAULT_RUNNER.run(argv, timeout=300, cwd=root)  # hatchling builds reproducibly by default  # a failure is a CommandError with the output
    wheels = sorted(out.glob("*.whl"))
    if len(wheels) != 1:
        raise WheelUnavailable(f"building labkit's wheel from {root} left {len(wheels)} wheels in {out}")
    return wheels[0]


def _installed() -> importlib.metadata.Distribution:
    try:
        return importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise WheelUnavailable(f"labkit runs neither from a checkout nor from an installed {DISTRIBUTION} wheel",
                               hint=f"pip install {DISTRIBUTION}, or run labkit from its repository") from None


def repack_installed(dist: importlib.metadata.Distribution, out: Path) -> Path:
    """The wheel ``dist`` was installed from, packed again from its RECORD into ``out``."""
    if dist.version != __version__:
        raise WheelUnavailable(f"the installed {DISTRIBUTION} is {dist.version}, but this labkit is {__version__}")
    direct = dist.read_text("direct_url.json")
    if direct and json.loads(direct).get("dir_info", {}).get("editable"):
        raise WheelUnavailable("labkit is an editable install whose checkout was not found",
                               hint="run labkit from its repository")
    files = [f for f in dist.files or [] if _belongs_to_wheel(f)]
    if not files:
        raise WheelUnavailable(f"the installed {DISTRIBUTION} has no RECORD to pack it from")
    dist_info = next(f.parts[0] for f in files if f.parts[0].endswith(".dist-info"))
    out.mkdir(parents=True, exist_ok=True)
    target = out / wheel_filename()
    record = []
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for entry in sorted(files, key=lambda f: f.as_posix()):
            data = Path(entry.locate()).read_bytes()
            name = entry.as_posix()
            archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{name},sha256={digest},{len(data)}")
        record.append(f"{dist_info}/RECORD,,")
        archive.writestr(zipfile.ZipInfo(f"{dist_info}/RECORD", date_time=(1980, 1, 1, 0, 0, 0)),
                         "\n".join(record) + "\n")
    return target


def _belongs_to_wheel(entry: importlib.metadata.PackagePath) -> bool:
    parts = entry.parts
    if not parts or parts[0] == ".." or "__pycache__" in parts or entry.suffix == ".pyc":
        return False  # scripts the installer generated, byte-code it compiled
    return not (parts[0].endswith(".dist-info") and parts[-1] in _INSTALLER_FILES)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
