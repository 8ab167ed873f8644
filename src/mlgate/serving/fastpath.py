"""A plain-ASGI path for inference requests, in front of the FastAPI app.

Measured by bench/serving: FastAPI and Starlette (middleware stack, route regex
matching, dependency solving, request objects) took about 45% of the event loop
per inference request, more than the inference path itself. Inference is the one
route where that matters, so its two paths are matched by hand here and handed
straight to the data plane; every other route (health, metadata, admin, the
OpenAPI document, where the inference routes are still described) goes through
FastAPI unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from mlgate.errors import DeadlineExceededError, OverloadedError, PayloadTooLargeError
from mlgate.serving.dataplane import OVERLOAD_ERROR, DataPlane
from mlgate.serving.http import error_body, error_headers, status_for

__all__ = ["InferenceFastPath", "read_body"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_JSON = (b"content-type", b"application/json")
_OVERLOAD = (status_for(OVERLOAD_ERROR), error_body(OVERLOAD_ERROR), error_headers(OVERLOAD_ERROR))


class InferenceFastPath:
    def __init__(
        self, app: ASGIApp, plane: Callable[[], DataPlane], *, max_body_bytes: int
    ) -> None:
        self.app = app
        self._plane = plane
        self._max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            target = _infer_target(scope["path"])
            if target is not None:
                await self._infer(scope, receive, send, *target)
                return
        await self.app(scope, receive, send)

    async def _infer(
        self, scope: Scope, receive: Receive, send: Send, name: str, version: str | None
    ) -> None:
        try:
            plane = self._plane()
        except Exception as exc:  # still starting
            await _send(send, status_for(exc), error_body(exc), error_headers(exc))
            return
        limit = plane.limit_for(name)
        if limit is not None and not limit.acquire():  # before the body: refusing is cheap
            plane.refused(name)
            await _send(send, *_OVERLOAD)
            return
        started = time.monotonic()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        client = scope.get("client")
        shed = False
        try:
            body = await read_body(receive, headers.get("content-length"), self._max_body_bytes)
            reply = await plane.infer(name, version, body, headers, client[0] if client else None)
            status, payload, extra = 200, reply.body, reply.headers
        except Exception as exc:  # every failure is an OIP error body, never a trace
            status, payload, extra = status_for(exc), error_body(exc), error_headers(exc)
            shed = isinstance(exc, (OverloadedError, DeadlineExceededError))
        finally:
            if limit is not None:
                limit.release(time.monotonic() - started, shed=shed)
        await _send(send, status, payload, extra)


async def _send(send: Send, status: int, payload: bytes, extra: dict[str, str]) -> None:
    raw = [_JSON, (b"content-length", str(len(payload)).encode())]
    raw.extend((key.encode("latin-1"), value.encode("latin-1")) for key, value in extra.items())
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


async def read_body(receive: Receive, declared: str | None, limit: int) -> bytes:
    """The request body, refused with 413 past ``limit`` (declared or streamed)."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(
            f"request body is {int(declared)} bytes; this server accepts at most {limit} "
            "(MLGATE_MAX_BODY_BYTES); send smaller batches"
        )
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"request body exceeds {limit} bytes; send smaller batches")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _infer_target(path: str) -> tuple[str, str | None] | None:
    """(model, version) for /v2/models/{m}/infer and /v2/models/{m}/versions/{v}/infer."""
    if not path.startswith("/v2/models/") or not path.endswith("/infer"):
        return None
    parts = path.split("/")
    if len(parts) == 5 and parts[3]:
        return parts[3], None
    if len(parts) == 7 and parts[4] == "versions" and parts[3] and parts[5]:
        return parts[3], parts[5]
    return None
