"""Refresh credentials: tokens.kind tells access tokens from devices' sync credentials.

Every token issued before this revision is an access token (the column's default).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="access"))


def downgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("kind")
