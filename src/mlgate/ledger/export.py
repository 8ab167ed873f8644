"""Export a self-contained audit bundle that verifies without mlgate installed.

Layout::

    BUNDLE/
      README.md          what the auditor is looking at and how to check it
      manifest.json      origin, size, root hash, digest of entries.jsonl
      entries.jsonl      entry i on line i, its exact leaf bytes (RFC 8785 JSON)
      checkpoints/*.note every signed checkpoint up to the exported size
      ledger.pub         the signed-note verifier key
      verifier/          verify.py + merkle.py + note.py (stdlib + cryptography)

The bundle is written to a temporary sibling folder and renamed into place, so
an interrupted export never leaves a half bundle under the requested name.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from sqlalchemy.engine import Connection

from mlgate.errors import LedgerError
from mlgate.ledger import auditor
from mlgate.ledger.checkpoints import list_checkpoints
from mlgate.ledger.log import MerkleLog

__all__ = ["ExportSummary", "check_destination", "export_bundle", "verifier_sources"]

_IMPORT_LINE = "from mlgate.ledger import merkle, note  # bundle: import merkle, note\n"
_BUNDLE_IMPORT = (
    "# The sibling modules, found even under `python -I` (which drops the script's folder).\n"
    "sys.path.insert(0, str(Path(__file__).resolve().parent))\n"
    "import merkle  # noqa: E402\n"
    "import note  # noqa: E402\n"
)


@dataclass(frozen=True)
class ExportSummary:
    path: Path
    size: int
    root_hash: str
    checkpoints: int


def check_destination(destination: Path) -> None:
    """Refuse anything but a new or empty folder, before any work (or checkpoint) is done."""
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        raise LedgerError(f"{destination} exists and is not an empty folder: choose a new folder")


def verifier_sources() -> dict[str, str]:
    """The verifier files as they go into a bundle, keyed by file name."""
    package = resources.files("mlgate.ledger")
    verify = (package / "auditor.py").read_text(encoding="utf-8")
    if verify.count(_IMPORT_LINE) != 1:
        raise LedgerError("internal: auditor.py's import line changed; update export.py")
    return {
        "verify.py": verify.replace(_IMPORT_LINE, _BUNDLE_IMPORT),
        "merkle.py": (package / "merkle.py").read_text(encoding="utf-8"),
        "note.py": (package / "note.py").read_text(encoding="utf-8"),
    }


def export_bundle(
    conn: Connection, log: MerkleLog, destination: Path, verifier_key: str, origin: str
) -> ExportSummary:
    """Write entries up to the newest checkpoint, with every checkpoint up to there."""
    check_destination(destination)
    checkpoints = list_checkpoints(conn)
    if not checkpoints:
        raise LedgerError("the ledger has no signed checkpoint yet: run `mlgate ledger checkpoint`")
    size = max(checkpoint.size for checkpoint in checkpoints)
    root = log.root_hash(conn, size).hex()
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    try:
        digest = hashlib.sha256()
        with (staging / auditor.ENTRIES_FILE).open("wb") as out:
            for entry in log.entries(conn, 0, size):
                line = entry.data + b"\n"
                digest.update(line)
                out.write(line)
        notes = staging / auditor.CHECKPOINTS_DIR
        notes.mkdir()
        for checkpoint in checkpoints:
            (notes / f"{checkpoint.id:08d}.note").write_text(checkpoint.note, encoding="utf-8")
        (staging / auditor.PUBLIC_KEY_FILE).write_text(verifier_key + "\n", encoding="utf-8")
        manifest = {
            "format": 1,
            "origin": origin,
            "size": size,
            "root_hash": root,
            "entries_sha256": digest.hexdigest(),
        }
        (staging / auditor.MANIFEST_FILE).write_text(
            json.dumps(manifest, indent=2) + "\n", encoding="utf-8"
        )
        tools = staging / "verifier"
        tools.mkdir()
        for name, source in verifier_sources().items():
            (tools / name).write_text(source, encoding="utf-8")
        (staging / "README.md").write_text(_readme(origin, size, root), encoding="utf-8")
        if destination.exists():
            destination.rmdir()
        os.replace(staging, destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ExportSummary(path=destination, size=size, root_hash=root, checkpoints=len(checkpoints))


def _readme(origin: str, size: int, root: str) -> str:
    return f"""# mlgate ledger export

Log origin: `{origin}`
Entries: {size}
Root hash (RFC 9162, SHA-256): `{root}`

## What this is

An append-only log of every change the mlgate installation made (model
registrations, alias moves, ...). Each line of `entries.jsonl` is one entry in
RFC 8785 canonical JSON; its exact bytes are a leaf of an RFC 9162 Merkle tree
(leaf hash SHA-256(0x00 || bytes), node hash SHA-256(0x01 || left || right)).
`checkpoints/` holds tree heads signed with Ed25519 in the C2SP signed-note /
tlog-checkpoint format; `ledger.pub` is the verifier key.

## How to check it

You need Python 3.11+ and the `cryptography` package, nothing of mlgate:

    python -m pip install cryptography
    python verifier/verify.py . --public-key 'KEY YOU RECEIVED SEPARATELY'

The verifier recomputes every leaf hash and the tree, checks that every entry is
canonical JSON, and checks each checkpoint's signature and root. It exits 0 and
prints OK only if all of that holds. Obtain the public key through a channel
other than this bundle: a key shipped with the data proves only that the data is
self-consistent. Entries hold digests (sha256:...) of the records they describe,
so records can be erased without invalidating the log.
"""
