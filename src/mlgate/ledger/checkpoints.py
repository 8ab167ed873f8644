"""Signed checkpoints (C2SP tlog-checkpoint): a tree size and root, signed with Ed25519.

A checkpoint is the ledger's promise to an outsider: "my first N entries hash to
this root". Once a checkpoint has left the building, any rewrite of those N
entries is detectable, because no consistent tree can reproduce the root.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mlgate.errors import LedgerKeyError
from mlgate.ledger import note
from mlgate.ledger.events import format_time
from mlgate.ledger.log import MerkleLog
from mlgate.store.schema import ledger_checkpoints

__all__ = ["Checkpointer", "StoredCheckpoint", "list_checkpoints"]


@dataclass(frozen=True)
class StoredCheckpoint:
    id: int
    size: int
    root_hash: bytes
    note: str
    created_at: str

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "size": self.size,
            "root_hash": self.root_hash.hex(),
            "created_at": self.created_at,
            "note": self.note,
        }


class Checkpointer:
    """Signs the current tree head and keeps every signed checkpoint."""

    def __init__(
        self, log: MerkleLog, origin: str, private_key: str, clock: Callable[[], datetime]
    ) -> None:
        if note.key_name(private_key) != origin:
            raise LedgerKeyError(
                f"the signing key is named {note.key_name(private_key)!r} but this ledger's "
                f"origin is {origin!r}: the key belongs to another ledger"
            )
        self._log = log
        self._origin = origin
        self._private_key = private_key
        self._clock = clock

    def create(self, conn: Connection) -> StoredCheckpoint:
        """Sign and store a checkpoint of the tree as it is now (in the caller's write txn)."""
        size = self._log.lock_size(conn)
        root = self._log.root_hash(conn, size)
        body = note.Checkpoint(origin=self._origin, size=size, root_hash=root).to_text()
        signed = note.sign_note(body, self._private_key)
        created_at = format_time(self._clock())
        new_id = conn.execute(
            ledger_checkpoints.insert().values(
                size=size, root_hash=root, note=signed, created_at=created_at
            )
        ).inserted_primary_key
        assert new_id is not None
        return StoredCheckpoint(
            id=int(new_id[0]), size=size, root_hash=root, note=signed, created_at=created_at
        )


def list_checkpoints(conn: Connection) -> list[StoredCheckpoint]:
    rows = conn.execute(sa.select(ledger_checkpoints).order_by(ledger_checkpoints.c.id))
    return [
        StoredCheckpoint(
            id=int(row.id),
            size=int(row.size),
            root_hash=bytes(row.root_hash),
            note=str(row.note),
            created_at=str(row.created_at),
        )
        for row in rows
    ]
