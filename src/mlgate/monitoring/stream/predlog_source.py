"""The serving prediction log as a stream: inputs, outputs and (optionally) feedback labels.

Rows are polled by id (``read_predictions(since_id=...)``), so the monitor sees every row
once and in order, and the cursor moves only on :meth:`PredictionLogSource.commit`. The
cursor lives in memory: it is not kept across restarts, so a new source starts at
``since_id`` (0, the whole log, unless the caller starts at the tail). A batch reports the
rows it ``consumed``, skipped ones included, so a stretch of rows that are all skipped is
read through at once rather than taken for an idle log. Each
row is one request; a request of n rows gives n records, with ids ``rid`` (n = 1) or
``rid#i``. Feedback labels are read by id from the feedback table the same way; a label
that is a list labels the request's rows in order, anything else the whole request.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import sqlalchemy as sa
from numpy.typing import NDArray

from mlgate.monitoring.stream._decode import ColumnParts, Rejections, TensorDecoder, parse_time
from mlgate.monitoring.stream.sources import LabelBatch, StreamBatch
from mlgate.serving.feedback import read_predictions
from mlgate.store.engine import Store
from mlgate.store.schema import feedback, prediction_log

__all__ = ["PredictionLogSource", "label_ids", "row_ids"]

_SERVED = ("ok", "fallback")
_MAX_ROWS = 10_000


def row_ids(request_id: str, n: int) -> list[str]:
    """Record ids of a request of n rows: the id itself for one row, ``id#i`` otherwise."""
    return [request_id] if n == 1 else [f"{request_id}#{i}" for i in range(n)]


def label_ids(request_id: str, label: Any) -> tuple[list[str], list[Any]]:
    """A feedback label as per-record labels: a list labels each row, anything else the request."""
    if isinstance(label, list):
        return row_ids(request_id, len(label)), list(label)
    return [request_id], [label]


