"""Canary rollouts driven by a real server: started through the admin API, judged on the
traffic real clients send, promoted or rolled back by the server's own poll loop."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import numpy as np
import pytest

from mlgate.workspace import Workspace
from tests.models import fragile_classifier, linear_classifier, register
from tests.serving.conftest import Server, assert_error, wait_until

pytestmark = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)

W = [[1.0, -1.0, 0.5], [0.5, 0.0, -0.5], [-1.0, 1.0, 0.0], [0.25, 0.25, -0.25]]
B = [0.1, -0.2, 0.3]
B_NEARLY = [0.1, -0.2, 0.301]  # another file, all but the same answers
SAFE_ROW = [[0.5, 1.0, -1.0, 2.0]]

Serve = Callable[..., Server]


@pytest.fixture
def iris(serve: Serve, workspace: Workspace) -> Server:
    """v1 champion; v2 all but the same model; v3 fails on rows whose x[0] >= 3."""
    register(workspace, "iris", linear_classifier(W, B), champion=True)
    register(workspace, "iris", linear_classifier(W, B_NEARLY))
    register(workspace, "iris", fragile_classifier(W, B))
    server = serve()
    server.deploy({"name": "iris-ep", "model": "iris", "route": "champion"})
    return server


@contextmanager
def traffic(server: Server, *, first: float | None = None) -> Iterator[None]:
    """Clients send varied rows from a thread until the block ends; ``first`` fixes x[0]."""
    stop = threading.Event()
    rng = np.random.default_rng(0)

    def run() -> None:
        with httpx.Client(base_url=str(server.client.base_url), timeout=10) as client:
            while not stop.is_set():
                row = rng.uniform(-2.0, 2.0, size=4)
                if first is not None:
                    row[0] = first
                body = {
                    "inputs": [
                        {"name": "x", "datatype": "FP32", "shape": [1, 4], "data": row.tolist()}
                    ]
                }
                client.post("/v2/models/iris-ep/infer", json=body)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


def _start(server: Server, candidate: int, **settings: Any) -> dict[str, Any]:
    body = {
        "candidate": candidate,
        "steps": [20, 50, 100],
        "interval_s": 1.5,
        "judge": {"min_samples": 20},
        **settings,
    }
    response = server.client.post(
        "/v2/admin/canaries/iris-ep", json=body, headers=server.auth("deployer")
    )
    assert response.status_code == 200, response.text
    started: dict[str, Any] = response.json()
    return started


def _status(server: Server) -> dict[str, Any]:
    response = server.client.get("/v2/admin/canaries/iris-ep", headers=server.auth("viewer"))
    assert response.status_code == 200, response.text
    status: dict[str, Any] = response.json()
    return status


def _ledger_kinds(workspace: Workspace) -> list[str]:
    with workspace.store.read() as conn:
        size = workspace.log.size(conn)
        return [entry.kind for entry in workspace.log.entries(conn, 0, size)]


def test_a_healthy_canary_is_promoted_by_the_server(iris: Server, workspace: Workspace) -> None:
    started = _start(iris, 2)
    assert (started["state"], started["percent"]) == ("running", 20)
    with traffic(iris):
        # While the canary runs, both versions answer real requests.
        wait_until(
            lambda: (
                {iris.infer("iris-ep", SAFE_ROW).headers["x-mlgate-version"] for _ in range(30)}
                == {"1", "2"}
            ),
            timeout=10,
            what="the split to send traffic to both versions",
        )
        wait_until(lambda: _status(iris)["state"] == "promoted", timeout=40, what="the promotion")
    # The state is committed first, then the alias and the endpoint follow it.
    wait_until(
        lambda: workspace.registry.get("iris", "champion").version == 2,
        timeout=10,
        what="the champion alias to move to the candidate",
    )
    wait_until(
        lambda: iris.infer("iris-ep", SAFE_ROW).headers["x-mlgate-version"] == "2",
        timeout=10,
        what="the endpoint to serve the promoted version",
    )
    kinds = _ledger_kinds(workspace)
    assert kinds.count("canary.started") == 1
    assert kinds.count("canary.promoted") == 1
    assert kinds.count("canary.judged") >= 2  # the 20 % and 50 % steps were judged
    assert "canary.rolled_back" not in kinds


def test_a_failing_canary_is_rolled_back_by_the_server(iris: Server, workspace: Workspace) -> None:
    _start(iris, 3)
    with traffic(iris, first=3.5):
        wait_until(lambda: _status(iris)["state"] == "rolled_back", timeout=40, what="the rollback")
    status = _status(iris)
    report = status["last_report"]
    assert report["verdict"] == "fail", report
    assert workspace.registry.get("iris", "champion").version == 1

    def baseline_only() -> bool:
        answers = [iris.infer("iris-ep", SAFE_ROW) for _ in range(30)]
        return {a.headers.get("x-mlgate-version") for a in answers} == {"1"}

    # The original spec routes everything to the baseline again (once the poll reloads).
    wait_until(baseline_only, timeout=10, what="the original spec to be served again")
    assert "canary.rolled_back" in _ledger_kinds(workspace)


def test_canary_refusals_are_clear(iris: Server) -> None:
    unknown = iris.client.post(
        "/v2/admin/canaries/iris-ep", json={"candidate": 9}, headers=iris.auth("deployer")
    )
    assert_error(unknown, 409, "9")
    bad = iris.client.post(
        "/v2/admin/canaries/iris-ep",
        json={"candidate": 2, "steps": [50, 20]},
        headers=iris.auth("deployer"),
    )
    assert_error(bad, 400, "steps")
    for body in (
        {"candidate": {"version": 2}},
        {"candidate": True},
        {"candidate": 2.5},
        {"candidate": 2, "baseline": [1]},
        {"candidate": 2, "promote_alias": 5},
    ):
        wrong = iris.client.post(
            "/v2/admin/canaries/iris-ep", json=body, headers=iris.auth("deployer")
        )
        assert_error(wrong, 400)
    no_token = iris.client.post("/v2/admin/canaries/iris-ep", json={"candidate": 2})
    assert no_token.status_code == 401
    none_yet = iris.client.get("/v2/admin/canaries/iris-ep", headers=iris.auth("viewer"))
    assert_error(none_yet, 404, "never had a canary")

    _start(iris, 2, interval_s=600)
    twice = iris.client.post(
        "/v2/admin/canaries/iris-ep", json={"candidate": 2}, headers=iris.auth("deployer")
    )
    assert_error(twice, 409, "already")
    aborted = iris.client.post("/v2/admin/canaries/iris-ep/abort", headers=iris.auth("deployer"))
    assert aborted.status_code == 200, aborted.text
    assert aborted.json()["state"] == "aborted"
    versions = {iris.infer("iris-ep", SAFE_ROW).headers["x-mlgate-version"] for _ in range(20)}
    assert versions == {"1"}
