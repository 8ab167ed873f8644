"""Where records come from: a frame here, a file (:mod:`.file_source`), the serving
prediction log (:mod:`.predlog_source`) or a Redis stream (:mod:`.redis_source`), all
through one port.

``read(max_records)`` returns the next batch: an empty batch when nothing new has arrived
yet (a live source), None when the source is exhausted (the end of a file). A batch may
hold no record yet not be idle: the prediction log skips rows (other statuses, shadows,
other versions) and every source rejects malformed ones, so a batch says how many rows or
entries it ``consumed``; only a batch that consumed nothing is idle. ``commit()`` says the
last batch was processed: the prediction log then advances its cursor, Redis acknowledges
the entries. A crash between the two replays the batch (at least once).

Positions live in memory only: they are not kept across restarts. A restarted monitor
starts again from the beginning of the prediction log (or, with ``--tail``, from its end)
and from a Redis consumer's pending entries; alarms of a replayed stretch are raised, and
ledgered, again (duplicates of the first run's entries).

Flat records (a file's rows, a Redis entry's JSON object) use reserved keys
(:class:`RecordKeys`): ``request_id``, ``time`` (Unix seconds or RFC 3339), ``label`` and
``version``; every other key is a column. A record with a label but no column of any
profile is a *label event* (the label of an earlier prediction, for concept drift); a
record with both is a prediction whose label came with it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from mlgate.monitoring._columns import FeatureKind
from mlgate.monitoring.stream._decode import (
    RecordKeys,
    Rejections,
    column_array,
    parse_time,
)

__all__ = [
    "FrameSource",
    "LabelBatch",
    "RecordKeys",
    "StreamBatch",
    "StreamSource",
    "decode_records",
]

Wanted = Mapping[str, FeatureKind | None]


@dataclass(frozen=True, slots=True)
class LabelBatch:
    """Labels that arrived, keyed by request id (``rid`` or ``rid#i`` for row i of a request)."""

    request_ids: list[str]
    labels: list[Any]
    times: NDArray[np.float64] | None = None


@dataclass(frozen=True, slots=True)
class StreamBatch:
    """A batch of records: columns, and per record its id, time and model version if known."""

    frame: dict[str, NDArray[Any]]
    n_records: int
    request_ids: list[str] | None = None
    times: NDArray[np.float64] | None = None
    versions: list[str] | None = None
    labels: LabelBatch | None = None
    rejected: int = 0
    reasons: tuple[str, ...] = ()
    extra: Mapping[str, int] = field(default_factory=dict)  # source-specific counters
    consumed: int | None = None  # rows/entries read for this batch; None: records + rejected

    @property
    def n_consumed(self) -> int:
        """Rows or entries the source read for this batch (kept, skipped or rejected)."""
        if self.consumed is not None:
            return self.consumed
        labels = 0 if self.labels is None else len(self.labels.request_ids)
        return self.n_records + self.rejected + labels

    @property
    def idle(self) -> bool:
        """Nothing was read: a live source has nothing new (skipped rows are not idle)."""
        return self.n_consumed == 0 and self.labels is None


@runtime_checkable
class StreamSource(Protocol):
    def read(self, max_records: int) -> StreamBatch | None: ...

    def commit(self) -> None: ...

    def close(self) -> None: ...


def decode_records(
    records: Sequence[Any], wanted: Wanted, keys: RecordKeys = RecordKeys()
) -> StreamBatch:
    """Flat JSON records into a batch (see the module docstring); malformed ones rejected."""
    rejections = Rejections()
    values: dict[str, list[Any]] = {name: [] for name in wanted}
    ids: list[str] = []
    times: list[float] = []
    versions: list[str] = []
    label_ids_: list[str] = []
    label_values: list[Any] = []
    label_times: list[float] = []
    has_ids = has_times = has_versions = True
    columns = [name for name in wanted if name not in keys.reserved()]
    for index, record in enumerate(records):
        if not isinstance(record, Mapping):
            rejections.add(f"record {index} is {type(record).__name__}, not a JSON object")
            continue
        rid = record.get(keys.request_id)
        stamp = parse_time(record.get(keys.time)) if keys.time in record else None
        if keys.time in record and stamp is None:
            rejections.add(f"record {index}: time {record.get(keys.time)!r} is not a time")
            continue
        is_prediction = any(name in record for name in columns)
        if keys.label in record:
            if rid is None:
                rejections.add(f"record {index} has a label but no {keys.request_id}")
                continue
            label_ids_.append(str(rid))
            label_values.append(record[keys.label])
            label_times.append(math.nan if stamp is None else stamp)
        if not is_prediction:
            continue
        try:
            row = {name: _checked(record.get(name), kind) for name, kind in wanted.items()}
        except TypeError as exc:
            rejections.add(f"record {index}: {exc}")
            continue
        for name, value in row.items():
            values[name].append(value)
        has_ids = has_ids and rid is not None
        ids.append("" if rid is None else str(rid))
        has_times = has_times and stamp is not None
        times.append(math.nan if stamp is None else stamp)
        version = record.get(keys.version)
        has_versions = has_versions and version is not None
        versions.append("" if version is None else str(version))
    n = len(ids)
    frame = {name: column_array(column, wanted[name]) for name, column in values.items()}
    labels = None
    if label_ids_:
        stamps = np.array(label_times)
        labels = LabelBatch(label_ids_, label_values, None if np.isnan(stamps).any() else stamps)
    return StreamBatch(
        frame=frame,
        n_records=n,
        request_ids=ids if n and has_ids else None,
        times=np.array(times) if n and has_times else None,
        versions=versions if n and has_versions else None,
        labels=labels,
        rejected=rejections.count,
        reasons=tuple(rejections.reasons),
        consumed=len(records),
    )


def _checked(value: Any, kind: FeatureKind | None) -> Any:
    """The value if it fits the column's kind; TypeError naming the problem if not."""
    if value is None or kind is None:
        return value
    if kind == "numeric":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"{value!r} ({type(value).__name__}) where a number was expected")
        return value
    if isinstance(value, str | bool | int) or (isinstance(value, float) and value.is_integer()):
        return value
    raise TypeError(f"{value!r} ({type(value).__name__}) where a category was expected")


class FrameSource:
    """An in-memory frame fed in chunks (tests, notebooks, the benchmark)."""

    def __init__(
        self,
        frame: Mapping[str, Any],
        *,
        times: Sequence[float] | None = None,
        request_ids: Sequence[str] | None = None,
    ) -> None:
        self._frame = {name: np.asarray(column) for name, column in frame.items()}
        lengths = {len(c) for c in self._frame.values()}
        self._n = lengths.pop() if lengths else 0
        self._times = None if times is None else np.asarray(times, dtype=np.float64)
        self._ids = None if request_ids is None else [str(r) for r in request_ids]
        self._pos = 0

    def read(self, max_records: int) -> StreamBatch | None:
        if self._pos >= self._n:
            return None
        a, b = self._pos, min(self._pos + max_records, self._n)
        self._pos = b
        return StreamBatch(
            frame={name: column[a:b] for name, column in self._frame.items()},
            n_records=b - a,
            request_ids=None if self._ids is None else self._ids[a:b],
            times=None if self._times is None else self._times[a:b],
            consumed=b - a,
        )

    def commit(self) -> None:
        """Nothing to acknowledge."""

    def close(self) -> None:
        """Nothing to release."""
