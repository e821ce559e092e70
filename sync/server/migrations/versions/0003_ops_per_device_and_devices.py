"""Op ids unique per device with a content hash; the devices (installations) table.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06

A copied or restored data dir could reuse op ids with other content and be answered with the
stored result of a different op (issue: records silently lost). ``ops`` is now keyed by
(device_id, op_id) and keeps ``op_hash``; rows logged before have NULL (they match any content
of the same device, so replays of old ops stay idempotent). ``devices`` starts empty: every
device registers at its next login and the first installation to present an id keeps it.
"""

from __future__ import annotations

import warnings

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # SQLite cannot change a primary key in place: batch mode rebuilds the table. The
        # rebuild warns that the reflected key differs from the new one, which is the point.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Table '_alembic_tmp_ops' specifies columns")
            with op.batch_alter_table("ops", recreate="always") as batch:
                batch.add_column(sa.Column("op_hash", sa.String(64), nullable=True))
                batch.create_primary_key("pk_ops", ["device_id", "op_id"])
                batch.create_index("ix_ops_op_id", ["op_id"])
    else:
        op.add_column("ops", sa.Column("op_hash", sa.String(64), nullable=True))
        op.drop_constraint("ops_pkey", "ops", type_="primary")
        op.create_primary_key("ops_pkey", "ops", ["device_id", "op_id"])
        op.create_index("ix_ops_op_id", "ops", ["op_id"])
    op.create_table(
        "devices",
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("installation", sa.String(64), nullable=False),
        sa.Column("username", sa.String(100), nullable=False),
        sa.Column("root", sa.String(64), nullable=False),
        sa.Column("parent", sa.String(64), nullable=True),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("device_id"),
    )
    op.create_index("ix_devices_root", "devices", ["root"])
    op.create_index("ix_devices_parent", "devices", ["parent"])


def downgrade() -> None:
    raise NotImplementedError("restore the backup taken before the upgrade")
