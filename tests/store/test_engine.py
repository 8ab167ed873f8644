from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from mlgate.errors import StoreError
from mlgate.store import open_store


def test_sqlite_is_tuned_for_durable_concurrent_use(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'a' / 'db.sqlite'}")
    with store.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    store.dispose()


def test_write_transactions_take_the_lock_at_begin(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    first, second = open_store(url), open_store(url)
    second.engine.dispose()
    second = type(second)(sa.create_engine(url, connect_args={"timeout": 0.2}))
    with first.write() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    with first.write():
        # A second writer cannot even begin while the first holds the write lock.
        raw = second.engine.raw_connection()
        try:
            raw.driver_connection.isolation_level = None  # type: ignore[union-attr]
            with pytest.raises(Exception, match="locked"):
                raw.cursor().execute("BEGIN IMMEDIATE")
        finally:
            raw.close()
    first.dispose()
    second.dispose()


def test_readers_are_not_blocked_by_a_writer(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    store = open_store(url)
    with store.write() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    with store.write() as conn:
        conn.exec_driver_sql("INSERT INTO t VALUES (2)")
        with store.read() as reader:
            assert reader.exec_driver_sql("SELECT count(*) FROM t").scalar() == 1
    store.dispose()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "cannot parse store URL"),
        ("mysql://root@localhost/test", "not supported"),
        ("sqlite://", "in-memory SQLite"),
        ("sqlite:///:memory:", "in-memory SQLite"),
    ],
)
def test_unusable_urls_are_refused_with_advice(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        open_store(url)


def test_unreachable_postgres_names_the_masked_url() -> None:
    from mlgate.store.engine import check_reachable

    store = open_store("postgresql+psycopg://bob:secret@127.0.0.1:1/none?connect_timeout=2")
    with pytest.raises(StoreError) as caught:
        check_reachable(store)
    assert "secret" not in str(caught.value)
    assert "127.0.0.1:1" in str(caught.value)
    store.dispose()
