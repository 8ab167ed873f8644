"""The prediction log: written off the hot path, read by bandits and monitors.

Serving must never wait on the database, nor die with it. :meth:`PredictionLogWriter.record`
appends to a bounded in-memory queue in O(1) on the event loop; a background task writes
what is queued in batches (one ``executemany`` per batch, in a worker thread so the loop
keeps serving). A full queue, or a database that stays down, costs log records, counted,
never requests. The hot path only keeps references: payloads stay numpy arrays and the
time a float until the writer's thread encodes them (orjson, numpy-aware) and formats the
time, because converting on the event loop cost more than the rest of the router (measured
by bench/serving's profile). The log is lossy by design: it feeds monitoring and bandit statistics,
where a missing sample biases nothing. The audit trail is the ledger, not this.
Feedback and reading the log back live in :mod:`mlgate.serving.feedback`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
import sqlalchemy as sa

from mlgate.ledger.events import format_time
from mlgate.store.engine import Store
from mlgate.store.schema import prediction_log

__all__ = ["PredictionLogWriter", "PredictionRecord"]

logger = logging.getLogger(__name__)

# Column widths of the schema: PostgreSQL refuses a longer value, and one such record
# would fail its whole batch, so a record that does not fit is dropped alone.
_WIDTHS = {"request_id": 128, "endpoint": 128, "version": 64, "route": 256, "status": 16}


@dataclass(frozen=True, slots=True)
class PredictionRecord:
    """One answered (or refused) request, as the router saw it.

    ``status`` is "ok", "fallback", "error", "circuit_open" or "shed"; ``inputs`` and
    ``outputs`` map tensor names to numpy arrays or JSON-able values, or are None when
    nothing is logged.
    ``created_at`` is Unix time in seconds. Both are converted in the writer's thread.
    ``unit`` is the sticky key that chose the variant (a user id), so experiments can
    count users; ``context`` is the encoded context a contextual bandit pulled with.
    """

    request_id: str
    endpoint: str
    version: str
    route: str
    status: str
    shadow: bool
    inputs: Mapping[str, Any] | None
    outputs: Mapping[str, Any] | None
    latency_ms: float
    created_at: float
    unit: str | None = None
    context: tuple[float, ...] | None = None


class PredictionLogWriter:
    """Batches prediction records into the store from a background task.

    Counters are touched only on the event loop; the worker thread only converts and
    inserts. A failed batch is retried once, at the next flush, before newer records (so
    rows keep their order), then dropped; after a failure the writer waits a full interval
    instead of hammering a database that is down.
    """

    def __init__(
        self,
        store: Store,
        *,
        max_queue: int = 10_000,
        batch_size: int = 2_000,
        flush_interval_s: float = 0.5,
        on_drop: Callable[[int], None] | None = None,
    ) -> None:
        if max_queue < 1 or batch_size < 1 or not flush_interval_s > 0:
            raise ValueError(
                "max_queue and batch_size must be at least 1 and flush_interval_s above 0, "
                f"got {max_queue}, {batch_size}, {flush_interval_s}"
            )
        self._store = store
        self._max_queue = max_queue
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._on_drop = on_drop
        self._queue: deque[PredictionRecord] = deque()
        self._retry: list[PredictionRecord] | None = None
        # Events are made in start(), on the loop that will wait on them.
        self._wake: asyncio.Event | None = None
        self._stop: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._dropped = 0
        self._written = 0
        self._insert_rows = _insert_statement(store)

    @property
    def dropped(self) -> int:
        """Records lost so far: queue full, closed, unfit for the schema, or failed twice."""
        return self._dropped

    @property
    def written(self) -> int:
        return self._written

    def record(self, record: PredictionRecord) -> bool:
        """Queue ``record`` without blocking; False when it had to be dropped instead."""
        if self._closing or len(self._queue) >= self._max_queue:
            self._drop(1)
            return False
        self._queue.append(record)
        if len(self._queue) >= self._batch_size and self._wake is not None:
            self._wake.set()
        return True

    async def start(self) -> None:
        if self._task is not None or self._closing:
            raise RuntimeError("a PredictionLogWriter starts once, before close()")
        self._wake, self._stop = asyncio.Event(), asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="mlgate-prediction-log")

    async def close(self) -> None:
        """Stop taking records, write (or finally drop) everything queued, then stop."""
        self._closing = True
        if self._task is None:
            await self._drain()
            return
        assert self._wake is not None and self._stop is not None
        self._stop.set()
        self._wake.set()
        await self._task

    async def _run(self) -> None:
        assert self._wake is not None and self._stop is not None
        healthy = True
        while not self._closing:
            # A full batch wakes a healthy writer early; a failing one waits out the interval.
            event = self._wake if healthy else self._stop
            woken = True
            try:
                await asyncio.wait_for(event.wait(), self._flush_interval_s)
            except TimeoutError:
                woken = False
            self._wake.clear()
            healthy = await self._flush_once(whole_batches=woken and not self._closing)
        await self._drain()

    async def _drain(self) -> None:
        # Ends: every pass writes, parks or drops at least one batch, and nothing new queues.
        while self._queue or self._retry is not None:
            await self._flush_once()

    async def _flush_once(self, *, whole_batches: bool = False) -> bool:
        """Write the parked batch, then queued ones, until empty or a write fails.

        Woken by a full batch, only whole batches go: draining the queue to the last record
        each time wrote, under steady load, one full batch and then a tail of ever smaller
        ones (140 records a transaction on average at 3,500 records/s), and the writer's
        CPU per record, taken from the serving loop through the GIL, falls from about 30 us
        at 140 records a transaction to 16-20 us at 2,000 (SQLite, one or two processes
        writing one file). The rest rides in the next full batch or goes when the interval
        ends, whichever comes first.
        """
        if self._retry is not None:
            batch, self._retry = self._retry, None
            if not await self._write(batch, retrying=True):
                self._drop(len(batch))
                return False
        while self._queue and (not whole_batches or len(self._queue) >= self._batch_size):
            size = min(self._batch_size, len(self._queue))
            batch = [self._queue.popleft() for _ in range(size)]
            if not await self._write(batch, retrying=False):
                self._retry = batch
                return False
        return True

    async def _write(self, batch: list[PredictionRecord], *, retrying: bool) -> bool:
        try:
            rejected = await asyncio.to_thread(self._insert, batch)
        except Exception as exc:  # any failure: the serving process must outlive the database
            logger.warning(
                "writing %d prediction log records to %s failed (%s); %s",
                len(batch),
                self._store.url,
                _describe(exc),
                "dropping them" if retrying else "will retry once",
            )
            return False
        if rejected:
            logger.warning(
                "dropped %d prediction log records that do not fit the table (an id or name "
                "too long or not a string)",
                rejected,
            )
            self._drop(rejected)
        self._written += len(batch) - rejected
        return True

    def _insert(self, batch: list[PredictionRecord]) -> int:
        """Worker thread: one executemany in one write transaction; returns records rejected.

        Converting records is pure Python, so it holds the GIL; a request on the event loop
        that needs the GIL meanwhile waits until this thread lets go, which CPython forces
        only after a 5 ms switch interval. Letting go every ``_YIELD_EVERY`` records (about
        0.2 ms of work) bounds that wait instead.
        """
        rows: list[tuple[Any, ...]] = []
        for start in range(0, len(batch), _YIELD_EVERY):
            if start:
                time.sleep(0)  # releases the GIL: a waiting event loop takes it now
            for record in batch[start : start + _YIELD_EVERY]:
                row = _to_row(record)
                if row is not None:
                    rows.append(row)
        if rows:
            with self._store.write() as conn:
                conn.exec_driver_sql(self._insert_rows, rows)
        return len(batch) - len(rows)

    def _drop(self, count: int) -> None:
        self._dropped += count
        if self._on_drop is not None:
            try:
                self._on_drop(count)
            except Exception:  # a broken metrics hook must not break serving
                logger.exception("the prediction log's on_drop callback failed")


_ROW_COLUMNS = (
    "request_id",
    "endpoint",
    "version",
    "route",
    "status",
    "shadow",
    "inputs",
    "outputs",
    "latency_ms",
    "created_at",
    "unit",
    "context",
)


_JSON_COLUMNS = ("inputs", "outputs", "context")
_YIELD_EVERY = 32  # records converted between two releases of the GIL


def _insert_statement(store: Store) -> str:
    """The driver-level insert, taking row tuples with payloads already JSON text.

    The writer's thread shares the GIL with the event loop, so every microsecond of
    Python it spends per row is taken from requests: SQLAlchemy's per-row parameter
    processing and sa.JSON's json.dumps are skipped for one orjson call and the
    driver's own executemany (which binds in C and steps with the GIL released).
    PostgreSQL will not take text for a json column implicitly, hence the cast there.
    """
    columns = ", ".join(_ROW_COLUMNS)
    if store.engine.dialect.name == "postgresql":
        marks = ", ".join("%s::json" if c in _JSON_COLUMNS else "%s" for c in _ROW_COLUMNS)
    else:
        marks = ", ".join("?" for _ in _ROW_COLUMNS)
    return f"INSERT INTO {prediction_log.name} ({columns}) VALUES ({marks})"


def _to_row(record: PredictionRecord) -> tuple[Any, ...] | None:
    """The insert parameters of ``record`` (in ``_ROW_COLUMNS`` order), or None if unfit."""
    names = [getattr(record, key) for key in _WIDTHS]
    for key, value in zip(_WIDTHS, names, strict=True):
        if not isinstance(value, str) or len(value) > _WIDTHS[key]:
            return None
    if not record.request_id:
        return None
    try:
        latency_ms = float(record.latency_ms)
        created_at = format_time(datetime.fromtimestamp(float(record.created_at), UTC))
    except (TypeError, ValueError, OverflowError, OSError):
        return None
    return (
        *names,
        bool(record.shadow),
        _encode_payload(record.inputs),
        _encode_payload(record.outputs),
        latency_ms,
        created_at,
        record.unit[:128] if isinstance(record.unit, str) else None,
        None if record.context is None else orjson.dumps(list(record.context)).decode(),
    )


def _encode_payload(payload: Mapping[str, Any] | None) -> str | None:
    """The payload as strict JSON text, or None ("not logged") when it cannot be.

    Non-finite numbers become ``null`` (orjson's rule; PostgreSQL's json type refuses NaN),
    which readers treat as a missing value, as they should. BYTES tensors are logged as
    UTF-8 text; a payload with anything else unencodable keeps its row, without payload,
    so the request still counts for bandits and monitoring.
    """
    if payload is None:
        return None
    try:
        return orjson.dumps(
            payload, default=_json_default, option=orjson.OPT_SERIALIZE_NUMPY
        ).decode()
    except (TypeError, orjson.JSONEncodeError):
        return None


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):  # dtypes orjson does not take natively (object, float16)
        return value.tolist()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _describe(exc: BaseException) -> str:
    """One line naming the failure, never SQLAlchemy's rendering of the bound parameters."""
    if isinstance(exc, sa.exc.StatementError):  # its str() lists the parameters: payloads
        if exc.orig is None:
            return type(exc).__name__
        exc = exc.orig
    text = " ".join(part.strip() for part in str(exc).splitlines() if part.strip())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
