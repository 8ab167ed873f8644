"""``POST /v2/loops/{loop}/records``: records and labels for a retraining loop, over HTTP.

The body is ``{"records": [flat JSON objects], "columns": {name: "numeric" | "categorical"}}``
(``columns`` optional); each record is what :meth:`mlgate.loop.inbox.Inbox.ingest` takes:
feature values plus the reserved ``request_id``, ``time`` and ``label``. A record with only
``request_id`` and ``label`` is a label for an earlier record. With ``columns``, only those
columns are kept, checked against their kind; without, every other key is kept as sent.
The answer is the :class:`~mlgate.loop.inbox.IngestResult`: repeats (an HTTP client's retry
included) are counted as duplicates, never stored twice, so a retry is always safe.

The loop need not be configured anywhere: the inbox is keyed by the loop's name, and the
loop that reads it names it. Writing training data is a deployer's act (records steer what
the next model learns), so the route needs a bearer token of role deployer, as the admin
routes do.

Backpressure: at most ``max_concurrent`` ingests write at once per process; one more is
refused at once with 503 and ``Retry-After: 1`` rather than queued, so a burst of clients
cannot pile up threads behind the store's write lock. At most 10,000 records a request
(413 beyond, as for a body over the server's byte limit).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from mlgate.errors import (
    InvalidRequestError,
    LoopConfigError,
    OverloadedError,
    PayloadTooLargeError,
)
from mlgate.loop.inbox import MAX_BATCH, Inbox
from mlgate.monitoring._columns import FEATURE_KINDS, FeatureKind
from mlgate.monitoring.stream import RecordKeys
from mlgate.workspace import Workspace

__all__ = ["install_loop_ingest_routes"]

Guard = Callable[[Callable[[], Awaitable[Response]]], Awaitable[Response]]
MAX_CONCURRENT = 2
_FIELDS = {"records", "columns"}
_SHAPE = '{"records": [{"request_id": ..., "x": ..., "label": ...}, ...], "columns": {...}}'


class _Writers:
    """How many ingests are writing now; the event loop is one thread, so no lock."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0

    def enter(self) -> None:
        if self.active >= self.limit:
            raise OverloadedError(
                f"{self.active} ingests are being written already; retry in a second",
                retry_after_s=1.0,
                reason="overload",
            )
        self.active += 1

    def leave(self) -> None:
        self.active -= 1


def install_loop_ingest_routes(
    app: FastAPI,
    *,
    workspace: Callable[[], Workspace],
    require: Callable[[Request, str], str],
    read_body: Callable[[Request], Awaitable[bytes]],
    guard: Guard,
    respond: Callable[[Any], Response],
    max_concurrent: int = MAX_CONCURRENT,
) -> None:
    """Add ``POST /v2/loops/{loop}/records`` to ``app``."""
    writers = _Writers(max_concurrent)

    @app.post("/v2/loops/{loop}/records", tags=["loops"])
    async def ingest_loop_records(request: Request, loop: str) -> Response:
        async def work() -> Response:
            require(request, "deployer")
            ws = workspace()
            try:
                inbox = Inbox(ws.store, loop, clock=ws.clock)
            except LoopConfigError as exc:
                raise InvalidRequestError(str(exc)) from None
            records, wanted = parse_records(await read_body(request))
            writers.enter()
            try:
                result = await asyncio.to_thread(inbox.ingest, records, wanted)
            finally:
                writers.leave()
            return respond(result.to_json())

        return await guard(work)


def parse_records(
    body: bytes, keys: RecordKeys = RecordKeys()
) -> tuple[list[Any], dict[str, FeatureKind | None]]:
    """The records of a request body and the columns to keep; 400 or 413 if unusable."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(f"the body is not valid JSON ({exc}); send {_SHAPE}") from None
    if not isinstance(data, dict) or "records" not in data:
        raise InvalidRequestError(f"send a JSON object {_SHAPE}")
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise InvalidRequestError(f"unknown fields {unknown}; send {_SHAPE}")
    records = data["records"]
    if not isinstance(records, list):
        raise InvalidRequestError(f'"records" must be a list of objects, got {_kind(records)}')
    if len(records) > MAX_BATCH:
        raise PayloadTooLargeError(
            f"{len(records)} records in one request; send at most {MAX_BATCH} per request"
        )
    columns = data.get("columns")
    if columns is None:
        names = {k for r in records if isinstance(r, dict) for k in r} - keys.reserved()
        return records, dict.fromkeys(sorted(names))
    if not isinstance(columns, dict) or not all(
        isinstance(kind, str) and kind in FEATURE_KINDS for kind in columns.values()
    ):
        raise InvalidRequestError(
            '"columns" must map column names to "numeric" or "categorical", e.g. '
            '{"x": "numeric", "country": "categorical"}'
        )
    reserved = sorted(set(columns) & keys.reserved())
    if reserved:
        raise InvalidRequestError(f"{reserved} are reserved keys, not columns")
    return records, dict(columns)


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__
