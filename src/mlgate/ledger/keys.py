"""The checkpoint signing key: created once by ``mlgate init``, never logged.

Keys use the C2SP signed-note text formats (:mod:`mlgate.ledger.note`), so the
public half can be handed to any note verifier, not only ours. The private file
is created with ``O_EXCL`` and mode 0600 in one step: there is no moment when it
exists with wider permissions, and an existing key is never overwritten.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from mlgate.errors import LedgerKeyError
from mlgate.ledger import note

__all__ = ["create_key_pair", "read_private_key", "read_verifier_key"]


def create_key_pair(private_path: Path, public_path: Path, name: str) -> str:
    """Write a new Ed25519 key pair; return the verifier key. Refuses to overwrite."""
    private_key, verifier_key = note.generate_key(name)
    private_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise LedgerKeyError(
            f"a signing key already exists at {private_path}; mlgate never overwrites one. "
            "Move it away first if you really mean to start a new ledger identity."
        ) from exc
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(private_key + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    public_path.write_text(verifier_key + "\n", encoding="utf-8")
    return verifier_key


def read_private_key(path: Path) -> str:
    if not path.exists():
        raise LedgerKeyError(
            f"no checkpoint signing key at {path}: run `mlgate init` (or point --home at "
            "the folder that holds keys/ledger.key)"
        )
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise LedgerKeyError(
            f"the signing key {path} is readable by others (mode {mode:o}); "
            f"run `chmod 600 {path}` and consider the key exposed"
        )
    text = path.read_text(encoding="utf-8").strip()
    try:
        note.verifier_key_from_private(text)
    except note.NoteError as exc:
        raise LedgerKeyError(f"{path} does not hold a signed-note private key: {exc}") from exc
    return text


def read_verifier_key(path: Path) -> str:
    if not path.exists():
        raise LedgerKeyError(
            f"no public key at {path}: run `mlgate init`, or pass the auditor's copy "
            "with --public-key"
        )
    text = path.read_text(encoding="utf-8").strip()
    try:
        note.key_name(text)
    except note.NoteError as exc:
        raise LedgerKeyError(f"{path} does not hold a signed-note verifier key: {exc}") from exc
    return text
