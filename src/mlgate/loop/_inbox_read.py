"""Turning stored inbox rows into arrays: slices for the monitors, frames for training.

Rows come from SQL with ``seq``, ``record_id``, ``features`` (a JSON object), ``label`` and
``event_time``; everything here is pure. A column is float64 (NaN where missing) when every
value is a number or missing, an object array otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mlgate.loop.frame import TrainingFrame

__all__ = ["InboxCounts", "InboxSlice", "columns_of", "frame_of", "slice_of", "times_of"]


@dataclass(frozen=True)
class InboxCounts:
    records: int  # rows with features
    labelled: int  # rows with features and a label (quarantined ones included)
    label_only: int  # labels waiting for their record
    quarantined: int = 0  # rows with features a failed data check set aside

    @property
    def unlabelled(self) -> int:
        return self.records - self.labelled

    def to_json(self) -> dict[str, int]:
        return {**asdict(self), "unlabelled": self.unlabelled}


@dataclass(frozen=True)
class InboxSlice:
    """Records read in order, with ``last_seq`` the sequence number of the last one.

    From :meth:`~mlgate.loop.inbox.Inbox.after` ``last_seq`` is where the next read starts
    (the ``seq`` given when nothing was read); from
    :meth:`~mlgate.loop.inbox.Inbox.labelled_since`, which orders by label time, it is the
    sequence number of the returned watermark (0 when there is none).
    """

    columns: dict[str, NDArray[Any]]
    record_ids: tuple[str, ...]
    seqs: NDArray[np.int64]
    times: NDArray[np.float64]
    labels: NDArray[Any]  # object, None where unlabelled
    last_seq: int

    def __len__(self) -> int:
        return len(self.record_ids)


def slice_of(
    rows: Sequence[Any], names: Sequence[str], last_seq: int, *, others: bool = True
) -> InboxSlice:
    """A slice of ``rows`` with the columns ``names``, each one present, then (``others``)
    any other column a row has."""
    labels = np.empty(len(rows), dtype=object)
    labels[:] = [r.label for r in rows]
    stored = [r.features for r in rows]
    found = [name for row in stored for name in row] if others else []
    return InboxSlice(
        columns=columns_of(stored, list(dict.fromkeys([*names, *found]))),
        record_ids=tuple(r.record_id for r in rows),
        seqs=np.array([r.seq for r in rows], dtype=np.int64),
        times=times_of(rows),
        labels=labels,
        last_seq=last_seq,
    )


def times_of(rows: Sequence[Any]) -> NDArray[np.float64]:
    """Event times as Unix seconds."""
    return np.array(
        [datetime.fromisoformat(row.event_time).timestamp() for row in rows], dtype=np.float64
    )


def columns_of(
    features: Sequence[Mapping[str, Any]], names: Sequence[str]
) -> dict[str, NDArray[Any]]:
    """The columns ``names`` of stored feature dicts; one no row has is all NaN (float64)."""
    out: dict[str, NDArray[Any]] = {}
    for name in names:
        values = [row.get(name) for row in features]
        if all(
            v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in values
        ):
            out[name] = np.array([math.nan if v is None else v for v in values], dtype=np.float64)
        else:
            out[name] = np.empty(len(values), dtype=object)
            out[name][:] = values
    return out


def frame_of(rows: Sequence[Any], features: Sequence[str], columns: Sequence[str]) -> TrainingFrame:
    """A training frame of labelled rows, in the order given."""
    names = list(dict.fromkeys([*features, *columns]))
    stored = [row.features for row in rows]
    if rows:  # a column no row has stays absent, so a mistyped feature is reported by name
        names = [name for name in names if any(name in row for row in stored)]
    return TrainingFrame(
        columns=columns_of(stored, names),
        labels=_labels([row.label for row in rows]),
        features=tuple(features),
        record_ids=tuple(row.record_id for row in rows),
        seqs=np.array([row.seq for row in rows], dtype=np.int64),
        times=times_of(rows),
    )


def _labels(values: list[Any]) -> NDArray[Any]:
    """int64 when every label is an integer, float64 when a number, objects otherwise."""
    numbers_only = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    if values and numbers_only:
        dtype = np.int64 if all(isinstance(v, int) for v in values) else np.float64
        try:
            return np.array(values, dtype=dtype)
        except OverflowError:
            pass
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out
