"""An index of the op log that no query reads is dropped: every push wrote it.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06

``ops`` had five indexes, so each op a push logs cost five index insertions. One answers no
query: ``ix_ops_record_id`` (every read of ops by record names the device too:
``ix_ops_device_record``). ``ix_ops_op_id`` stays: the replay look-up names the device or its
family (copies of one data dir) in one statement, and without it PostgreSQL read the whole op
log for each push (1.7 s a push on the 1.6 M-record bench platform; tests/sync/
test_push_writes.py checks each read of a push probes an index).
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_ops_record_id", table_name="ops")


def downgrade() -> None:
    op.create_index("ix_ops_record_id", "ops", ["record_id"])
