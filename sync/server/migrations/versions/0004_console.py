"""The console: audit log, per-grid overview summaries, an index of open conflicts.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06

``grid_stats`` is a cache the overview fills on first view, so it starts empty. The partial
index holds only records with an open conflict (SQLite and PostgreSQL both support it).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("username", sa.String(100), nullable=False),
        sa.Column("ip", sa.String(100), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("fields", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_table(
        "grid_stats",
        sa.Column("grid", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("stats", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("grid"),
    )
    op.create_index(
        "ix_records_open_conflict",
        "records",
        ["grid", "updated_at"],
        sqlite_where=sa.text("conflict IS NOT NULL"),
        postgresql_where=sa.text("conflict IS NOT NULL"),
    )


def downgrade() -> None:
    raise NotImplementedError("restore the backup taken before the upgrade")
