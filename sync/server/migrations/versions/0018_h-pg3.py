"""The op log loses its index of op ids alone: every logged op cost it an insertion.

Revision ID: 0018_h_pg3 (branch h-pg3; the lead renumbers on merge)
Revises: 0017
Create Date: 2026-12-06

A push's replay look-up (``oplog.lookup``) asked for op ids of "the device, or a device of its
family" (copies of one data dir), an OR only ``ix_ops_op_id`` could answer with a probe per op
id (revision 0015 kept it for that). The look-up now takes the device and its family as one
list, so PostgreSQL and SQLite probe the primary key (device_id, op_id) for each family
member and op id, and the 50 index insertions of ``ix_ops_op_id`` per nightly push are gone
(tests/sync/test_oplog_probe.py checks the probes on both databases).
"""

from __future__ import annotations

from alembic import op

revision = "0018_h_pg3"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_ops_op_id", table_name="ops")


def downgrade() -> None:
    op.create_index("ix_ops_op_id", "ops", ["op_id"])
