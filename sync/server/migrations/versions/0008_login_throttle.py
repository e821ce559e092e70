"""Login throttling: failed logins per account, known device and client address.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

A new, empty table: nobody has failed a login yet as far as an upgraded platform knows.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_failures",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_at", sa.String(32), nullable=False),
        sa.Column("blocked_until", sa.String(32)),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_login_failures_last_at", "login_failures", ["last_at"])


def downgrade() -> None:
    raise NotImplementedError("restore the backup taken before the upgrade")
