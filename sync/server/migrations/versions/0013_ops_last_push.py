"""The console's "last push per device" reads one index entry per device, not its op log.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06

``max(ops.at)`` per device and user walked every op of each device (grouped by device id):
negligible on a fresh platform, 801 ms per device holding 1.62 M ops on PostgreSQL, and
growing with every push. ``ix_ops_device_user_at`` answers it with one backward index probe
per (device, user) pair. Built from the existing rows; nothing else changes.
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_ops_device_user_at", "ops", ["device_id", "username", "at"])


def downgrade() -> None:
    op.drop_index("ix_ops_device_user_at", table_name="ops")
