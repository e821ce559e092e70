"""Grids reach devices through pull; devices remember their last pull.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

``grids.seq`` numbers a grid's last create/rename/boundary from the one change counter, so a
pull sends each grid once per change. Backfill: every existing grid gets a fresh number above
the counter (the counter moves past them), so every device, whatever its cursor, receives its
grids' names and boundaries once on its next pull. ``devices.last_pull_at`` starts empty: no
pull was noted before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_counters = sa.table("counters", sa.column("name", sa.String), sa.column("value", sa.BigInteger))
_grids = sa.table("grids", sa.column("code", sa.String), sa.column("seq", sa.BigInteger))


def upgrade() -> None:
    with op.batch_alter_table("grids") as batch:
        batch.add_column(sa.Column("seq", sa.BigInteger(), nullable=False, server_default="0"))
        batch.create_index("ix_grids_seq", ["seq"])
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("last_pull_at", sa.String(32), nullable=True))
    _number_existing_grids()


def _number_existing_grids() -> None:
    """Give every grid a number above the counter, in code order, and move the counter."""
    conn = op.get_bind()
    top = conn.execute(
        sa.select(_counters.c.value).where(_counters.c.name == "seq").with_for_update()
    ).scalar()
    codes = conn.execute(sa.select(_grids.c.code).order_by(_grids.c.code)).scalars().all()
    if top is None or not codes:
        return  # a new platform: its counter is seeded later and grids get numbers as made
    for number, code in enumerate(codes, start=int(top) + 1):
        conn.execute(sa.update(_grids).where(_grids.c.code == code).values(seq=number))
    conn.execute(
        sa.update(_counters).where(_counters.c.name == "seq").values(value=int(top) + len(codes))
    )


def downgrade() -> None:
    raise NotImplementedError("restore the backup taken before the upgrade")
