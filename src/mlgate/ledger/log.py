"""The append-only ledger on top of the store: entries, Merkle nodes, a locked head.

Appending a leaf stores it and every perfect subtree it completes (amortised two
rows per entry), so any root, inclusion proof or consistency proof is assembled
from O(log n) stored hashes in one query (:mod:`mlgate.ledger.merkle`), never by
rehashing the log.

Gap-free numbering across processes comes from the head row: an append first
locks it (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE``
write lock, taken by :meth:`Store.write`, already serialises writers), reads the
size, writes entries ``size..size+k-1`` and the new size, and commits. A crash
before commit leaves nothing; after commit, everything.

Appends take the caller's connection so a registry change and its ledger entry
commit or roll back together.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mlgate.errors import LedgerError, ProofError
from mlgate.ledger import merkle
from mlgate.ledger.events import LedgerEntry, LedgerEvent
from mlgate.store.schema import ledger_entries, ledger_head, ledger_nodes

__all__ = ["AppendResult", "MerkleLog", "node_key", "node_from_key"]

_LEVEL_SHIFT = 48
_INDEX_MASK = (1 << _LEVEL_SHIFT) - 1

Clock = Callable[[], datetime]


def node_key(node: merkle.NodeId) -> int:
    """Pack (level, index) into one integer primary key; 2**48 leaves is ample."""
    level, index = node
    return (level << _LEVEL_SHIFT) | index


def node_from_key(key: int) -> merkle.NodeId:
    return key >> _LEVEL_SHIFT, key & _INDEX_MASK


@dataclass(frozen=True)
class AppendResult:
    """Where appended entries landed: indices ``first .. first + count - 1``."""

    first: int
    count: int
    size: int

    @property
    def indices(self) -> range:
        return range(self.first, self.first + self.count)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class MerkleLog:
    """Reads and appends the ledger through a caller-supplied connection."""

    def __init__(self, clock: Clock = _utc_now) -> None:
        self._clock = clock

    # -- writing ---------------------------------------------------------------

    def lock_size(self, conn: Connection) -> int:
        """Lock the head for this transaction and return the current tree size."""
        query = sa.select(ledger_head.c.size).where(ledger_head.c.id == 1)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        size = conn.execute(query).scalar_one_or_none()
        if size is None:
            raise LedgerError("the ledger head row is missing: run `mlgate init`")
        return int(size)

    def append(self, conn: Connection, event: LedgerEvent) -> int:
        """Append one event; return its index."""
        return self.append_many(conn, [event]).first

    def append_many(self, conn: Connection, events: Sequence[LedgerEvent]) -> AppendResult:
        """Append events in order in the caller's transaction; one lock, three bulk writes."""
        size = self.lock_size(conn)
        if not events:
            return AppendResult(first=size, count=0, size=size)
        now = self._clock()
        entries = [event.to_entry(now) for event in events]
        new_nodes = self._grow(conn, size, entries)
        conn.execute(
            ledger_entries.insert(),
            [{"seq": size + offset, "entry": data} for offset, data in enumerate(entries)],
        )
        conn.execute(
            ledger_nodes.insert(),
            [{"node_id": node_key(node), "hash": digest} for node, digest in new_nodes.items()],
        )
        new_size = size + len(entries)
        conn.execute(ledger_head.update().where(ledger_head.c.id == 1).values(size=new_size))
        return AppendResult(first=size, count=len(entries), size=new_size)

    def _grow(
        self, conn: Connection, size: int, entries: Sequence[bytes]
    ) -> dict[merkle.NodeId, bytes]:
        """Hash the new leaves and every perfect subtree they complete.

        The only stored hashes a batch can need are the perfect subtrees on the
        right edge of the current tree (the ``root_nodes`` of ``size``).
        """
        known = dict(self._fetch_nodes(conn, merkle.root_nodes(size)))
        created: dict[merkle.NodeId, bytes] = {}
        for offset, data in enumerate(entries):
            index = size + offset
            leaf = merkle.leaf_hash(data)
            known[(0, index)] = created[(0, index)] = leaf
            for level, position in merkle.completed_nodes(index):
                left = known[(level - 1, 2 * position)]
                right = known[(level - 1, 2 * position + 1)]
                known[(level, position)] = created[(level, position)] = merkle.node_hash(
                    left, right
                )
        return created

    # -- reading ---------------------------------------------------------------

    def size(self, conn: Connection) -> int:
        value = conn.execute(
            sa.select(ledger_head.c.size).where(ledger_head.c.id == 1)
        ).scalar_one_or_none()
        if value is None:
            raise LedgerError("the ledger head row is missing: run `mlgate init`")
        return int(value)

    def entry(self, conn: Connection, index: int) -> LedgerEntry:
        size = self.size(conn)
        if not 0 <= index < size:
            raise ProofError(
                f"entry {index} does not exist: the ledger holds entries 0..{size - 1}"
            )
        data = conn.execute(
            sa.select(ledger_entries.c.entry).where(ledger_entries.c.seq == index)
        ).scalar_one_or_none()
        if data is None:
            raise LedgerError(
                f"entry {index} is missing from a ledger of size {size}: run `mlgate ledger verify`"
            )
        return LedgerEntry(index=index, data=bytes(data))

    def entries(
        self, conn: Connection, start: int = 0, stop: int | None = None, *, chunk: int = 10_000
    ) -> Generator[LedgerEntry, None, None]:
        """Stream entries in index order, as stored (gaps are the verifier's business)."""
        query = sa.select(ledger_entries.c.seq, ledger_entries.c.entry).where(
            ledger_entries.c.seq >= start
        )
        if stop is not None:
            query = query.where(ledger_entries.c.seq < stop)
        # Per statement: Connection.execution_options() would change the caller's
        # connection for good, turning its later executemany calls into cursor errors.
        result = conn.execute(
            query.order_by(ledger_entries.c.seq), execution_options={"yield_per": chunk}
        )
        try:
            for seq, data in result:
                yield LedgerEntry(index=int(seq), data=bytes(data))
        finally:
            # A consumer that stops early (a verifier at the first bad entry) must not
            # leave a PostgreSQL server-side cursor to be closed by the garbage collector.
            result.close()

    def _fetch_nodes(
        self, conn: Connection, ids: Sequence[merkle.NodeId]
    ) -> dict[merkle.NodeId, bytes]:
        if not ids:
            return {}
        keys = [node_key(node) for node in ids]
        rows = conn.execute(
            sa.select(ledger_nodes.c.node_id, ledger_nodes.c.hash).where(
                ledger_nodes.c.node_id.in_(keys)
            )
        )
        found = {node_from_key(int(key)): bytes(digest) for key, digest in rows}
        missing = [node for node in ids if node not in found]
        if missing:
            raise LedgerError(
                f"the ledger's Merkle nodes {missing[:3]} are missing: the tree is damaged; "
                "run `mlgate ledger verify`"
            )
        return found

    def node_source(self, conn: Connection) -> merkle.NodeSource:
        return lambda ids: self._fetch_nodes(conn, ids)

    def root_hash(self, conn: Connection, size: int | None = None) -> bytes:
        current = self.size(conn)
        tree_size = current if size is None else size
        if not 0 <= tree_size <= current:
            raise ProofError(f"tree size {tree_size} is outside 0..{current}, the ledger's sizes")
        return merkle.root_hash(tree_size, self.node_source(conn))

    def inclusion_proof(
        self, conn: Connection, index: int, size: int | None = None
    ) -> tuple[int, bytes, list[bytes]]:
        """Return (tree size, root hash, audit path) proving entry ``index``."""
        current = self.size(conn)
        tree_size = current if size is None else size
        if not 0 < tree_size <= current:
            raise ProofError(f"tree size {tree_size} is outside 1..{current}, the ledger's sizes")
        if not 0 <= index < tree_size:
            raise ProofError(
                f"entry {index} is not in a tree of size {tree_size}: use 0..{tree_size - 1}"
            )
        source = self.node_source(conn)
        return (
            tree_size,
            merkle.root_hash(tree_size, source),
            merkle.inclusion_proof(index, tree_size, source),
        )

    def consistency_proof(
        self, conn: Connection, old_size: int, new_size: int | None = None
    ) -> tuple[int, bytes, bytes, list[bytes]]:
        """Return (new size, old root, new root, proof) that ``old_size`` is a prefix."""
        current = self.size(conn)
        target = current if new_size is None else new_size
        if not 0 <= old_size <= target <= current:
            raise ProofError(
                f"a consistency proof needs 0 <= old size ({old_size}) <= new size "
                f"({target}) <= ledger size ({current})"
            )
        source = self.node_source(conn)
        return (
            target,
            merkle.root_hash(old_size, source),
            merkle.root_hash(target, source),
            merkle.consistency_proof(old_size, target, source),
        )
