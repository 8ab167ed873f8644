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

import functools
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

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


# Statements built once: building a select (and coercing an IN list) per call costs
# more than SQLite takes to run it, and proofs run these on every request.
_HEAD_SIZE = sa.select(ledger_head.c.size).where(ledger_head.c.id == 1)
_HEAD_SIZE_FOR_UPDATE = _HEAD_SIZE.with_for_update()
_SET_HEAD_SIZE = ledger_head.update().where(ledger_head.c.id == 1)
_NODES_BY_KEY = sa.select(ledger_nodes.c.node_id, ledger_nodes.c.hash).where(
    ledger_nodes.c.node_id.in_(sa.bindparam("keys", expanding=True))
)
# PostgreSQL: one array parameter instead of an IN list rendered afresh for every call.
_NODES_BY_KEY_ARRAY = sa.select(ledger_nodes.c.node_id, ledger_nodes.c.hash).where(
    ledger_nodes.c.node_id == sa.any_(sa.bindparam("keys", type_=sa.ARRAY(sa.BigInteger)))
)


@functools.cache
def _insert_statement(table: sa.Table, dialect: sa.Dialect) -> tuple[str, bool, bool]:
    """Driver-level INSERT for a two-column table: (SQL, positional?, columns swapped?).

    A pure function of its arguments, memoised: compiling per batch is what it saves.
    """
    compiled = table.insert().compile(dialect=dialect)
    names = [column.key for column in table.columns]
    positional = bool(compiled.positional)
    swapped = positional and list(compiled.positiontup or ()) != names
    return compiled.string, positional, swapped


def _insert_rows(conn: Connection, table: sa.Table, rows: list[tuple[int, bytes]]) -> None:
    """INSERT ``(key, blob)`` rows into a two-column table with one driver ``executemany``.

    The same statement SQLAlchemy would run, minus its per-row parameter processing
    (a dict, a bind processor and a copy per row), which cost more than SQLite's own
    insert. Errors still surface as SQLAlchemy exceptions.
    """
    statement, positional, swapped = _insert_statement(table, conn.dialect)
    if positional:
        conn.exec_driver_sql(statement, [(b, a) for a, b in rows] if swapped else rows)
    else:
        first, second = (column.key for column in table.columns)
        conn.exec_driver_sql(statement, [{first: key, second: blob} for key, blob in rows])


def _driver_chunks(
    conn: Connection, query: sa.Select[Any], chunk: int
) -> Generator[Sequence[Sequence[Any]], None, None]:
    """Stream a query's rows as lists, inside the caller's transaction.

    On SQLite rows come straight from the driver's cursor: SQLAlchemy's per-row
    result machinery costs more than SQLite's read. Elsewhere a streamed result
    (a server-side cursor on PostgreSQL) keeps memory flat.
    """
    if conn.dialect.name == "sqlite":  # qmark: positional parameters
        compiled = query.compile(dialect=conn.dialect)
        values = compiled.construct_params()
        parameters = [values[name] for name in compiled.positiontup or ()]
        dbapi_connection = conn.connection.dbapi_connection
        assert dbapi_connection is not None
        dbapi_error = conn.dialect.loaded_dbapi.Error
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(compiled.string, parameters)
            while rows := cursor.fetchmany(chunk):
                yield rows
        except dbapi_error as exc:  # raised as SQLAlchemy raises it for any other statement
            raise sa.exc.DBAPIError.instance(compiled.string, parameters, exc, dbapi_error) from exc
        finally:
            cursor.close()
        return
    # Per statement: Connection.execution_options() would change the caller's
    # connection for good, turning its later executemany calls into cursor errors.
    result = conn.execute(query, execution_options={"yield_per": chunk})
    try:
        yield from result.partitions()
    finally:
        # A consumer that stops early (a verifier at the first bad entry) must not
        # leave a PostgreSQL server-side cursor to be closed by the garbage collector.
        result.close()


