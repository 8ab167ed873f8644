"""Writing one planned batch of the inbox in one transaction.

Order. On PostgreSQL the writers of one loop first take a transaction advisory lock keyed
on the loop, so sequence numbers are committed in the order they are drawn; on SQLite the
store's ``BEGIN IMMEDIATE`` serialises every writer the same way. A reader of
:meth:`~mlgate.loop.inbox.Inbox.after` therefore never sees sequence ``n + 1`` before ``n``.

Label times. Every label stored by a transaction (inline with its record, later for a known
record, or waiting in a label-only row) gets the same ``labelled_at``, read from the clock
with the lock held and just before the statements that store labels: the time from that
reading to the commit is as short as it can be, which is what the settle delay of
:meth:`~mlgate.loop.inbox.Inbox.labelled_since` relies on.

A joined row (a label that waited, then its record) takes the join's ``labelled_at``, as
it takes a new sequence number: the label only becomes readable with features now, and a
reader whose watermark passed the label's first time would never see it otherwise.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from mlgate.ledger.events import format_time
from mlgate.loop._inbox_plan import (
    REASONS_KEPT,
    IngestResult,
    PlannedRow,
    flip_reason,
    same_label,
)
from mlgate.store.schema import loop_records

__all__ = ["IDS_PER_QUERY", "parts", "write_rows"]

IDS_PER_QUERY = 500  # values per IN list: far below every driver's parameter limit
_T = loop_records.c


def write_rows(
    conn: Connection,
    loop: str,
    rows: dict[str, PlannedRow],
    now: str,
    clock: Callable[[], datetime],
) -> IngestResult:
    """Store ``rows`` (one per record id) against what ``loop`` already holds.

    ``now`` is the batch's ingestion time; ``clock`` gives the labels' ``labelled_at``.
    """
    if conn.dialect.name == "postgresql":
        key = hashlib.sha256(f"mlgate.loop_records\x00{loop}".encode()).digest()[:8]
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(int.from_bytes(key, signed=True))))
    stored = _stored(conn, loop, list(rows))
    new: list[tuple[str, PlannedRow]] = []
    joined: list[int] = []  # label-only rows whose record came: replaced by a new row
    labels: list[dict[str, Any]] = []  # labels for stored rows that had none
    counts = dict.fromkeys(("accepted", "duplicates", "applied", "waiting", "rejected"), 0)
    reasons: list[str] = []
    for rid, row in rows.items():
        old = stored.get(rid)
        if old is None:
            new.append((rid, row))
            if row.features is None:
                counts["waiting"] += 1
            else:
                counts["accepted"] += 1
                counts["applied"] += row.label is not None
            continue
        seq, has_features, label = old
        if row.label is not None and label is not None and not same_label(row.label, label):
            counts["rejected"] += 1
            reasons.append(flip_reason(rid, row.label, label))
        elif row.label is not None and label is not None:
            counts["duplicates"] += 1
        if row.features is not None and not has_features:  # its waiting label joins it
            joined.append(seq)
            new.append((rid, PlannedRow(row.features, label, row.event_time)))
            counts["accepted"] += 1
            counts["applied"] += 1
            continue
        counts["duplicates"] += row.features is not None
        if row.label is not None and label is None:
            labels.append({"row_seq": seq, "row_label": row.label})
            counts["applied" if has_features else "waiting"] += 1
    labelled_at = format_time(clock())
    for part in parts(joined):
        conn.execute(loop_records.delete().where(_T.loop == loop, _T.seq.in_(part)))
    if labels:
        update = (
            loop_records.update()
            .where(_T.loop == loop, _T.seq == sa.bindparam("row_seq"))
            .values(label=sa.bindparam("row_label", type_=_T.label.type), labelled_at=labelled_at)
        )
        conn.execute(update, labels)
    _insert(conn, [_values(loop, rid, row, now, labelled_at) for rid, row in new])
    return IngestResult(
        counts["accepted"],
        counts["duplicates"],
        counts["applied"],
        counts["waiting"],
        counts["rejected"],
        tuple(reasons[:REASONS_KEPT]),
    )


def parts(ids: Sequence[Any]) -> Iterator[Sequence[Any]]:
    """``ids`` in runs short enough for one ``IN`` list each."""
    for start in range(0, len(ids), IDS_PER_QUERY):
        yield ids[start : start + IDS_PER_QUERY]


def _values(loop: str, rid: str, row: PlannedRow, now: str, labelled_at: str) -> dict[str, Any]:
    # A null JSON value would be stored as JSON 'null', not SQL NULL: leave the key out.
    values: dict[str, Any] = {"loop": loop, "record_id": rid, "ingested_at": now}
    values["event_time"] = row.event_time
    if row.features is not None:
        values["features"] = row.features
    if row.label is not None:
        values["label"] = row.label
        values["labelled_at"] = labelled_at
    return values


def _stored(conn: Connection, loop: str, ids: list[str]) -> dict[str, tuple[int, bool, Any]]:
    """(sequence, has features, label) of the ids ``loop`` already holds."""
    found: dict[str, tuple[int, bool, Any]] = {}
    query = sa.select(_T.record_id, _T.seq, _T.features.is_not(None), _T.label)
    for part in parts(ids):
        selected = query.where(_T.loop == loop, _T.record_id.in_(part))
        for rid, seq, has_features, label in conn.execute(selected):
            found[rid] = (seq, bool(has_features), label)
    return found


def _insert(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert in order, one statement per run of rows with the same columns."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(loop_records).on_conflict_do_nothing(
        index_elements=["loop", "record_id"]
    )
    run: list[dict[str, Any]] = []
    for values in rows:
        if run and values.keys() != run[0].keys():
            conn.execute(statement, run)
            run = []
        run.append(values)
    if run:
        conn.execute(statement, run)
