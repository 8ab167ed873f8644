"""The Redis stream source against the real Redis at 127.0.0.1:6379 (MLGATE_TEST_REDIS).

Each test uses its own stream key and deletes it afterwards. Without a Redis server the
tests skip, unless MLGATE_REQUIRE_SERVICES=1 (as in CI), where that fails them.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import redis

from mlgate.errors import ConfigError, MonitoringError
from mlgate.monitoring.detectors import BernoulliCusum
from mlgate.monitoring.profile import fit_profile
from mlgate.monitoring.stream import (
    ConceptMonitor,
    CountWindow,
    DriftMonitor,
    MonitorLoop,
    RedisStreamSource,
)
from tests.conftest import REDIS_URL

WANTED: dict[str, Any] = {"x": "numeric", "colour": "categorical", "prediction": None}


@pytest.fixture
def client(redis_client: redis.Redis) -> redis.Redis:
    return redis_client


@pytest.fixture
def stream(redis_stream: str) -> str:
    return redis_stream


def _add(client: redis.Redis, stream: str, records: list[Any]) -> None:
    pipe = client.pipeline()
    for record in records:
        pipe.xadd(stream, {"data": record if isinstance(record, bytes) else json.dumps(record)})
    pipe.execute()


def test_a_redis_stream_is_monitored_and_acknowledged(client: redis.Redis, stream: str) -> None:
    rng = np.random.default_rng(5)
    profile = fit_profile(
        {
            "x": rng.normal(size=3000),
            "colour": rng.choice(["red", "blue"], size=3000).astype(object),
        }
    )
    records: list[Any] = []
    for i in range(2000):
        x = float(rng.normal() + (1.5 if i >= 1000 else 0.0))
        colour = str(rng.choice(["red", "blue"]))
        records.append(
            {"request_id": f"r{i}", "time": 1e9 + i, "x": x, "colour": colour, "prediction": 1}
        )
    records.insert(10, b"not json")  # poison: rejected, acknowledged, never redelivered
    records.insert(20, {"request_id": "r5", "label": 1})  # a label event for r5
    _add(client, stream, records)
    monitor = DriftMonitor(profile, CountWindow(500))
    concept = ConceptMonitor(BernoulliCusum())
    source = RedisStreamSource(client, stream, WANTED, block_ms=50)
    loop = MonitorLoop(
        source, [monitor], concept, prediction_column="prediction", batch_records=300
    )
    status = loop.run(once=True, flush=False)
    assert status.records == 2000 and status.rejected == 1 and status.labels == 1
    alarms = list(status.recent_alarms)
    assert [(a.feature, a.window.start) for a in alarms] == [("x", 1000)]
    assert alarms[0].window.start_time == 1e9 + 1000
    assert concept.join.stats.joined == 1
    pending = client.xpending(stream, source.group)
    assert pending["pending"] == 0  # every entry acknowledged, the poison one included


def test_unacknowledged_entries_are_delivered_again(client: redis.Redis, stream: str) -> None:
    _add(client, stream, [{"x": float(i), "colour": "red"} for i in range(5)])
    first = RedisStreamSource(client, stream, WANTED, consumer="c1", block_ms=10)
    batch = first.read(3)
    assert batch.n_records == 3  # read, but the monitor "crashes" before commit
    again = RedisStreamSource(client, stream, WANTED, consumer="c1", block_ms=10)
    replay = again.read(10)
    assert replay.frame["x"].tolist() == [0.0, 1.0, 2.0]  # its own pending entries first
    again.commit()
    rest = again.read(10)
    assert rest.frame["x"].tolist() == [3.0, 4.0]
    again.commit()
    assert again.read(10).n_records == 0
    assert client.xpending(stream, again.group)["pending"] == 0


def test_from_url_needs_a_stream_and_a_server(stream: str) -> None:
    with pytest.raises(Exception, match="stream=KEY"):
        RedisStreamSource.from_url(REDIS_URL, WANTED)
    source = RedisStreamSource.from_url(f"{REDIS_URL}?stream={stream}&group=g2", WANTED)
    assert source.group == "g2"
    source.close()
    with pytest.raises(MonitoringError, match="not reachable"):
        RedisStreamSource.from_url("redis://127.0.0.1:1/0?stream=x", WANTED)


def test_a_malformed_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="redis://HOST:PORT/DB"):
        RedisStreamSource.from_url("redis://127.0.0.1:notaport/0?stream=x", WANTED)


def test_a_failed_acknowledgement_is_a_monitoring_error(client: redis.Redis, stream: str) -> None:
    _add(client, stream, [{"x": 1.0, "colour": "red"}])
    source = RedisStreamSource(client, stream, WANTED, block_ms=10)
    assert source.read(10).n_records == 1
    client.delete(stream)
    client.set(stream, "not a stream any more")  # XACK now answers WRONGTYPE
    with pytest.raises(MonitoringError, match="acknowledge"):
        source.commit()