class MerkleLog:
    """Reads and appends the ledger through a caller-supplied connection."""

    def __init__(self, clock: Clock = _utc_now) -> None:
        self._clock = clock

    # -- writing ---------------------------------------------------------------

    def lock_size(self, conn: Connection) -> int:
        """Lock the head for this transaction and return the current tree size."""
        query = _HEAD_SIZE_FOR_UPDATE if conn.dialect.name == "postgresql" else _HEAD_SIZE
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
        _insert_rows(conn, ledger_entries, list(enumerate(entries, size)))
        _insert_rows(
            conn,
            ledger_nodes,
            [
                ((level << _LEVEL_SHIFT) | index, digest)
                for (level, index), digest in new_nodes.items()
            ],
        )
        new_size = size + len(entries)
        conn.execute(_SET_HEAD_SIZE, {"size": new_size})
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
        leaf_hash, node_hash = merkle.leaf_hash, merkle.node_hash
        for index, data in enumerate(entries, size):
            known[(0, index)] = created[(0, index)] = leaf_hash(data)
            if index & 1:  # only odd leaves complete parents (completed_nodes is [] otherwise)
                for level, position in merkle.completed_nodes(index):
                    left = known[(level - 1, 2 * position)]
                    right = known[(level - 1, 2 * position + 1)]
                    known[(level, position)] = created[(level, position)] = node_hash(left, right)
        return created

    # -- reading ---------------------------------------------------------------

    def size(self, conn: Connection) -> int:
        value = conn.execute(_HEAD_SIZE).scalar_one_or_none()
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
        chunks = self._entry_chunks(conn, start, stop, chunk=chunk)
        try:
            for rows in chunks:
                for seq, data in rows:
                    yield LedgerEntry(index=seq, data=data)
        finally:
            chunks.close()  # now, not at garbage collection: see _driver_chunks

    def _entry_chunks(
        self, conn: Connection, start: int = 0, stop: int | None = None, *, chunk: int = 10_000
    ) -> Generator[list[tuple[int, bytes]], None, None]:
        """:meth:`entries` as lists of ``(index, data)`` tuples, for bulk readers (verify)."""
        query = sa.select(ledger_entries.c.seq, ledger_entries.c.entry).where(
            ledger_entries.c.seq >= start
        )
        if stop is not None:
            query = query.where(ledger_entries.c.seq < stop)
        rows = _driver_chunks(conn, query.order_by(ledger_entries.c.seq), chunk)
        try:
            for part in rows:
                yield [(int(seq), bytes(data)) for seq, data in part]
        finally:
            rows.close()

    def _fetch_nodes(
        self, conn: Connection, ids: Sequence[merkle.NodeId]
    ) -> dict[merkle.NodeId, bytes]:
        if not ids:
            return {}
        keys = [node_key(node) for node in ids]
        query = _NODES_BY_KEY_ARRAY if conn.dialect.name == "postgresql" else _NODES_BY_KEY
        rows = conn.execute(query, {"keys": keys})
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

    def _prefetched_source(
        self, conn: Connection, groups: Iterable[Sequence[merkle.NodeId]]
    ) -> merkle.NodeSource:
        """A node source serving every node a request needs from one query, not one per hash.

        If any is missing it falls back to :meth:`node_source`, so a damaged tree
        fails exactly as it would without the prefetch.
        """
        ids = list(dict.fromkeys(node for group in groups for node in group))
        try:
            found = self._fetch_nodes(conn, ids)
        except LedgerError:
            return self.node_source(conn)

        def source(wanted: Sequence[merkle.NodeId]) -> dict[merkle.NodeId, bytes]:
            if all(node in found for node in wanted):
                return {node: found[node] for node in wanted}
            return self._fetch_nodes(conn, wanted)

        return source

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
        source = self._prefetched_source(
            conn,
            [
                merkle.root_nodes(tree_size),
                *merkle.inclusion_proof_nodes(index, tree_size),
            ],
        )
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
        source = self._prefetched_source(
            conn,
            [
                merkle.root_nodes(old_size),
                merkle.root_nodes(target),
                *merkle.consistency_proof_nodes(old_size, target),
            ],
        )
        return (
            target,
            merkle.root_hash(old_size, source),
            merkle.root_hash(target, source),
            merkle.consistency_proof(old_size, target, source),
        )
