"""A loop fed by a real Redis stream (MLGATE_TEST_REDIS, default 127.0.0.1:6379).

Each test has its own stream key, deleted afterwards. Without a Redis server the tests
skip, unless MLGATE_REQUIRE_SERVICES=1 (as in CI), where that fails them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis
import sqlalchemy as sa

from mlgate.loop.runner import LoopRunner
from mlgate.loop.runs import RunState
from mlgate.loop.synthetic import SyntheticWorld
from mlgate.store.schema import loop_records
from mlgate.workspace import Workspace
from tests.conftest import REDIS_URL
from tests.loop.conftest import loop_config, records
from tests.loop.test_runner import step_until
from tests.loop.test_runner_failures import run_kinds


@pytest.fixture
def client(redis_client: redis.Redis) -> redis.Redis:
    return redis_client


@pytest.fixture
def stream(redis_stream: str) -> str:
    return redis_stream


def xadd(client: redis.Redis, stream: str, rows: list[dict[str, Any]]) -> None:
    pipe = client.pipeline()
    for row in rows:
        pipe.xadd(stream, {"data": json.dumps(row)})
    pipe.execute()


def test_a_redis_fed_loop_stores_each_record_once_and_retrains(
    workspace: Workspace, champion: int, client: redis.Redis, stream: str
) -> None:
    # The drift is seen in the first stretch of the new world; the run then trains on
    # what arrives after it (training.since_trigger), so its window holds the new world only.
    config = loop_config(
        source={"kind": "redis", "url": f"{REDIS_URL}?stream={stream}", "batch_size": 1000}
    )
    group = f"mlgate-loop-{config.name}"
    world = SyntheticWorld(seed=41)
    before = records(world, 400, "before", start=0)
    after = records(world, 1000, "after", start=400)
    xadd(client, stream, before)
    xadd(client, stream, before[:100])  # a producer that retried: the same request ids again
    runner = LoopRunner(workspace, config)
    assert runner.pump is not None
    try:
        first = runner.step()
        assert first.ingested == 400 and first.error is None
        assert runner.runs.active(config.name) is None  # the world has not moved yet
        xadd(client, stream, after[:300])
        step_until(runner, lambda: runner.runs.active(config.name) is not None)
        xadd(client, stream, after[300:])
        xadd(client, stream, after[-200:])
        step_until(
            runner,
            lambda: (
                "loop.trained"
                in [k for r in runner.runs.list(config.name) for k in run_kinds(workspace, r)]
            ),
        )
        while runner.step().ingested:  # whatever is left of the stream
            pass
    finally:
        runner.pump.source.close()

    counts = runner.inbox.counts()
    assert (counts.records, counts.labelled) == (1400, 1400)
    with workspace.store.read() as conn:
        ids = conn.execute(
            sa.select(loop_records.c.record_id).where(loop_records.c.loop == config.name)
        ).scalars()
        assert sorted(ids) == sorted(f"r{i}" for i in range(1400))
    assert client.xlen(stream) == 1700
    assert client.xpending(stream, group)["pending"] == 0  # every entry acknowledged
    run = runner.runs.list(config.name)[0]
    assert run.trigger["kind"] in ("drift", "performance")
    assert run.state not in (RunState.TRIGGERED, RunState.TRAINING, RunState.FAILED), run.error
    assert run_kinds(workspace, run)[:3] == ["loop.triggered", "loop.data_checked", "loop.trained"]
    assert workspace.verify().size > 0
