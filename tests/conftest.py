"""Shared fixtures: real stores on SQLite and PostgreSQL, real workspaces.

PostgreSQL tests run in a throw-away schema of the server named by
MLGATE_TEST_POSTGRES (default: the development machines' 127.0.0.1:5432,
database test). Where that server is absent they skip with the reason, unless
MLGATE_REQUIRE_SERVICES=1 (as in CI), where its absence fails the run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from mlgate.config import Settings
from mlgate.workspace import Workspace

POSTGRES_URL = os.environ.get(
    "MLGATE_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
_REQUIRE_SERVICES = os.environ.get("MLGATE_REQUIRE_SERVICES") == "1"


def _libpq_dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _postgres_unavailable() -> str | None:
    try:
        with psycopg.connect(_libpq_dsn(POSTGRES_URL), connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"PostgreSQL at {POSTGRES_URL} is unavailable: {exc}".splitlines()[0]


@pytest.fixture(scope="session")
def postgres_server() -> str:
    reason = _postgres_unavailable()
    if reason is not None:
        if _REQUIRE_SERVICES:
            pytest.fail(reason + " (MLGATE_REQUIRE_SERVICES=1)")
        pytest.skip(reason)
    return POSTGRES_URL


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A URL whose connections live in a fresh schema, dropped afterwards."""
    schema = f"mlgate_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq_dsn(postgres_server), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in postgres_server else "?"
    yield f"{postgres_server}{separator}options=-csearch_path%3D{schema}"
    with psycopg.connect(_libpq_dsn(postgres_server), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store' / 'mlgate.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def settings(tmp_path: Path, store_url: str) -> Settings:
    return Settings(home=tmp_path / "home", store_url=store_url, actor="test:pytest")


@pytest.fixture
def workspace(settings: Settings) -> Iterator[Workspace]:
    Workspace.init(settings)
    with Workspace.open(settings) as opened:
        yield opened


REDIS_URL = os.environ.get("MLGATE_TEST_REDIS", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis_client() -> Iterator[Any]:
    """The Redis server of MLGATE_TEST_REDIS; skips where absent (fails under CI)."""
    import redis

    connection = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        connection.ping()
    except redis.RedisError as exc:
        if _REQUIRE_SERVICES:
            pytest.fail(f"Redis at {REDIS_URL} is unavailable: {exc}")
        pytest.skip(f"Redis at {REDIS_URL} is unavailable: {exc}")
    yield connection
    connection.close()


@pytest.fixture
def redis_stream(redis_client: Any) -> Iterator[str]:
    """A fresh stream key, deleted afterwards."""
    key = f"mlgate-test-{uuid.uuid4().hex}"
    yield key
    redis_client.delete(key)


# Shared, noisy machines: a slow example is not a failed property. Deadlines and the
# too-slow health check would make these tests fail on load, not on wrong answers.
from hypothesis import HealthCheck  # noqa: E402
from hypothesis import settings as hypothesis_settings  # noqa: E402

hypothesis_settings.register_profile(
    "mlgate",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
hypothesis_settings.load_profile("mlgate")
