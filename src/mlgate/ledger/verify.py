"""Full verification of the live ledger: every leaf, every stored node, every checkpoint.

Proofs are served from stored node hashes, so a verifier that only checked the
entries would miss a tampered node table that serves bad proofs. This one
recomputes the whole tree from the entry bytes and compares it row by row with
what is stored, then checks each signed checkpoint against the recomputed tree.
It reads in streams and keeps only 32-byte hashes in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from contextlib import closing
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mlgate.errors import LedgerIntegrityError
from mlgate.ledger import auditor, merkle
from mlgate.ledger.checkpoints import list_checkpoints
from mlgate.ledger.log import MerkleLog, node_from_key
from mlgate.store.schema import ledger_nodes

__all__ = ["VerifyReport", "verify_log"]

Progress = Callable[[str], None]


@dataclass(frozen=True)
class VerifyReport:
    size: int
    root_hash: bytes
    nodes: int
    checkpoints: int
    registry_versions: int = 0
    alias_moves: int = 0

    def to_json(self) -> dict[str, object]:
        return {
            "ok": True,
            "size": self.size,
            "root_hash": self.root_hash.hex(),
            "nodes_checked": self.nodes,
            "checkpoints_checked": self.checkpoints,
            "registry_versions_checked": self.registry_versions,
            "alias_moves_checked": self.alias_moves,
        }


def verify_log(
    conn: Connection,
    log: MerkleLog,
    verifier_key: str,
    origin: str,
    progress: Progress | None = None,
) -> VerifyReport:
    """Raise :class:`LedgerIntegrityError` naming the first fault; return a report otherwise."""
    say = progress or (lambda _message: None)
    try:
        size = log.size(conn)
        say(f"recomputing {size} leaf hashes")
        with closing(log.entries(conn)) as entries:
            hashes = auditor.leaf_hashes_in_order((entry.index, entry.data) for entry in entries)
        if len(hashes) != size:
            if len(hashes) < size:
                raise auditor.VerificationFailure(
                    f"the head says {size} entries but entries {len(hashes)}..{size - 1} "
                    "are missing",
                    len(hashes),
                )
            raise auditor.VerificationFailure(
                f"entries {size}..{len(hashes) - 1} lie beyond the head's size {size}", size
            )
        say("rebuilding the Merkle tree")
        levels = merkle.MerkleLevels.from_leaf_hashes(hashes)
        say("comparing stored Merkle nodes")
        nodes = _compare_nodes(conn, levels, size)
        say("checking signed checkpoints")
        stored = list_checkpoints(conn)
        signed = auditor.check_checkpoints(
            levels, size, [(f"#{c.id}", c.note) for c in stored], verifier_key, origin
        )
        for row, checkpoint in zip(stored, signed, strict=True):
            if (row.size, row.root_hash) != (checkpoint.size, checkpoint.root_hash):
                raise auditor.VerificationFailure(
                    f"checkpoint #{row.id}'s stored size/root columns differ from its signed note"
                )
    except auditor.VerificationFailure as exc:
        raise LedgerIntegrityError(str(exc), index=exc.index) from exc
    return VerifyReport(
        size=size, root_hash=levels.root_hash(size), nodes=nodes, checkpoints=len(stored)
    )


def _stored_nodes(conn: Connection) -> Generator[tuple[merkle.NodeId, bytes], None, None]:
    query = sa.select(ledger_nodes.c.node_id, ledger_nodes.c.hash).order_by(ledger_nodes.c.node_id)
    result = conn.execute(query, execution_options={"yield_per": 20_000})
    try:
        for key, digest in result:
            yield node_from_key(int(key)), bytes(digest)
    finally:
        result.close()


def _compare_nodes(conn: Connection, levels: merkle.MerkleLevels, size: int) -> int:
    expected = _expected_node_count(size)
    with closing(_stored_nodes(conn)) as stored:
        return _compare_stored(stored, levels, size, expected)


def _compare_stored(
    stored: Iterator[tuple[merkle.NodeId, bytes]],
    levels: merkle.MerkleLevels,
    size: int,
    expected: int,
) -> int:
    seen = 0
    for (level, index), digest in stored:
        if level > 0 and (index + 1) << level > size or level == 0 and index >= size:
            raise auditor.VerificationFailure(
                f"a Merkle node ({level}, {index}) is stored for entries beyond the log's end"
            )
        if levels.node((level, index)) != digest:
            first = index << level
            if level == 0:
                raise auditor.VerificationFailure(
                    f"entry {index}'s bytes no longer hash to its stored leaf hash: the entry "
                    "or its hash was altered",
                    index,
                )
            raise auditor.VerificationFailure(
                f"stored Merkle node ({level}, {index}) over entries {first}.."
                f"{first + (1 << level) - 1} is altered: proofs served from it would be wrong",
                first,
            )
        seen += 1
    if seen != expected:
        raise auditor.VerificationFailure(
            f"{expected - seen} Merkle node(s) are missing from the store ({seen} of {expected})"
        )
    return seen


def _expected_node_count(size: int) -> int:
    count, level_size = 0, size
    while level_size:
        count += level_size
        level_size >>= 1
    return count
