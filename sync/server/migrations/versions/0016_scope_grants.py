"""Grids entering a scope are numbered, so devices fetch their older records.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06

``scope_grants`` numbers from the one change counter each time a grid enters a user's scope (a
worker given a grid, a supervisor given a community) or a community (a grid created in it or
moved there). A pull whose range holds such a number names the grid in ``entered`` and the
device fetches the grid's records its cursor had already passed (PROTOCOL.md §8). The table
starts empty: grants made before the upgrade are not known, as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scope_grants",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("grid", sa.String(64), nullable=False),
        sa.Column("username", sa.String(100), nullable=True),
        sa.Column("community", sa.String(64), nullable=True),
        sa.Column("at", sa.String(32), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("scope_grants")
