"""POST /v2/loops/{loop}/records against a real server: auth, bad input, limits, backpressure."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from mlgate.loop.inbox import Inbox
from tests.serving.conftest import Server, assert_error

pytestmark = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)

Serve = Callable[..., Server]
PATH = "/v2/loops/churn/records"


def records(n: int, start: int = 0, **extra: Any) -> list[dict[str, Any]]:
    return [
        {"request_id": f"r{i}", "x": float(i), "country": "fr" if i % 2 else "de", **extra}
        for i in range(start, start + n)
    ]


def inbox(server: Server, loop: str = "churn") -> Inbox:
    return Inbox(server.workspace.store, loop, clock=server.workspace.clock)


def test_records_and_labels_are_ingested_once(serve: Serve) -> None:
    server = serve()
    body = {"records": records(5) + [{"request_id": "r1", "label": 1}]}
    response = server.client.post(PATH, json=body, headers=server.auth("deployer"))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "accepted": 5,
        "duplicates": 0,
        "labels_applied": 1,
        "labels_waiting": 0,
        "rejected": 0,
        "reasons": [],
    }
    retried = server.client.post(PATH, json=body, headers=server.auth("admin"))
    assert retried.json()["duplicates"] == 6  # a client's retry is safe
    seen = inbox(server).after(0, 100)
    assert seen.record_ids == ("r0", "r1", "r2", "r3", "r4")
    assert seen.columns["country"].tolist() == ["de", "fr", "de", "fr", "de"]
    assert seen.labels.tolist() == [None, 1, None, None, None]


def test_declared_columns_are_checked_and_the_rest_dropped(serve: Serve) -> None:
    server = serve()
    body = {
        "records": [*records(2), {"request_id": "bad", "x": "high"}],
        "columns": {"x": "numeric"},
    }
    result = server.client.post(PATH, json=body, headers=server.auth("deployer")).json()
    assert (result["accepted"], result["rejected"]) == (2, 1)
    assert "where a number was expected" in result["reasons"][0]
    assert list(inbox(server).after(0, 10).columns) == ["x"]


def test_only_deployers_may_write_training_data(serve: Serve) -> None:
    server = serve()
    body = {"records": records(1)}
    assert_error(server.client.post(PATH, json=body), 401, "Authorization")
    assert_error(server.client.post(PATH, json=body, headers=server.auth("viewer")), 403)
    assert inbox(server).counts().records == 0


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "send a JSON object"),
        (b'{"rows": []}', "send a JSON object"),
        (b'{"records": {"x": 1}}', '"records" must be a list'),
        (b'{"records": [], "extra": 1}', "unknown fields ['extra']"),
        (b'{"records": [], "columns": {"x": "float"}}', '"columns" must map'),
        (b'{"records": [], "columns": ["x"]}', '"columns" must map'),
        (b'{"records": [], "columns": {"label": "numeric"}}', "reserved"),
    ],
)
def test_malformed_bodies_are_400s(serve: Serve, content: bytes, fragment: str) -> None:
    server = serve()
    response = server.client.post(PATH, content=content, headers=server.auth("deployer"))
    assert_error(response, 400, fragment)


@pytest.mark.parametrize("name", ["-dash-first", "a" * 129, "sp%20ace"])
def test_an_invalid_loop_name_is_a_400(serve: Serve, name: str) -> None:
    server = serve()
    response = server.client.post(
        f"/v2/loops/{name}/records", json={"records": []}, headers=server.auth("deployer")
    )
    assert_error(response, 400, "loop name")


def test_too_many_records_or_bytes_are_413s(serve: Serve) -> None:
    server = serve(max_body_bytes=400_000)
    many = {"records": [{"x": i} for i in range(10_001)]}
    response = server.client.post(PATH, json=many, headers=server.auth("deployer"))
    assert_error(response, 413, "at most 10000")
    big = {"records": records(1, note="z" * 500_000)}
    response = server.client.post(PATH, json=big, headers=server.auth("deployer"))
    assert_error(response, 413, "bytes")
    assert inbox(server).counts().records == 0


def test_a_burst_beyond_two_writers_gets_503_and_retry_after(serve: Serve) -> None:
    server = serve()
    responses: list[httpx.Response] = []
    bodies = [orjson.dumps({"records": records(3, start=10 * k)}) for k in range(5)]

    def post(body: bytes) -> None:
        with httpx.Client(base_url=server.url, timeout=120.0) as client:
            responses.append(client.post(PATH, content=body, headers=server.auth("deployer")))

    # Hold the store's write lock: the first two ingests wait on it, the rest are refused.
    with server.workspace.store.write() as conn:
        conn.exec_driver_sql("SELECT 1")
        threads = [threading.Thread(target=post, args=(body,)) for body in bodies]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while len(responses) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        refused = list(responses)
    for thread in threads:
        thread.join(120)
    assert len(refused) == 3
    for response in refused:
        assert_error(response, 503, "retry in a second")
        assert response.headers["retry-after"] == "1"
    accepted = [r for r in responses if r.status_code == 200]
    assert len(accepted) == 2 and sum(r.json()["accepted"] for r in accepted) == 6
    assert inbox(server).counts().records == 6
