"""Concurrency through real HTTP: policy changes under load drop nothing, and a full queue
sheds with 503 and Retry-After while admitted requests still complete."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

import httpx
import pytest

from mlgate.workspace import Workspace
from tests.models import gate, gated_classifier, linear_classifier, register
from tests.serving.conftest import Server, assert_error, infer_body, wait_until

pytestmark = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)

W1 = [[1.0, -1.0, 0.5], [0.5, 0.0, -0.5], [-1.0, 1.0, 0.0], [0.25, 0.25, -0.25]]
B1 = [0.1, -0.2, 0.3]
W2 = [[-1.0, 1.0, 0.0], [0.0, 0.5, -0.5], [1.0, -1.0, 0.5], [-0.25, 0.5, 0.25]]
B2 = [0.0, 0.3, -0.1]
ROW = [[0.5, 1.0, -1.0, 2.0]]

Serve = Callable[..., Server]


@dataclass(frozen=True)
class Sent:
    started: float
    finished: float
    status: int
    version: str | None


def _split(first: int) -> dict[str, object]:
    return {
        "name": "switching",
        "model": "iris",
        "route": {
            "split": {
                "variants": [
                    {"target": 1, "weight": first},
                    {"target": 2, "weight": 100 - first},
                ]
            }
        },
    }


def test_redeploying_under_load_drops_no_request(serve: Serve, workspace: Workspace) -> None:
    register(workspace, "iris", linear_classifier(W1, B1), champion=True)
    register(workspace, "iris", linear_classifier(W2, B2))
    server = serve()
    server.deploy(_split(100))
    stop = threading.Event()
    body = infer_body(ROW)

    def hammer() -> list[Sent]:
        sent: list[Sent] = []
        with httpx.Client(base_url=server.url, timeout=30) as client:
            while not stop.is_set() or len(sent) < 150:
                started = time.monotonic()
                response = client.post("/v2/models/switching/infer", json=body)
                sent.append(
                    Sent(
                        started,
                        time.monotonic(),
                        response.status_code,
                        response.headers.get("x-mlgate-version"),
                    )
                )
        return sent

    # (deploy started, deploy answered, the version every later request must get)
    deploys: list[tuple[float, float, str]] = [(0.0, time.monotonic(), "1")]
    with ThreadPoolExecutor(2) as pool:
        clients = [pool.submit(hammer) for _ in range(2)]
        for first in (0, 100, 0, 100, 0, 100, 0):
            time.sleep(0.15)
            began = time.monotonic()
            server.deploy(_split(first))
            deploys.append((began, time.monotonic(), "1" if first == 100 else "2"))
        stop.set()
        results = [sent for future in clients for sent in future.result()]

    assert len(results) >= 300
    failed = [s for s in results if s.status != 200]
    assert not failed, f"{len(failed)} of {len(results)} requests failed: {failed[:5]}"
    assert {s.version for s in results} == {"1", "2"}
    # A request sent after a deploy was answered, and done before the next began,
    # got that deploy's version: the swap is immediate and complete.
    checked = 0
    for (_, answered, version), (next_began, _, _) in zip(
        deploys, [*deploys[1:], (float("inf"), 0.0, "")], strict=True
    ):
        window = [s for s in results if s.started > answered and s.finished < next_began]
        assert all(s.version == version for s in window), (version, window[:5])
        checked += len(window)
    assert checked >= 100, checked
    history = server.client.get(
        "/v2/admin/endpoints/switching/history", headers=server.auth("viewer")
    ).json()
    assert len(history) == len(deploys)


def test_a_full_queue_sheds_with_503_and_retry_after(serve: Serve, workspace: Workspace) -> None:
    data, trusted = gated_classifier("overload")
    register(workspace, "slowpoke", data, champion=True, trusted_types=trusted)
    server = serve()
    server.deploy(
        {
            "name": "narrow",
            "model": "slowpoke",
            "timeout_ms": 20000,
            "batching": {"max_queue": 2, "max_batch_size": 8},
        }
    )
    held = gate("overload")

    def call(_: int) -> httpx.Response:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            body = infer_body(ROW, input_name="input", datatype="FP64")
            return client.post("/v2/models/narrow/infer", json=body)

    def queue_depth() -> float:
        key = ("mlgate_queue_depth_requests", (("model", "slowpoke"), ("version", "1")))
        return server.metrics().get(key, 0.0)

    with ThreadPoolExecutor(3) as pool:
        running = pool.submit(call, 0)
        assert held.wait_for_calls(1), "the first request never reached the model"
        queued = [pool.submit(call, i) for i in (1, 2)]
        wait_until(lambda: queue_depth() == 2, timeout=10, what="two queued requests")

        for _ in range(3):
            refused = server.infer("narrow", ROW, input_name="input", datatype="FP64")
            assert_error(refused, 503, "queue is full (2 requests)")
            assert int(refused.headers["retry-after"]) >= 1
        assert server.healthy()
        assert not running.done() and not any(f.done() for f in queued)

        held.opened.set()
        answered = [running.result(30), *(f.result(30) for f in queued)]
    for response in answered:
        assert response.status_code == 200, response.text
        assert response.headers["x-mlgate-version"] == "1"
    assert held.calls == 2, "the two queued requests ran together, as one batch"
    shed = server.metrics()[("mlgate_shed_total", (("endpoint", "narrow"), ("reason", "queue")))]
    assert shed == 3
    assert server.infer("narrow", ROW, input_name="input", datatype="FP64").status_code == 200


def test_a_failing_request_does_not_fail_requests_batched_with_it(
    serve: Serve, workspace: Workspace
) -> None:
    data, trusted = gated_classifier("picky", fail_at=3.0)
    register(workspace, "picky", data, champion=True, trusted_types=trusted)
    server = serve()
    server.deploy({"name": "picky", "timeout_ms": 20000})
    held = gate("picky")

    def call(first: float) -> httpx.Response:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            body = infer_body([[first, 0.0, 0.0, 0.0]], input_name="input", datatype="FP64")
            return client.post("/v2/models/picky/infer", json=body)

    with ThreadPoolExecutor(3) as pool:
        first = pool.submit(call, 0.0)
        assert held.wait_for_calls(1)
        poison = pool.submit(call, 5.0)  # these two queue behind the first call
        innocent = pool.submit(call, 1.0)
        queued = ("mlgate_queue_depth_requests", (("model", "picky"), ("version", "1")))
        wait_until(lambda: server.metrics().get(queued) == 2, what="two queued requests")
        held.opened.set()
        assert first.result(30).status_code == 200
        assert_error(poison.result(30), 500, "x[0] >= 3.0")
        assert innocent.result(30).status_code == 200, innocent.result().text


def test_a_deploy_is_not_undone_by_a_slower_snapshot_build(
    serve: Serve, workspace: Workspace
) -> None:
    """The poller may be building a snapshot from before a deploy when the deploy's own
    refresh installs a newer one; the older build must not replace it when it ends."""
    register(workspace, "iris", linear_classifier(W1, B1), champion=True)
    register(workspace, "iris", linear_classifier(W2, B2))
    data, trusted = gated_classifier(load_gate="slow-load")
    register(workspace, "heavy", data, trusted_types=trusted)
    server = serve(poll_interval_s=0.5)
    server.deploy({"name": "switching", "model": "iris", "route": 1})

    loading = gate("slow-load")
    loading.hold_next_load()
    workspace.registry.move_alias("heavy", "champion", 1, actor="test:serving")
    assert loading.wait_for_calls(1), "the poller never started loading the new champion"
    # The poller's build read the endpoints before this deploy and is stuck loading.
    with ThreadPoolExecutor(1) as pool:
        deploying = pool.submit(server.deploy, {"name": "switching", "model": "iris", "route": 2})
        try:
            deploying.result(timeout=0.5)
        except FutureTimeout:
            pass  # a server that serialises builds waits for the stuck one: release it
        loading.opened.set()
        deploying.result(timeout=30)
    seen: Counter[str] = Counter()
    until = time.monotonic() + 1.0  # longer than a poll interval: a stale build would show
    while time.monotonic() < until:
        seen[server.infer("switching", ROW).headers["x-mlgate-version"]] += 1
    assert set(seen) == {"2"}, f"after the deploy answered, versions served: {dict(seen)}"
    assert server.infer("heavy", ROW, input_name="input", datatype="FP64").status_code == 200
