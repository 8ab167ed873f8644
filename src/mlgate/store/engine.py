"""Opening the state database: SQLite by default, PostgreSQL by URL.

SQLite is tuned for many processes on one machine: WAL so readers never block
the writer, ``synchronous=FULL`` so a committed ledger entry survives power
loss, a generous busy timeout, and ``BEGIN IMMEDIATE`` for write transactions
so two writers serialise at BEGIN instead of deadlocking at their first write
(pysqlite's default deferred BEGIN upgrades the lock too late for a
read-then-append ledger). PostgreSQL needs nothing special: the ledger takes a
row lock on its head, see :mod:`mlgate.ledger.log`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.engine.url import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from mlgate.errors import StoreError

__all__ = ["Store", "open_store"]

_WRITE_OPTION = "mlgate_write"
_SQLITE_BUSY_TIMEOUT_S = 60.0


class Store:
    """An engine plus the two kinds of transaction mlgate uses."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def url(self) -> str:
        """The URL with any password masked, safe to print and log."""
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that holds the database's write lock from its first statement."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(**{_WRITE_OPTION: True})
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction: a consistent snapshot that blocks no writer."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
        self.engine.dispose()


def open_store(url: str, *, create: bool = True) -> Store:
    """Create the engine for ``url``; raise :class:`StoreError` with advice when it is unusable.

    With ``create=False`` a missing SQLite file is an error instead of a new empty
    database, so a mistyped --home is reported rather than silently started afresh.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(
            f"cannot parse store URL {url!r}: expected sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST:PORT/DB"
        ) from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return Store(_sqlite_engine(parsed, create=create))
    if backend == "postgresql":
        if parsed.get_driver_name() != "psycopg":
            parsed = parsed.set(drivername="postgresql+psycopg")
        try:
            engine = sa.create_engine(parsed, pool_pre_ping=True)
        except NoSuchModuleError as exc:  # pragma: no cover - psycopg is a dependency
            raise StoreError(
                "PostgreSQL support needs psycopg: pip install 'psycopg[binary]'"
            ) from exc
        return Store(engine)
    raise StoreError(
        f"store backend {backend!r} is not supported: use sqlite:///PATH (default) "
        "or postgresql+psycopg://USER@HOST:PORT/DB"
    )


def _sqlite_engine(url: sa.URL, *, create: bool) -> Engine:
    database = url.database
    if not database or database == ":memory:":
        raise StoreError(
            "an in-memory SQLite store cannot be shared between connections; "
            "give a file path: sqlite:///PATH/mlgate.db"
        )
    path = Path(database)
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.exists():
        raise StoreError(f"there is no mlgate store at {path}: run `mlgate init` (or check --home)")
    engine = sa.create_engine(url, connect_args={"timeout": _SQLITE_BUSY_TIMEOUT_S})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        # Take transaction control away from pysqlite so BEGIN is ours to emit.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def check_reachable(store: Store) -> None:
    """Fail early, with the masked URL, when the database cannot be reached."""
    try:
        with store.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except OperationalError as exc:
        raise StoreError(
            f"cannot connect to the store at {store.url}: {_one_line(exc.orig)}. "
            "Check MLGATE_STORE / --store and that the database server is running."
        ) from exc


def _one_line(error: BaseException | None) -> str:
    """Driver messages (libpq's) span lines with indents; errors here are one line."""
    return " ".join(part.strip() for part in str(error).splitlines() if part.strip())
