"""The pump on real Redis streams: duplicates, a consumer crash, a server restart mid-stream.

Plain tests use the shared Redis at MLGATE_TEST_REDIS (default 127.0.0.1:6379), each with
its own stream key, deleted afterwards. The restart tests start their own ``redis-server``
on a free loopback port with an append-only file synced on every write, kill it and start
it again on the same port and directory. Without Redis (or the binary) the tests skip,
unless MLGATE_REQUIRE_SERVICES=1, where that fails them.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from mlgate.loop.inbox import Inbox
from mlgate.loop.pump import Pump, PumpStep
from mlgate.monitoring.stream import RedisStreamSource, StreamBatch
from mlgate.workspace import Workspace

REDIS_URL = os.environ.get("MLGATE_TEST_REDIS", "redis://127.0.0.1:6379/0")
WANTED: dict[str, Any] = {"x": "numeric", "colour": "categorical"}
GROUP = "mlgate-loop-test"
pytestmark = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)


def _unavailable(reason: str) -> None:
    if os.environ.get("MLGATE_REQUIRE_SERVICES") == "1":
        pytest.fail(reason + " (MLGATE_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


def quick_client(**options: Any) -> redis.Redis:
    """No client-side retries: the pump is what retries, and a dead server answers at once."""
    return redis.Redis(socket_connect_timeout=2, retry=Retry(NoBackoff(), 0), **options)


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(
        REDIS_URL, socket_connect_timeout=3, retry=Retry(NoBackoff(), 0)
    )
    try:
        connection.ping()
    except redis.RedisError as exc:
        _unavailable(f"Redis at {REDIS_URL} is unavailable: {exc}")
    yield connection
    connection.close()


@pytest.fixture
def stream(client: redis.Redis) -> Iterator[str]:
    key = f"mlgate-test-loop-{uuid.uuid4().hex}"
    yield key
    client.delete(key)


@pytest.fixture
def inbox(workspace: Workspace) -> Inbox:
    return Inbox(workspace.store, "stream", clock=lambda: datetime(2026, 5, 1, tzinfo=UTC))


def record(i: int, **extra: Any) -> dict[str, Any]:
    return {"request_id": f"r{i}", "time": 1.7e9 + i, "x": float(i), "colour": "red", **extra}


def add(client: redis.Redis, stream: str, records: list[Any]) -> None:
    pipe = client.pipeline()
    for item in records:
        pipe.xadd(stream, {"data": item if isinstance(item, bytes) else json.dumps(item)})
    pipe.execute()


def source(client: redis.Redis, stream: str, consumer: str = "loop-1") -> RedisStreamSource:
    return RedisStreamSource(client, stream, WANTED, group=GROUP, consumer=consumer, block_ms=20)


def drain(pump: Pump, limit: int = 500) -> list[PumpStep]:
    """Step until the stream has nothing new (an idle read after everything was taken)."""
    steps: list[PumpStep] = []
    while len(steps) < limit:
        steps.append(pump.step())
        if steps[-1].idle:
            return steps
    pytest.fail(f"the pump did not drain in {limit} steps: {steps[-3:]}")


def pending(client: redis.Redis, stream: str) -> int:
    return int(client.xpending(stream, GROUP)["pending"])


def test_duplicates_and_poison_are_absorbed(client: redis.Redis, stream: str, inbox: Inbox) -> None:
    records: list[Any] = [record(i, label=i % 2) if i % 4 else record(i) for i in range(200)]
    records.insert(50, record(7, label=1))  # the same request id again (a producer's retry)
    records.insert(60, b"not json")  # poison: rejected, acknowledged, never redelivered
    records.append({"request_id": "r0", "label": 1})  # a late label for r0
    records.append({"request_id": "r999", "label": 0})  # a label whose record never comes
    add(client, stream, records)
    pump = Pump(source(client, stream), inbox, batch_size=25)
    steps = drain(pump)
    assert not any(s.error for s in steps)
    results = [s.result for s in steps if s.result is not None]
    assert sum(r.accepted for r in results) == 200
    assert sum(r.duplicates for r in results) == 2  # r7's record and its label
    assert sum(r.rejected for r in results) == 1
    counts = inbox.counts()
    assert (counts.records, counts.labelled, counts.label_only) == (200, 151, 1)
    assert inbox.label_of(["r0", "r7"]) == {"r0": 1, "r7": 1}
    assert pending(client, stream) == 0


def test_a_consumer_crash_before_xack_redelivers_into_the_inbox_once(
    client: redis.Redis, stream: str, inbox: Inbox
) -> None:
    add(client, stream, [record(i) for i in range(120)])
    crashed = source(client, stream, consumer="loop-1")
    batch = crashed.read(50)
    assert inbox.ingest_batch(batch).accepted == 50  # ...and the process dies before XACK
    assert pending(client, stream) == 50
    restarted = Pump(source(client, stream, consumer="loop-1"), inbox, batch_size=30)
    steps = drain(restarted)
    results = [s.result for s in steps if s.result is not None]
    assert sum(r.duplicates for r in results) == 50  # the pending entries came back first
    assert sum(r.accepted for r in results) == 70
    assert inbox.counts().records == 120
    assert pending(client, stream) == 0


# -- a server of our own, killed and restarted --------------------------------------------


class RedisServer:
    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            _unavailable("redis-server is not installed (apt-get install redis-server)")
        assert binary is not None
        self.binary = binary
        self.directory = directory
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--dir", str(self.directory), "--appendonly", "yes"]
        command += ["--appendfsync", "always", "--save", ""]
        with (self.directory / "redis.log").open("ab") as log:  # the child keeps its own copy
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        probe = quick_client(port=self.port)
        deadline = time.monotonic() + 30
        while True:
            try:
                if probe.ping():
                    break
            except redis.RedisError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"redis-server on port {self.port} did not start")
                time.sleep(0.02)
        probe.close()

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()  # SIGKILL: no goodbye, only what the append-only file holds
        self.process.wait(30)

    def client(self) -> redis.Redis:
        return quick_client(port=self.port)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    running = RedisServer(tmp_path / "redis")
    running.directory.mkdir()
    running.start()
    yield running
    if running.process is not None and running.process.poll() is None:
        running.kill()


class KillOnCommit:
    """A real Redis source whose n-th commit kills the server first (a crash before XACK)."""

    def __init__(self, inner: RedisStreamSource, kill: Callable[[], None], at: int) -> None:
        self.inner, self.kill, self.at, self.commits = inner, kill, at, 0

    def read(self, max_records: int) -> StreamBatch | None:
        return self.inner.read(max_records)

    def commit(self) -> None:
        self.commits += 1
        if self.commits == self.at:
            self.kill()
        self.inner.commit()

    def close(self) -> None:
        self.inner.close()


@pytest.mark.parametrize("reopen", [False, True], ids=["same-source", "reopened"])
def test_a_redis_restart_mid_stream_loses_and_doubles_nothing(
    server: RedisServer,
    inbox: Inbox,
    reopen: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = server.client()
    add(client, "events", [record(i, label=i % 2) for i in range(300)])
    killing = KillOnCommit(source(client, "events"), server.kill, at=4)
    pump = Pump(
        killing,
        inbox,
        batch_size=40,
        retry_s=0.0,
        reopen=(lambda: source(server.client(), "events")) if reopen else None,
    )
    for _ in range(3):
        assert pump.step().error is None
    assert inbox.counts().records == 120
    with caplog.at_level(logging.DEBUG, logger="mlgate.loop.pump"):
        crash = pump.step()  # ingested, then the server dies before XACK
        assert crash.result is not None and crash.result.accepted == 40
        assert crash.error is not None and "source failed" in crash.error
        down = [pump.step() for _ in range(3)]
        assert all(s.error is not None and s.result is None for s in down)
        server.start()  # same port, same directory: the stream and its pending entries
        add(server.client(), "events", [record(i, label=i % 2) for i in range(300, 350)])
        steps = drain(pump)
    assert inbox.counts().records == 350
    assert inbox.counts().labelled == 350
    assert len(inbox.after(0, 1000).record_ids) == 350
    redelivered = sum(s.result.duplicates for s in steps if s.result is not None)
    # a fresh consumer re-reads its pending entries: 40 records and their 40 labels again
    assert redelivered == (80 if reopen else 0)
    check = server.client()
    assert int(check.xpending("events", GROUP)["pending"]) == 0
    assert check.xlen("events") == 350
    warnings = [
        r for r in caplog.records if r.levelno == logging.WARNING and r.name == "mlgate.loop.pump"
    ]
    assert len(warnings) == 1  # one outage, logged once
