"""The inbox's reading SQL: records in sequence, labels in label order, training windows.

Label order. :func:`labels_after` pages by the key ``(labelled_at, seq)``, the columns of
the index ``(loop, labelled_at, seq)``, so each page is one index range scan however many
labels a loop holds. ``labelled_at`` is the writer's clock read before it commits, so a
slow transaction can commit a time older than one a reader has already passed; readers
give a ``cutoff`` some seconds before now, and rows labelled after it wait for the next
read (see :meth:`mlgate.loop.inbox.Inbox.labelled_since`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mlgate.loop._inbox_plan import time_text
from mlgate.loop._inbox_read import times_of
from mlgate.loop._inbox_write import parts
from mlgate.loop.window import WindowPolicy, select_rows
from mlgate.store.schema import loop_records

__all__ = ["label_watermark", "labels_after", "records", "trainable", "window_rows"]

_T = loop_records.c


def records(loop: str, *extra: sa.ColumnElement[Any]) -> sa.Select[Any]:
    """Rows of ``loop`` that have features (label-only rows are not records yet)."""
    columns = (_T.seq, _T.record_id, _T.features, _T.label, _T.event_time, *extra)
    return sa.select(*columns).where(_T.loop == loop, _T.features.is_not(None))


def trainable(loop: str) -> sa.Select[Any]:
    """Labelled records no failed data check set aside: what training may read."""
    return records(loop).where(_T.label.is_not(None), _T.quarantined_by.is_(None))


def labels_after(
    loop: str, after: tuple[str, int] | None, cutoff: str, limit: int
) -> sa.Select[Any]:
    """Labelled records (quarantined too) after ``after`` in ``(labelled_at, seq)`` order."""
    query = records(loop, _T.labelled_at).where(_T.label.is_not(None), _T.labelled_at <= cutoff)
    if after is not None:
        mark = sa.tuple_(sa.literal(after[0]), sa.literal(int(after[1])))
        query = query.where(sa.tuple_(_T.labelled_at, _T.seq) > mark)
    return query.order_by(_T.labelled_at, _T.seq).limit(max(0, limit))


def label_watermark(loop: str) -> sa.Select[Any]:
    """``(labelled_at, seq)`` of the newest labelled record, the last key of the index."""
    return (
        sa.select(_T.labelled_at, _T.seq)
        .where(
            _T.loop == loop,
            _T.features.is_not(None),
            _T.label.is_not(None),
            _T.labelled_at.is_not(None),
        )
        .order_by(_T.labelled_at.desc(), _T.seq.desc())
        .limit(1)
    )


def window_rows(
    conn: Connection, loop: str, policy: WindowPolicy, moment: float, seed: int, after_seq: int = 0
) -> list[Any]:
    """The trainable rows ``policy`` chooses at Unix time ``moment``, in sequence order.

    Only the chosen rows are loaded: ``recent`` reads the newest N, ``seconds`` the
    window's; with a reference sample, (sequence, time) pairs are read to choose on.
    """
    query = trainable(loop)
    if after_seq and not policy.reference:  # a reference sample wants the older rows
        query = query.where(_T.seq > after_seq)
    if policy.reference:
        keys = conn.execute(query.with_only_columns(_T.seq, _T.event_time)).all()
        seqs = np.array([k.seq for k in keys], dtype=np.int64)
        chosen = seqs[select_rows(seqs, times_of(keys), policy, moment, seed)].tolist()
        rows = [r for ids in parts(chosen) for r in conn.execute(query.where(_T.seq.in_(ids)))]
    elif policy.recent is not None:
        rows = list(conn.execute(query.order_by(_T.seq.desc()).limit(policy.recent)))
    else:
        assert policy.seconds is not None  # the policy's invariant
        start = time_text(moment - policy.seconds) or ""
        rows = list(conn.execute(query.where(_T.event_time >= start)))
    rows.sort(key=lambda row: int(row.seq))
    seqs = np.array([r.seq for r in rows], dtype=np.int64)
    # The SQL above and select_rows agree; running the rule on what was read keeps the
    # rule in one place (it is idempotent on its own choice).
    return [rows[i] for i in select_rows(seqs, times_of(rows), policy, moment, seed)]
