"""Full verification of the live ledger: every leaf, every stored node, every checkpoint.

Proofs are served from stored node hashes, so a verifier that only checked the
entries would miss a tampered node table that serves bad proofs. This one
recomputes the whole tree from the entry bytes and compares it row by row with
what is stored, then checks each signed checkpoint against the recomputed tree.
It reads in streams and keeps only 32-byte hashes in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from itertools import chain, islice
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mlgate.errors import LedgerIntegrityError
from mlgate.ledger import auditor, merkle
from mlgate.ledger.checkpoints import list_checkpoints
from mlgate.ledger.log import MerkleLog, _driver_chunks, node_from_key, node_key
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
        with closing(log._entry_chunks(conn, chunk=_CHUNK)) as chunks:
            hashes = auditor.leaf_hashes_in_order(chain.from_iterable(chunks))
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


_CHUNK = 20_000


def _stored_node_chunks(conn: Connection) -> Generator[Sequence[Sequence[Any]], None, None]:
    """Raw ``(node_id, hash)`` rows in node_id order, in lists."""
    query = sa.select(ledger_nodes.c.node_id, ledger_nodes.c.hash).order_by(ledger_nodes.c.node_id)
    return _driver_chunks(conn, query, _CHUNK)


def _stored_nodes(
    chunks: Iterator[Sequence[Sequence[Any]]],
) -> Generator[tuple[merkle.NodeId, bytes], None, None]:
    for rows in chunks:
        for key, digest in rows:
            yield node_from_key(int(key)), bytes(digest)


def _compare_nodes(conn: Connection, levels: merkle.MerkleLevels, size: int) -> int:
    """Compare the stored nodes with the recomputed tree; see :func:`_compare_stored`.

    A healthy table holds exactly the nodes of ``levels``, in the order of
    :meth:`~merkle.MerkleLevels.nodes` when sorted by node_id, so whole chunks are
    compared at once. The first chunk that differs in any way (a missing, extra,
    altered or oddly typed row), and everything after it, goes through the
    row-by-row check, which names the first fault exactly as it always has.
    """
    expected = _expected_node_count(size)
    wanted = levels.nodes()
    level, index, level_size = 0, 0, size  # the next node expected in node_id order
    seen = 0
    with closing(_stored_node_chunks(conn)) as chunks:
        for rows in chunks:
            keys: list[int] = []
            remaining = len(rows)
            while remaining and level_size:
                take = min(remaining, level_size - index)
                first = node_key((level, index))
                keys.extend(range(first, first + take))
                remaining -= take
                index += take
                if index == level_size:
                    level, index, level_size = level + 1, 0, level_size >> 1
            digests = [digest for _, digest in islice(wanted, len(rows))]
            if remaining or [row[0] for row in rows] != keys or [row[1] for row in rows] != digests:
                rest = chain([rows], chunks)
                return _compare_stored(_stored_nodes(rest), levels, size, expected, seen)
            seen += len(rows)
    if seen != expected:
        raise auditor.VerificationFailure(
            f"{expected - seen} Merkle node(s) are missing from the store ({seen} of {expected})"
        )
    return seen


def _compare_stored(
    stored: Iterator[tuple[merkle.NodeId, bytes]],
    levels: merkle.MerkleLevels,
    size: int,
    expected: int,
    seen: int = 0,
) -> int:
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
