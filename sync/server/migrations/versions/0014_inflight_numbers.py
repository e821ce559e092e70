"""Change numbers in flight: PostgreSQL writers no longer hold the counter row to commit.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06

A PostgreSQL writer now takes its change numbers in a short transaction of its own that also
inserts an ``inflight_numbers`` row, and deletes the row just before it commits; pulls never
read past the lowest in-flight number (numbering.py, PROTOCOL.md §8). The table starts empty:
an upgrade runs with the platform stopped, so no writer is in flight. SQLite keeps taking
numbers inside the writing transaction and never writes the table.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inflight_numbers",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("floor", sa.BigInteger, nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("inflight_numbers")
