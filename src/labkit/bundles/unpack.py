"""Unpack a submission that nobody vouches for.

A submission is a .tar.gz a candidate (or anyone) made. Before a byte is written,
every member is inspected, and every problem is reported at once with the member's
name: absolute paths, ``..``, links (any link that escapes is refused; links inside
are not needed — ``labkit submit`` never packs one — and are dropped with a note),
device files and FIFOs, duplicate names, oversized members, too many members, paths nested too
deep, and bombs (total size, and the ratio of unpacked to packed bytes). Extraction then
writes regular files only, with O_NOFOLLOW|O_EXCL, counting the bytes it actually
writes, so a header that lies cannot write more than it declared.
"""

from __future__ import annotations

import os
import posixpath
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from labkit.errors import BadInput

_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)


@dataclass(frozen=True)
class UnpackLimits:
    max_members: int = 5_000
    max_member_bytes: int = 64 * 1024 * 1024  # one file
    max_total_bytes: int = 256 * 1024 * 1024  # all files
    max_ratio: float = 200.0  # unpacked / packed bytes, checked once the total passes ratio_floor
    ratio_floor_bytes: int = 8 * 1024 * 1024
    max_depth: int = 64  # folders in a member's path: Python's path handling recurses per level
    max_name_chars: int = 1024  # and the kernel refuses paths past PATH_MAX (4096) anyway


@dataclass
class Unpacked:
    root: Path
    files: int = 0
    bytes: int = 0
    notes: list[str] = field(default_factory=list)  # dropped harmless members, for the report


class UnsafeArchive(BadInput):
    """Refused before anything was written; ``problems`` names each offending member."""

    def __init__(self, source: Path, problems: list[str]) -> None:
        self.problems = problems
        shown = problems[:20] + ([f"... and {len(problems) - 20} more"] if len(problems) > 20 else [])
        super().__init__(f"{source.name}: refused to unpack ({len(problems)} problem(s)):\n"
                         + "\n".join(f"  - {p}" for p in shown))


def safe_unpack(archive: Path, dest: Path, limits: UnpackLimits = UnpackLimits()) -> Unpacked:
    """Inspect then extract ``archive`` into the empty folder ``dest``."""
    members = inspect_archive(archive, limits)
    dest.mkdir(parents=True, exist_ok=True)
    result = Unpacked(dest)
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in members:
                target = dest / member.name
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                if not member.isfile():
                    result.notes.append(f"dropped {member.name}: a link inside the archive (submissions hold files only)")
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                result.bytes += _copy(tar, member, target, limits)
                result.files += 1
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise BadInput(f"{archive.name}: the archive is truncated or corrupt ({exc})",
                       hint="ask the candidate to run `labkit submit` again and resend the file") from None
    return result


def inspect_archive(archive: Path, limits: UnpackLimits) -> list[tarfile.TarInfo]:
    """Every member, checked; raises UnsafeArchive listing all problems found."""
    if not archive.is_file():
        raise BadInput(f"{archive}: not a file")
    if zipfile.is_zipfile(archive):
        raise BadInput(f"{archive.name}: a zip archive, not a labkit submission (`labkit submit` writes .tar.gz)")
    packed = max(archive.stat().st_size, 1)
    problems: list[str] = []
    members: list[tarfile.TarInfo] = []
    seen: set[str] = set()
    folders: set[str] = set()  # every parent folder a member implies
    total = 0
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                if len(members) >= limits.max_members:
                    problems.append(f"more than {limits.max_members} members (an archive bomb?)")
                    break
                name, problem = _check_member(member, seen, limits)
                if problem:
                    problems.append(problem)
                    continue
                member.name = name
                clash = _file_folder_clash(name, member.isdir(), seen, folders)
                if clash:
                    problems.append(clash)
                    continue
                seen.add(name)
                members.append(member)
                if member.isfile():
                    total += member.size
                    if total > limits.max_total_bytes:
                        problems.append(f"unpacks to more than {_mb(limits.max_total_bytes)} (an archive bomb?)")
                        break
                    if total > limits.ratio_floor_bytes and total / packed > limits.max_ratio:
                        problems.append(f"unpacks to {total / packed:.0f}x its packed size "
                                        f"(limit {limits.max_ratio:.0f}x; an archive bomb?)")
                        break
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        kind = "not a tar archive" if not members and not problems else "truncated or corrupt"
        raise BadInput(f"{archive.name}: {kind} ({exc})",
                       hint="a submission is the .tar.gz that `labkit submit` writes") from None
    if problems:
        raise UnsafeArchive(archive, problems)
    if not members:
        raise BadInput(f"{archive.name}: an empty archive")
    return members


def _file_folder_clash(name: str, is_dir: bool, seen: set[str], folders: set[str]) -> str:
    """A path both a file and a folder: extraction would fail half-way, so refuse it up front."""
    parents = [posixpath.dirname(name)]
    while parents[-1] not in ("", "/"):
        parents.append(posixpath.dirname(parents[-1]))
    parents = [p for p in parents if p]
    clash = next((p for p in parents if p in seen and p not in folders), None)
    if clash is None and not is_dir and name in folders:
        clash = name
    folders.update(parents + ([name] if is_dir else []))
    return f"{clash}: is both a file and a folder in the archive" if clash else ""


def _check_member(member: tarfile.TarInfo, seen: set[str], limits: UnpackLimits) -> tuple[str, str]:
    raw = member.name
    if not raw or "\0" in raw:
        return "", f"{raw!r}: an empty or NUL-containing name"
    if raw.startswith(("/", "\\")) or (len(raw) > 1 and raw[1] == ":"):
        return "", f"{raw}: an absolute path"
    parts = raw.replace("\\", "/").split("/")
    if ".." in parts:
        return "", f"{raw}: a path with '..' (escapes the folder)"
    name = posixpath.normpath(raw.replace("\\", "/"))
    depth = name.count("/")
    if depth > limits.max_depth or len(name) > limits.max_name_chars:
        return "", (f"{name[:80]}...: nested {depth} folders deep, {len(name)} characters "
                    f"(limit {limits.max_depth} folders, {limits.max_name_chars} characters)")
    if name in (".", ""):
        return "", "" if member.isdir() else f"{raw!r}: not a file name"
    if name in seen and not member.isdir():
        return "", f"{name}: appears twice in the archive (a later copy would replace the first)"
    if member.issym() or member.islnk():
        target = member.linkname
        base = posixpath.dirname(name) if member.issym() else ""
        resolved = posixpath.normpath(posixpath.join(base, target))
        if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
            kind = "symlink" if member.issym() else "hard link"
            return "", f"{name}: a {kind} to {target!r}, outside the submission"
        return name, ""
    if member.ischr() or member.isblk() or member.isfifo() or not (member.isfile() or member.isdir()):
        return "", f"{name}: a device file or FIFO (type {member.type!r}); submissions hold regular files only"
    if member.isfile() and member.size > limits.max_member_bytes:
        return "", f"{name}: {_mb(member.size)}, over the {_mb(limits.max_member_bytes)} limit for one file"
    return name, ""


def _copy(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path, limits: UnpackLimits) -> int:
    source = tar.extractfile(member)
    assert source is not None
    fd = os.open(target, _OPEN_FLAGS, 0o755 if member.mode & 0o100 else 0o644)
    written = 0
    with os.fdopen(fd, "wb") as out:
        while block := source.read(1 << 20):
            written += len(block)
            if written > min(member.size, limits.max_member_bytes):
                raise BadInput(f"{member.name}: holds more bytes than its header declares")
            out.write(block)
    return written


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.0f} MB" if n >= 1024 * 1024 else f"{n} bytes"
