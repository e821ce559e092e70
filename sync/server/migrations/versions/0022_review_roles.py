"""Who decided a review item, by role: a worker's "different" is input a supervisor may overrule.

Revision ID: 0022_review_roles
Revises: 0021_review_numbers
Create Date: 2026-12-08

``reviews.decided_role`` keeps the role the decider had when deciding (``worker``,
``supervisor``, ``admin``). A duplicate closed ``different`` by a worker's answer from a
device (PROTOCOL.md §9.2) may still be decided ``same`` by a supervisor or an admin; their own
decisions stay final (§9). Items decided before the upgrade take the decider's role now, the
best knowledge there is (a user's role rarely changes).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022_review_roles"
down_revision = "0021_review_numbers"
branch_labels = None
depends_on = None

_users = sa.table("users", sa.column("username", sa.String), sa.column("role", sa.String))
_reviews = sa.table(
    "reviews",
    sa.column("decided_by", sa.String),
    sa.column("decided_role", sa.String),
)


def upgrade() -> None:
    with op.batch_alter_table("reviews") as batch:
        batch.add_column(sa.Column("decided_role", sa.String(16), nullable=True))
    role = (
        sa.select(_users.c.role).where(_users.c.username == _reviews.c.decided_by).scalar_subquery()
    )
    op.get_bind().execute(
        sa.update(_reviews).where(_reviews.c.decided_by.is_not(None)).values(decided_role=role)
    )


def downgrade() -> None:
    with op.batch_alter_table("reviews") as batch:
        batch.drop_column("decided_role")
