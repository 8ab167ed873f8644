"""Per-client rate limits: one token bucket per (endpoint, client), bounded in number.

Buckets live in this process (each server process limits on its own: with N
workers a client may get up to N times the rate; say so to users). The table
is an LRU of at most ``max_clients`` buckets, so a flood of distinct client ids
costs bounded memory instead of growing without end.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping

from mlgate.errors import RateLimitedError
from mlgate.serving.resilience import TokenBucket
from mlgate.serving.spec import RateLimitSpec

__all__ = ["RateLimits"]


class RateLimits:
    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, max_clients: int = 10_000
    ) -> None:
        self._clock = clock
        self._max_clients = max_clients
        self._buckets: OrderedDict[tuple[str, str, RateLimitSpec], TokenBucket] = OrderedDict()

    def check(
        self,
        endpoint: str,
        spec: RateLimitSpec,
        headers: Mapping[str, str],
        peer: str | None,
    ) -> None:
        """Take one request from the client's bucket or raise RateLimitedError (429)."""
        client = _client_key(spec.key, headers, peer)
        key = (endpoint, client, spec)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = TokenBucket(spec.requests_per_s, spec.burst, clock=self._clock)
            self._buckets[key] = bucket
            if len(self._buckets) > self._max_clients:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        if not bucket.try_acquire():
            raise RateLimitedError(
                f"this client is over endpoint {endpoint!r}'s limit of "
                f"{spec.requests_per_s:g} requests/s (burst {spec.burst}); slow down",
                retry_after_s=bucket.retry_after_s(),
            )


def _client_key(key: str, headers: Mapping[str, str], peer: str | None) -> str:
    if key == "client":
        token = headers.get("authorization")
        if token:  # hashed: the table must never hold a bearer token
            return "token:" + hashlib.sha256(token.encode()).hexdigest()[:32]
        return f"peer:{peer or 'unknown'}"
    return f"header:{headers.get(key.lower(), '')}"
