"""Concurrency limits through real HTTP: more requests than an endpoint can answer in time.

A model that takes 20 ms per call, unbatched, under 16 concurrent clients: requests queue
behind each other far past the target, so the endpoint's limit shrinks and the requests
over it are refused at once with 503 and Retry-After, before their bodies are read; each
client goes on over the same keep-alive connection. Every request gets an answer, and
once the load is gone the endpoint answers again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from mlgate.workspace import Workspace
from tests.models import gated_classifier, register
from tests.serving.conftest import Server, assert_error, infer_body

pytestmark = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)

ROW = [[0.5, 1.0, -1.0, 2.0]]
CLIENTS = 16
PER_CLIENT = 8


def _hammer(
    server: Server, model: str = "slow", clients: int = CLIENTS, per_client: int = PER_CLIENT
) -> list[httpx.Response]:
    body = infer_body(ROW, input_name="input", datatype="FP64")

    def client(_: int) -> list[httpx.Response]:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            return [http.post(f"/v2/models/{model}/infer", json=body) for _ in range(per_client)]

    with ThreadPoolExecutor(clients) as pool:
        return [r for batch in pool.map(client, range(clients)) for r in batch]


def test_an_endpoint_past_its_limit_refuses_at_once_and_recovers(
    serve: Callable[..., Server], workspace: Workspace
) -> None:
    data, trusted = gated_classifier(delay_s=0.02)
    register(workspace, "slow", data, trusted_types=trusted, champion=True)
    server = serve(target_latency_ms=10.0)  # the default of `mlgate serve`
    server.deploy({"name": "slow", "batching": {"max_batch_size": 1}, "timeout_ms": 60_000})
    responses = _hammer(server)

    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {200, 503}, statuses
    # Each client went on over its keep-alive connection after refusals whose bodies the
    # server never read, and every answer after them is whole.
    assert all(
        set(r.json()) == ({"error"} if r.status_code == 503 else set(r.json())) for r in responses
    )
    assert statuses[200] > 0 and statuses[503] > 0, statuses
    _assert_shed_and_recovered(
        server, "slow", responses, "overload", "overloaded", "in flight", "Retry-After"
    )
    assert server.healthy()


def _assert_shed_and_recovered(
    server: Server, model: str, responses: list[httpx.Response], reason: str, *phrases: str
) -> None:
    """A 503 says why with Retry-After, each is counted under ``reason``, then ``model`` answers.

    Answering again after the load also shows no circuit opened: shedding is not the
    model's fault.
    """
    refused = next(r for r in responses if r.status_code == 503)
    assert_error(refused, 503, *phrases)
    assert refused.headers["retry-after"] == "1"
    metrics = server.metrics()
    shed = metrics[("mlgate_shed_total", (("endpoint", model), ("reason", reason)))]
    assert shed == sum(r.status_code == 503 for r in responses)
    again = server.infer(model, ROW, input_name="input", datatype="FP64")
    assert again.status_code == 200, again.text


def test_a_target_of_zero_turns_the_limit_off(
    serve: Callable[..., Server], workspace: Workspace
) -> None:
    data, trusted = gated_classifier(delay_s=0.02)
    register(workspace, "slow", data, trusted_types=trusted, champion=True)
    server = serve(target_latency_ms=0.0)
    server.deploy({"name": "slow", "batching": {"max_batch_size": 1}, "timeout_ms": 60_000})
    statuses = Counter(r.status_code for r in _hammer(server))
    assert statuses == {200: CLIENTS * PER_CLIENT}


def test_a_request_whose_time_runs_short_in_the_queue_is_shed_with_503_not_504(
    serve: Callable[..., Server], workspace: Workspace
) -> None:
    """Queued behind calls of the usual length, it never reached the model: load, not sickness.

    Four concurrent requests to a fresh 100 ms model, unbatched, with a 250 ms deadline. The
    batcher has timed nothing when they arrive, so admission cannot foresee the wait and
    takes all four. The first runs; the second, launched with 150 ms left, runs too; the
    last two come up with about 50 ms left, less than a call takes: run, they would time
    out (504) and take compute from requests that can still make it, so they are shed.
    """
    data, trusted = gated_classifier(delay_s=0.1)
    register(workspace, "queued", data, trusted_types=trusted, champion=True)
    server = serve(target_latency_ms=0.0)  # the door limit off: the batcher alone decides
    server.deploy(
        {
            "name": "queued",
            "batching": {"max_batch_size": 1},
            "timeout_ms": 250,
            "circuit_breaker": {"failure_threshold": 1, "reset_timeout_s": 60},
        }
    )
    responses = _hammer(server, "queued", clients=4, per_client=1)
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {200, 503} and statuses[503] >= 1, statuses
    # The breaker opens on one failure, and the endpoint still answers afterwards.
    _assert_shed_and_recovered(
        server, "queued", responses, "deadline", "in the queue", "overloaded", "Retry-After"
    )
