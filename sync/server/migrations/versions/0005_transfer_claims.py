"""Transfer claims: reviews get a kind, records claiming a key held outside a grid are indexed.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06

Every review made before is a fuzzy duplicate review, so ``kind`` defaults to ``duplicate`` for
old rows. ``record_claims`` starts empty: the old server refused every write that would have
made a claim.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reviews") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(16), nullable=False, server_default="duplicate")
        )
    op.create_table(
        "record_claims",
        sa.Column("form", sa.String(64), nullable=False),
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("record_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("form", "key", "record_id"),
    )
    op.create_index("ix_record_claims_record", "record_claims", ["record_id"])


def downgrade() -> None:
    raise NotImplementedError("restore the backup taken before the upgrade")
