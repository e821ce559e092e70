"""Two indexes of the op log that no query reads are dropped: every push wrote them.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06

``ops`` had five indexes, so each op a push logs cost five index insertions. Two of them answer
no query: ``ix_ops_record_id`` (every read of ops by record names the device too:
``ix_ops_device_record``) and ``ix_ops_op_id`` (the replay look-up names the device family
too, and the primary key ``(device_id, op_id)`` answers it). Dropping them removes 100 of the
~900 index insertions of a 50-op push (tests/sync/test_push_writes.py checks that the reads
still use an index).
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_ops_record_id", table_name="ops")
    op.drop_index("ix_ops_op_id", table_name="ops")


def downgrade() -> None:
    op.create_index("ix_ops_op_id", "ops", ["op_id"])
    op.create_index("ix_ops_record_id", "ops", ["record_id"])
