from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
import sqlalchemy as sa

from mlgate.errors import StoreError
from mlgate.store import current_revision, ensure_current, head_revision, open_store, upgrade
from mlgate.store.schema import metadata


def test_upgrade_creates_the_schema_and_is_idempotent(store_url: str) -> None:
    store = open_store(store_url)
    with pytest.raises(StoreError, match="not initialised"):
        ensure_current(store)
    assert upgrade(store) == (None, head_revision())
    assert upgrade(store) == (head_revision(), head_revision())
    ensure_current(store)
    assert current_revision(store) == head_revision()
    store.dispose()


def test_migrated_schema_matches_the_query_tables(store_url: str) -> None:
    store = open_store(store_url)
    upgrade(store)
    inspector = sa.inspect(store.engine)
    for table in metadata.sorted_tables:
        columns = {column["name"] for column in inspector.get_columns(table.name)}
        assert columns == {column.name for column in table.columns}, table.name
        primary = set(inspector.get_pk_constraint(table.name)["constrained_columns"])
        assert primary == {column.name for column in table.primary_key}, table.name
    store.dispose()


def test_a_store_from_a_newer_mlgate_is_refused(store_url: str) -> None:
    store = open_store(store_url)
    upgrade(store)
    with store.write() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = 'f00d'")
    with pytest.raises(StoreError, match="newer than this mlgate knows"):
        ensure_current(store)
    store.dispose()


def _upgrade_in_child(url: str) -> None:
    store = open_store(url)
    upgrade(store)
    store.dispose()


def test_concurrent_upgrades_from_several_processes(store_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_upgrade_in_child, args=(store_url,)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    store = open_store(store_url)
    ensure_current(store)
    with store.read() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM ledger_head").scalar() == 1
    store.dispose()


def test_sqlite_store_folder_is_created(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'deep' / 'er' / 'db.sqlite'}")
    upgrade(store)
    assert (tmp_path / "deep" / "er" / "db.sqlite").exists()
    store.dispose()