class PredictionLogSource:
    """An endpoint's prediction log (and, with ``labels``, its feedback labels), polled.

    Only served rows (status ok or fallback) are read, shadow calls only if
    ``include_shadow`` (they repeat the primary's inputs). Inputs and outputs are decoded
    into the wanted columns by :class:`TensorDecoder` s; a row that does not decode is
    rejected, counted, and skipped. ``version`` restricts the rows to one model version.
    """

    def __init__(
        self,
        store: Store,
        endpoint: str,
        *,
        inputs: TensorDecoder,
        outputs: TensorDecoder | None = None,
        labels: bool = False,
        version: str | None = None,
        include_shadow: bool = False,
        since_id: int = 0,
        labels_since_id: int = 0,
    ) -> None:
        self._store = store
        self.endpoint = endpoint
        self._inputs = inputs
        self._outputs = outputs
        self._labels = labels
        self._version = version
        self._include_shadow = include_shadow
        self.since_id = since_id
        self.labels_since_id = labels_since_id
        self._next = (since_id, labels_since_id)

    @classmethod
    def latest_ids(cls, store: Store, endpoint: str) -> tuple[int, int]:
        """The newest prediction and feedback ids of an endpoint (to start at the tail)."""
        with store.read() as conn:
            p = conn.execute(
                sa.select(sa.func.max(prediction_log.c.id)).where(
                    prediction_log.c.endpoint == endpoint
                )
            ).scalar_one()
            f = conn.execute(
                sa.select(sa.func.max(feedback.c.id)).where(feedback.c.endpoint == endpoint)
            ).scalar_one()
        return int(p or 0), int(f or 0)

    def read(self, max_records: int) -> StreamBatch:
        limit = max(1, min(max_records, _MAX_ROWS))
        rows = read_predictions(self._store, self.endpoint, limit=limit, since_id=self.since_id)
        last_id = int(rows[-1]["id"]) if rows else self.since_id
        kept = [
            r
            for r in rows
            if r["status"] in _SERVED
            and (self._include_shadow or not r["shadow"])
            and (self._version is None or r["version"] == self._version)
        ]
        rejections = Rejections()
        frame, sizes, output_failures = self._decode(kept, rejections)
        ids: list[str] = []
        times: list[float] = []
        versions: list[str] = []
        for row, n in zip(kept, sizes, strict=True):
            if n < 0:
                continue
            ids.extend(row_ids(str(row["request_id"]), n))
            stamp = parse_time(row["created_at"])
            times.extend([math.nan if stamp is None else stamp] * n)
            versions.extend([str(row["version"])] * n)
        labels, last_label = self._read_labels(limit) if self._labels else (None, None)
        self._next = (last_id, self.labels_since_id if last_label is None else last_label)
        stamps = np.array(times, dtype=np.float64)
        return StreamBatch(
            frame=frame,
            n_records=len(ids),
            request_ids=ids,
            times=stamps if len(ids) and not np.isnan(stamps).any() else None,
            versions=versions,
            labels=labels,
            rejected=rejections.count,
            reasons=tuple(rejections.reasons),
            extra={
                "rows": len(rows),
                "skipped_rows": len(rows) - len(kept),
                "outputs_missing_rows": output_failures,
            },
            # skipped rows (other statuses, shadows, versions) are progress, not idleness
            consumed=len(rows) + (0 if labels is None else len(labels.request_ids)),
        )

    def _decode(
        self, rows: list[dict[str, Any]], rejections: Rejections
    ) -> tuple[dict[str, NDArray[Any]], list[int], int]:
        """Decode each row's inputs (a failure rejects the row) and outputs (a failure leaves
        the row's outputs missing, which the prediction monitor reports as such)."""
        parts = ColumnParts(
            {**self._inputs.wanted, **(self._outputs.wanted if self._outputs else {})}
        )
        sizes: list[int] = []
        output_failures = 0
        for row in rows:
            where = f"request {row['request_id']!r}"
            try:
                columns, n = self._inputs.decode_row(row["inputs"])
            except (TypeError, ValueError) as exc:
                rejections.add(f"{where}: inputs: {exc}")
                sizes.append(-1)
                continue
            if self._outputs is not None:
                try:
                    outputs, m = self._outputs.decode_row(row["outputs"])
                    if m != n:
                        raise TypeError(f"{m} output rows for {n} input rows")
                    columns = {**columns, **outputs}
                except (TypeError, ValueError) as exc:
                    output_failures += 1
                    rejections.add(f"{where}: outputs (left missing): {exc}", 0)
            parts.add(columns, n)
            sizes.append(n)
        return parts.frame(), sizes, output_failures

    def _read_labels(self, limit: int) -> tuple[LabelBatch | None, int | None]:
        query = (
            sa.select(feedback.c.id, feedback.c.request_id, feedback.c.label, feedback.c.created_at)
            .where(
                feedback.c.endpoint == self.endpoint,
                feedback.c.id > self.labels_since_id,
                feedback.c.label.is_not(None),
            )
            .order_by(feedback.c.id)
            .limit(limit)
        )
        with self._store.read() as conn:
            rows = conn.execute(query).all()
        if not rows:
            return None, None
        ids: list[str] = []
        labels: list[Any] = []
        times: list[float] = []
        for row in rows:
            row_ids_, row_labels = label_ids(str(row.request_id), row.label)
            ids.extend(row_ids_)
            labels.extend(row_labels)
            stamp = parse_time(row.created_at)
            times.extend([math.nan if stamp is None else stamp] * len(row_ids_))
        stamps = np.array(times, dtype=np.float64)
        batch = LabelBatch(ids, labels, None if np.isnan(stamps).any() else stamps)
        return batch, int(rows[-1].id)

    def commit(self) -> None:
        self.since_id, self.labels_since_id = self._next

    def close(self) -> None:
        """The store belongs to the caller."""
