"""The hiring team's review key, and the hidden seed it derives from a lab's seed.

A candidate holds the seed of their lab and the support code that turns it into data,
so anything derived from the seed alone, they can regenerate. Hidden scenarios are
therefore drawn from ``hidden_seed(key, lab_id, seed)``: an HMAC-SHA256 of the seed
under a key only the hiring team's labkit holds. Without the key (the candidate's
machine), or with another one, the batches a candidate can generate are not the
reviewer's. Visible checks never need it.

The key is $LABKIT_REVIEW_KEY, else the file ``review.key`` in labkit's home
(``~/.labkit`` or $LABKIT_HOME), created (mode 0600) on first use. Reviewers who must
agree on hidden data share that file or the variable (README, "For hiring teams").
It never enters a candidate's workspace or environment: the grade's candidate
commands get an environment without it, and a review's sandbox hides the file.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from labkit.errors import BadInput
from labkit.paths import labkit_home

KEY_ENV = "LABKIT_REVIEW_KEY"
KEY_FILE = "review.key"
MIN_KEY_CHARS = 16  # a key a candidate could guess would protect nothing


def key_path() -> Path:
    return labkit_home() / KEY_FILE


def review_key(*, create: bool = True) -> str:
    """The key: $LABKIT_REVIEW_KEY, else the key file (written on first use when ``create``).

    Raises BadInput for a key too short to be secret, or when there is none and
    ``create`` is false."""
    value = os.environ.get(KEY_ENV, "").strip()
    source = f"${KEY_ENV}"
    if not value:
        path = key_path()
        source = str(path)
        if not path.exists() and create:
            _create(path)
        try:
            value = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise BadInput(f"no review key: {path} does not exist and ${KEY_ENV} is not set",
                           hint="run any hidden grade once to create it, or copy a fellow reviewer's") from None
        except OSError as exc:
            raise BadInput(f"cannot read the review key {path}: {exc}") from None
    if len(value) < MIN_KEY_CHARS:
        raise BadInput(f"the review key in {source} has {len(value)} characters; at least {MIN_KEY_CHARS} are needed",
                       hint=f"delete {key_path()} to get a new one, or share a longer key")
    return value


def hidden_seed(key: str, lab_id: str, seed: int) -> int:
    """A 63-bit seed for a lab's hidden scenarios: the same for the same key, lab and seed,
    and unpredictable from (lab, seed) without the key."""
    digest = hmac.new(key.encode("utf-8"), f"labkit-hidden/{lab_id}/{int(seed)}".encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def _create(path: Path) -> None:
    """Write a fresh key, readable by its owner only. Written aside and linked into place, so a
    concurrent first use never reads a half-written key, and the first link wins."""
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(secrets.token_hex(32) + "\n")
        try:
            os.link(aside, path)
        except FileExistsError:
            pass
    finally:
        aside.unlink(missing_ok=True)
