"""Grids leaving a worker's scope are numbered, so devices take their tasks off the list.

Revision ID: 0020_scope_leaves
Revises: 0019_id15_keys
Create Date: 2026-12-07

``scope_leaves`` numbers from the one change counter each time a grid leaves a worker's scope.
A pull whose range holds such a number, for a grid the worker no longer has, names it in
``grids_left``, and the device drops that grid's task items and the tasks left without a grid
of theirs (PROTOCOL.md §8, §13.2). The table starts empty: grids taken before the upgrade are
not known; their tasks stay on the devices, as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020_scope_leaves"
down_revision = "0019_id15_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scope_leaves",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("grid", sa.String(64), nullable=False),
        sa.Column("username", sa.String(100), nullable=False),
        sa.Column("at", sa.String(32), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("scope_leaves")
