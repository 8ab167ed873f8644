"""Shedding at the door through real HTTP: a server whose event loop falls behind says 503.

The test holds the server's own event loop (uvicorn runs in a thread of this process) with
short blocking callbacks, as a flood of requests would, and checks that inference requests
are then refused before their body is read, with Retry-After, that the connection stays
usable, and that the server answers again once the loop keeps up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx
import pytest

from mlgate.workspace import Workspace
from tests.models import linear_classifier, register
from tests.serving.conftest import Server, assert_error, infer_body, wait_until

pytestmark = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)

W = [[1.0, -1.0, 0.5], [0.5, 0.0, -0.5], [-1.0, 1.0, 0.0], [0.25, 0.25, -0.25]]
B = [0.1, -0.2, 0.3]
ROW = [[0.5, 1.0, -1.0, 2.0]]


def _hold_loop(server: Server, stop: threading.Event) -> None:
    """Block the server's loop 40 ms at a time until ``stop`` (lag well over 15 ms)."""
    loop = server._server.servers[0].get_loop()
    while not stop.is_set():
        loop.call_soon_threadsafe(time.sleep, 0.04)
        time.sleep(0.045)


def test_a_server_whose_loop_falls_behind_refuses_at_the_door_and_recovers(
    serve: Callable[..., Server], workspace: Workspace
) -> None:
    register(workspace, "iris", linear_classifier(W, B), champion=True)
    server = serve(shed_lag_ms=15.0)  # the default of `mlgate serve`
    assert server.infer("iris", ROW).status_code == 200
    stop = threading.Event()
    holder = threading.Thread(target=_hold_loop, args=(server, stop), daemon=True)
    holder.start()
    try:
        big = infer_body([[0.5, 1.0, -1.0, 2.0]] * 20_000)  # ~1 MB the server need not read
        refused = wait_until(
            lambda: (
                (r := server.client.post("/v2/models/iris/infer", json=big)).status_code == 503
                and r
            ),
            timeout=20,
            what="a 503 while the loop is held",
        )
    finally:
        stop.set()
        holder.join()
    assert isinstance(refused, httpx.Response)
    assert_error(refused, 503, "overloaded", "event loop", "Retry-After")
    assert refused.headers["retry-after"] == "1"
    # Same keep-alive connection, unread body and all: the next answers are whole.
    recovered = wait_until(
        lambda: (r := server.infer("iris", ROW)).status_code == 200 and r,
        timeout=20,
        what="answers once the loop keeps up",
    )
    assert recovered.json()["model_name"] == "iris"
    metrics = server.metrics()
    shed = metrics.get(("mlgate_shed_total", (("endpoint", "iris"), ("reason", "overload"))), 0)
    assert shed >= 1
    assert server.healthy()


def test_shedding_at_the_door_can_be_turned_off(
    serve: Callable[..., Server], workspace: Workspace
) -> None:
    register(workspace, "iris", linear_classifier(W, B), champion=True)
    server = serve(shed_lag_ms=0.0)
    stop = threading.Event()
    holder = threading.Thread(target=_hold_loop, args=(server, stop), daemon=True)
    holder.start()
    try:
        statuses = {server.infer("iris", ROW).status_code for _ in range(20)}
    finally:
        stop.set()
        holder.join()
    assert statuses == {200}
