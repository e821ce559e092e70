"""Alembic environment of the platform schema.

Run through ``sync.server.migrate`` (``gridcollect server-admin upgrade``), which hands over an
open connection inside one transaction: every pending revision runs in it, so a failed or killed
upgrade leaves the database as it was (SQLite and PostgreSQL both have transactional DDL).
``render_as_batch`` makes autogenerate write SQLite-safe ``batch_alter_table`` blocks.
"""

from __future__ import annotations

from alembic import context

from sync.server.db import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - the CLI always passes a connection
    raise RuntimeError("run migrations through sync.server.migrate (gridcollect server-admin)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,
    compare_type=True,
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
