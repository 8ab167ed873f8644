"""Planning one inbox batch: each record id's row as the batch leaves it, before any SQL.

Pure apart from hashing: a :class:`~mlgate.monitoring.stream.StreamBatch` goes in, one
:class:`PlannedRow` per record id comes out (repeats within the batch merged, the first
features and the first label winning), with what was refused and why. The rules for ids,
times and JSON values live here; :mod:`mlgate.loop.inbox` documents them for users.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mlgate.ledger.events import format_time
from mlgate.monitoring.stream import RecordKeys, StreamBatch

__all__ = [
    "REASONS_KEPT",
    "IngestResult",
    "PlannedRow",
    "fill_records",
    "flip_reason",
    "plan_batch",
    "same_label",
    "time_text",
]

REASONS_KEPT = 5


@dataclass(frozen=True)
class IngestResult:
    """What one ingest did: records new and repeated, labels joined or waiting, refusals.

    ``duplicates`` counts records and labels already known: a labelled record sent twice
    counts two (its record and its label), and neither is stored again.
    """

    accepted: int = 0
    duplicates: int = 0
    labels_applied: int = 0
    labels_waiting: int = 0
    rejected: int = 0
    reasons: tuple[str, ...] = ()

    def __add__(self, other: IngestResult) -> IngestResult:
        summed = {f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        return IngestResult(**{**summed, "reasons": summed["reasons"][:REASONS_KEPT]})

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "reasons": list(self.reasons)}


@dataclass
class PlannedRow:
    """One record id's planned state within a batch, after merging repeats in the batch."""

    features: dict[str, Any] | None
    label: Any
    event_time: str


def fill_records(
    records: Sequence[object], keys: RecordKeys, columns: Sequence[str], now: float, token: str
) -> list[object]:
    """Records with a ``time`` (``now`` where missing) and an id (``token`` + index).

    :func:`~mlgate.monitoring.stream.decode_records` drops every id (and time) of a batch
    where one is missing, so records without a time get the ingestion time, and records
    without an id a one-off placeholder that :func:`plan_batch` replaces by their content
    hash.
    """
    named: list[object] = []
    for index, record in enumerate(records):
        if isinstance(record, Mapping):
            fill: dict[str, object] = {}
            if record.get(keys.time) is None:
                fill[keys.time] = now
            if record.get(keys.request_id) in (None, "") and any(
                name in record for name in columns
            ):
                fill[keys.request_id] = f"{token}{index}"
            record = {**record, **fill} if fill else record
        named.append(record)
    return named


def plan_batch(
    batch: StreamBatch, now: str, placeholder: str | None
) -> tuple[dict[str, PlannedRow], IngestResult]:
    """Each record id's row as this batch leaves it (repeats merged), and what was refused.

    ``placeholder`` prefixes the one-off ids :meth:`Inbox.ingest` gives records without a
    ``request_id``: such a record is keyed by its content hash instead.
    """
    rows: dict[str, PlannedRow] = {}
    duplicates = 0
    reasons: list[str] = []
    ids = batch.request_ids
    final: dict[str, str | None] = {}  # a placeholder or empty id -> the record's id
    for i in range(batch.n_records):
        given = ids[i] if ids is not None else ""
        rid: str | None = None
        try:
            features = {name: _json_value(column[i]) for name, column in batch.frame.items()}
            unnamed = not given or bool(placeholder and given.startswith(placeholder))
            rid = _content_id(features) if unnamed else _checked_id(given)
            event_time = _event_time(batch.times, i, now)
        except ValueError as exc:
            reasons.append(f"record {given or i}: {exc}")
            rid = None
        final[given or f"\x00{i}"] = rid
        if rid is None:
            continue
        if rid in rows:
            duplicates += 1
        else:
            rows[rid] = PlannedRow(features, None, event_time)
    labels = batch.labels
    # A file's label column comes row by row with the rows' ids, empty ones included.
    aligned = labels is not None and ids is not None and labels.request_ids == ids
    for j, (given, value) in enumerate(
        zip(labels.request_ids, labels.labels, strict=True) if labels is not None else ()
    ):
        key = f"\x00{j}" if not given and aligned else given
        if key in final and (not given or (placeholder and given.startswith(placeholder))):
            found = final[key]
            if found is None:
                continue  # its record was refused, and counted, already
            given = found
        try:
            label = _json_label(value)
            if label is None:
                continue  # a null or NaN label cell: no label
            if not given:
                raise ValueError("a label needs the request_id of its record")
            rid = _checked_id(given)
            event_time = _event_time(labels.times if labels is not None else None, j, now)
        except ValueError as exc:
            reasons.append(f"label {given or j}: {exc}")
            continue
        row = rows.get(rid)
        if row is None:
            rows[rid] = PlannedRow(None, label, event_time)
        elif row.label is None:
            row.label = label
        elif not same_label(row.label, label):
            reasons.append(flip_reason(rid, label, row.label))
        else:
            duplicates += 1
    refused = IngestResult(duplicates=duplicates, rejected=len(reasons), reasons=tuple(reasons))
    return rows, refused


def same_label(a: Any, b: Any) -> bool:
    """Equal labels: 1 and 1.0 are, 1 and True or 1 and "1" are not."""
    kinds = (isinstance(a, bool), isinstance(a, str)), (isinstance(b, bool), isinstance(b, str))
    return kinds[0] == kinds[1] and bool(a == b)


def flip_reason(rid: str, label: Any, stored: Any) -> str:
    return (
        f"label {label!r:.40} for record {rid!r} differs from its label {stored!r:.40}; a label "
        "is never overwritten (send a relabelled record under a new request_id)"
    )


def time_text(stamp: float) -> str | None:
    """Fixed-width RFC 3339 text of Unix seconds; None outside the years 1000 to 9999."""
    try:
        moment = datetime.fromtimestamp(stamp, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return format_time(moment) if 1000 <= moment.year <= 9999 else None


def _checked_id(rid: str) -> str:
    if len(rid) > 128:
        raise ValueError(f"request_id {rid[:40]!r}... is longer than 128 characters")
    return rid


def _content_id(features: Mapping[str, Any]) -> str:
    """``sha256:`` of the canonical JSON of the non-missing values (1.0 written as 1)."""
    canonical = {
        name: int(v) if isinstance(v, float) and v.is_integer() else v
        for name, v in features.items()
        if v is not None
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _event_time(times: NDArray[np.float64] | None, i: int, now: str) -> str:
    stamp = math.nan if times is None else float(times[i])
    if math.isnan(stamp):
        return now
    text = time_text(stamp)
    if text is None:
        raise ValueError(f"time {stamp} is outside the years 1000 to 9999")
    return text


def _json_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None  # JSON has no NaN: stored as missing
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r:.60} is not a JSON value") from None
    return value


def _json_label(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    if not isinstance(value, str | bool | int | float):
        raise ValueError(f"label {value!r:.60} is not a string, number or bool")
    return value
