"""Alembic environment: always driven programmatically by mlgate.store.migrate.

The caller passes an open connection inside a write transaction in
``config.attributes["connection"]``; there is no alembic.ini and no URL here, so
credentials never pass through alembic's config or logs.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None, transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
