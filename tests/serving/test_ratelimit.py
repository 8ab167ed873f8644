"""Per-client rate limits: 429 with Retry-After, per client, bounded memory."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mlgate.errors import RateLimitedError
from mlgate.serving.ratelimit import RateLimits
from mlgate.serving.spec import RateLimitSpec
from mlgate.workspace import Workspace
from tests.models import linear_classifier, register
from tests.serving.conftest import Server

W = [[1.0, -1.0, 0.5], [0.5, 0.0, -0.5], [-1.0, 1.0, 0.0], [0.25, 0.25, -0.25]]
B = [0.1, -0.2, 0.3]
ROW = [[1.0, 2.0, 3.0, 4.0]]
Serve = Callable[..., Server]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_each_client_gets_its_own_bucket_and_refills_over_time() -> None:
    clock = FakeClock()
    limits = RateLimits(clock=clock)
    spec = RateLimitSpec(requests_per_s=2.0, burst=2)
    for _ in range(2):
        limits.check("e", spec, {}, "10.0.0.1")
    with pytest.raises(RateLimitedError) as caught:
        limits.check("e", spec, {}, "10.0.0.1")
    assert caught.value.retry_after_s == pytest.approx(0.5)
    limits.check("e", spec, {}, "10.0.0.2")  # another client is unaffected
    limits.check("e", spec, {"authorization": "Bearer a"}, "10.0.0.1")  # a token is a client
    clock.now += 0.5
    limits.check("e", spec, {}, "10.0.0.1")  # refilled one token


def test_a_header_can_name_the_client_and_the_table_stays_bounded() -> None:
    limits = RateLimits(clock=FakeClock(), max_clients=3)
    spec = RateLimitSpec(requests_per_s=1.0, burst=1, key="x-api-key")
    for client in range(10):
        limits.check("e", spec, {"x-api-key": str(client)}, None)
    assert len(limits._buckets) == 3
    with pytest.raises(RateLimitedError):
        limits.check("e", spec, {"x-api-key": "9"}, None)


def test_over_the_limit_gets_429_with_retry_after_over_http(
    serve: Serve, workspace: Workspace
) -> None:
    register(workspace, "limited", linear_classifier(W, B), champion=True)
    server = serve()
    server.deploy(
        {"name": "limited", "rate_limit": {"requests_per_s": 0.5, "burst": 2, "key": "x-api-key"}}
    )
    alice = {"x-api-key": "alice"}
    assert [server.infer("limited", ROW, headers=alice).status_code for _ in range(2)] == [200, 200]
    refused = server.infer("limited", ROW, headers=alice)
    assert refused.status_code == 429
    assert "limit of 0.5 requests/s" in refused.json()["error"]
    assert int(refused.headers["retry-after"]) >= 1
    assert server.infer("limited", ROW, headers={"x-api-key": "bob"}).status_code == 200
    assert server.healthy()
