"""Versioned schema migrations, run through Alembic from code.

``upgrade`` is safe to call from several processes at once: it runs inside a
write transaction (SQLite's write lock) or under a transaction-scoped advisory
lock (PostgreSQL), so the second caller waits and then finds nothing to do.
Every other command only checks the revision, so a production database is
never altered behind an operator's back.
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from mlgate.errors import StoreError
from mlgate.store.engine import Store, check_reachable

__all__ = ["current_revision", "ensure_current", "head_revision", "upgrade"]

# Arbitrary constant naming mlgate's migration lock among other advisory locks.
_PG_MIGRATION_LOCK = 0x6D6C67617465


def _config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "mlgate.store:migrations")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None, "mlgate ships at least one migration"
    return head


def current_revision(store: Store) -> str | None:
    with store.read() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(store: Store) -> tuple[str | None, str]:
    """Bring the schema to the newest revision; return (before, after)."""
    check_reachable(store)
    with store.write() as conn:
        if store.dialect == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
        before = MigrationContext.configure(conn).get_current_revision()
        command.upgrade(_config(conn), "head")
        after = MigrationContext.configure(conn).get_current_revision()
    assert after is not None
    return before, after


def ensure_current(store: Store) -> None:
    """Refuse to work on a store that is uninitialised, behind, or from a newer mlgate."""
    check_reachable(store)
    current = current_revision(store)
    head = head_revision()
    if current == head:
        return
    if current is None:
        raise StoreError(f"the store at {store.url} is not initialised: run `mlgate init` first")
    known = {rev.revision for rev in ScriptDirectory.from_config(_config()).walk_revisions()}
    if current not in known:
        raise StoreError(
            f"the store at {store.url} is at schema revision {current}, newer than this "
            f"mlgate knows ({head}): upgrade mlgate"
        )
    raise StoreError(
        f"the store at {store.url} is at schema revision {current}, this mlgate needs "
        f"{head}: run `mlgate init` to upgrade it"
    )
