"""Check the registry's rows against the digests the ledger recorded for them.

The ledger proves its own entries; this closes the loop to the data they
describe. Each version row and alias move was ledgered with the digest of its
record in the same transaction, so any later edit of a row (a swapped sha256,
a rewritten metric, a silently moved alias) shows up as a digest mismatch here,
and "versions are immutable" becomes a checked fact, not a promise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mlgate.errors import LedgerError, LedgerIntegrityError
from mlgate.ledger.events import EventKind, digest_json
from mlgate.ledger.log import MerkleLog
from mlgate.registry._rows import alias_move_from_row, version_from_row
from mlgate.store.schema import alias_history, aliases, model_versions

__all__ = ["RegistryAudit", "audit_registry"]


@dataclass(frozen=True)
class RegistryAudit:
    versions: int
    alias_moves: int


def audit_registry(conn: Connection, log: MerkleLog) -> RegistryAudit:
    """Raise :class:`LedgerIntegrityError` at the first row that differs from its entry."""
    versions = 0
    for row in conn.execute(sa.select(model_versions).order_by(model_versions.c.ledger_seq)):
        version = version_from_row(row)
        where = f"{version.name} version {version.version}"
        entry = _entry(conn, log, version.ledger_seq, where)
        expected_subject = {"model": version.name, "version": version.version}
        _expect(entry, EventKind.MODEL_REGISTERED, expected_subject, where, version.ledger_seq)
        digests = entry.get("digests", {})
        if digests.get("artifact") != "sha256:" + version.sha256 or digests.get(
            "record"
        ) != digest_json(version.record()):
            raise LedgerIntegrityError(
                f"the registry row for {where} differs from what ledger entry "
                f"{version.ledger_seq} recorded: the row was edited after registration"
            )
        versions += 1
    latest: dict[tuple[str, str], tuple[int, int]] = {}
    moves = 0
    for row in conn.execute(sa.select(alias_history).order_by(alias_history.c.id)):
        move = alias_move_from_row(row)
        where = f"alias {move.name}:{move.alias} move to {move.to_version}"
        entry = _entry(conn, log, move.ledger_seq, where)
        subject = {"model": move.name, "alias": move.alias, "version": move.to_version}
        _expect(entry, EventKind.ALIAS_MOVED, subject, where, move.ledger_seq)
        if entry.get("digests", {}).get("record") != digest_json(move.record()):
            raise LedgerIntegrityError(
                f"the history row of {where} differs from ledger entry {move.ledger_seq}"
            )
        latest[(move.name, move.alias)] = (move.to_version, move.ledger_seq)
        moves += 1
    for row in conn.execute(sa.select(aliases)):
        recorded = latest.get((row.name, row.alias))
        if recorded != (int(row.version), int(row.ledger_seq)):
            raise LedgerIntegrityError(
                f"alias {row.name}:{row.alias} points at version {row.version}, but its last "
                f"ledgered move says {recorded[0] if recorded else 'nothing'}: it was moved "
                "outside mlgate"
            )
    return RegistryAudit(versions=versions, alias_moves=moves)


def _entry(conn: Connection, log: MerkleLog, seq: int, where: str) -> dict[str, Any]:
    try:
        return log.entry(conn, seq).document()
    except LedgerError as exc:
        raise LedgerIntegrityError(
            f"{where} cites ledger entry {seq}, which cannot be read: {exc}"
        ) from exc


def _expect(
    entry: dict[str, Any], kind: str, subject: dict[str, Any], where: str, seq: int
) -> None:
    if entry.get("kind") != kind or entry.get("subject") != subject:
        raise LedgerIntegrityError(
            f"{where} cites ledger entry {seq}, but that entry records "
            f"{entry.get('kind')} of {entry.get('subject')}"
        )
