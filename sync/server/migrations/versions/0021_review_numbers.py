"""Duplicates decided "different" are numbered, so the decision reaches devices.

Revision ID: 0021_review_numbers
Revises: 0020_scope_leaves
Create Date: 2026-12-08

``reviews.seq`` takes a number from the one change counter when a duplicate review item is
decided ``different`` (by a supervisor, or closed by a worker's answer pushed from a device).
A pull whose range holds the number names the pair in ``not_duplicates`` when both records are
in the caller's scope, and the device stops warning about it (PROTOCOL.md §9.2). Items decided
``different`` before the upgrade get numbers above the counter here, so they reach the devices
with their next pull.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021_review_numbers"
down_revision = "0020_scope_leaves"
branch_labels = None
depends_on = None

_counters = sa.table("counters", sa.column("name", sa.String), sa.column("value", sa.BigInteger))
_reviews = sa.table(
    "reviews",
    sa.column("id", sa.Integer),
    sa.column("kind", sa.String),
    sa.column("state", sa.String),
    sa.column("seq", sa.BigInteger),
)


def upgrade() -> None:
    with op.batch_alter_table("reviews") as batch:
        batch.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch.create_index("ix_reviews_seq", ["seq"])
    _number_decided()


def _number_decided() -> None:
    """Number the duplicates already decided "different", in id order, and move the counter."""
    conn = op.get_bind()
    top = conn.execute(
        sa.select(_counters.c.value).where(_counters.c.name == "seq").with_for_update()
    ).scalar()
    ids = (
        conn.execute(
            sa.select(_reviews.c.id)
            .where(_reviews.c.kind != "transfer", _reviews.c.state == "different")
            .order_by(_reviews.c.id)
        )
        .scalars()
        .all()
    )
    if top is None or not ids:
        return
    for number, review_id in enumerate(ids, start=int(top) + 1):
        conn.execute(sa.update(_reviews).where(_reviews.c.id == review_id).values(seq=number))
    conn.execute(
        sa.update(_counters).where(_counters.c.name == "seq").values(value=int(top) + len(ids))
    )


def downgrade() -> None:
    with op.batch_alter_table("reviews") as batch:
        batch.drop_index("ix_reviews_seq")
        batch.drop_column("seq")
