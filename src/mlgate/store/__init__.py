"""State storage: SQLAlchemy Core tables and migrations, SQLite by default, PostgreSQL by URL."""

from __future__ import annotations

from mlgate.store.engine import Store, open_store
from mlgate.store.migrate import current_revision, ensure_current, head_revision, upgrade

__all__ = [
    "Store",
    "current_revision",
    "ensure_current",
    "head_revision",
    "open_store",
    "upgrade",
]
