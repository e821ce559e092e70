"""Bring every pre-migrations database to the same indexes: (grid, seq) in, records.grid out.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06

Pulls read (grid, seq) ranges through ``ix_records_grid_seq``; databases made before it was added
got it only when a newer server started on them, and they still carry the old single-column
``ix_records_grid``, which only costs writes. Both are fixed only where needed.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    indexes = {ix["name"] for ix in sa.inspect(op.get_bind()).get_indexes("records")}
    if "ix_records_grid" in indexes:
        op.drop_index("ix_records_grid", table_name="records")
    if "ix_records_grid_seq" not in indexes:
        op.create_index("ix_records_grid_seq", "records", ["grid", "seq"])


def downgrade() -> None:
    pass  # the index was never part of the baseline schema
