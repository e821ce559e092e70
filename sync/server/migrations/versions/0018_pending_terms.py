"""The op log loses its index of op ids alone, and new records' search terms wait for a search.

Revision ID: 0018_pending_terms
Revises: 0017
Create Date: 2026-12-06

A push's replay look-up (``oplog.lookup``) asked for op ids of "the device, or a device of its
family" (copies of one data dir), an OR only ``ix_ops_op_id`` could answer with a probe per op
id (revision 0015 kept it for that). The look-up now takes the device and its family as one
list, so PostgreSQL and SQLite probe the primary key (device_id, op_id) for each family
member and op id, and the 50 index insertions of ``ix_ops_op_id`` per nightly push are gone
(tests/sync/test_oplog_probe.py checks the probes on both databases).

``pending_terms``: a push no longer writes the ``record_terms`` rows of the records it creates
(about 200 random b-tree insertions per nightly push of 50 residents, the push's largest
write), only one row per record here; the next search of a scope holding the grid gives them
their terms (``termrows.index_pending``). Made empty: every existing record has its terms.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018_pending_terms"
down_revision = "0017"
branch_labels = None
depends_on = None


GRID = sa.String(64).with_variant(sa.String(64, collation="C"), "postgresql")


def upgrade() -> None:
    op.drop_index("ix_ops_op_id", table_name="ops")
    op.create_table(
        "pending_terms",
        sa.Column("grid", GRID, primary_key=True),
        sa.Column("record_id", sa.String(64), primary_key=True),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    # records still pending have no terms under the old code until its search index is
    # filled again (``termfill.fill_record_terms``); run a search of every scope first
    op.drop_table("pending_terms")
    op.create_index("ix_ops_op_id", "ops", ["op_id"])
