"""Tasks: issued work, their items (numbered from the change counter) and item result history.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06

New tables only (PROTOCOL.md §13); an existing platform has no tasks, so nothing to backfill.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("instruction", sa.Text(), nullable=False),
        sa.Column("form", sa.String(64), nullable=False),
        sa.Column("fields", sa.Text(), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("due", sa.String(10)),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("target", sa.Integer()),
        sa.Column("community", sa.String(64)),
        sa.Column("issued_at", sa.String(32), nullable=False),
        sa.Column("issued_by", sa.String(100), nullable=False),
        sa.Column("updated_at", sa.String(32), nullable=False),
        sa.Column("updated_by", sa.String(100), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_tasks_seq", "tasks", ["seq"])
    op.create_table(
        "task_grids",
        sa.Column("task_id", sa.String(64), primary_key=True),
        sa.Column("grid", sa.String(64), primary_key=True),
    )
    op.create_index("ix_task_grids_grid", "task_grids", ["grid"])
    op.create_table(
        "task_assignees",
        sa.Column("task_id", sa.String(64), primary_key=True),
        sa.Column("username", sa.String(100), primary_key=True),
    )
    op.create_index("ix_task_assignees_username", "task_assignees", ["username"])
    op.create_table(
        "task_items",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("task_id", sa.String(64), nullable=False),
        sa.Column("record_id", sa.String(64), nullable=False),
        sa.Column("grid", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text()),
        sa.Column("updated_at", sa.String(32), nullable=False),
        sa.Column("updated_by", sa.String(100)),
        sa.Column("seq", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_task_items_record_id", "task_items", ["record_id"])
    op.create_index("ix_task_items_grid_seq", "task_items", ["grid", "seq"])
    op.create_index("ix_task_items_task_grid", "task_items", ["task_id", "grid", "state", "id"])
    op.create_index("ix_task_items_task_state", "task_items", ["task_id", "state"])
    op.create_index("ix_task_items_seq", "task_items", ["seq"])
    op.create_table(
        "task_results",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("item_id", sa.String(64), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text()),
        sa.Column("edited_at", sa.String(64), nullable=False),
        sa.Column("device_id", sa.String(64)),
        sa.Column("op_id", sa.String(128)),
        sa.Column("op_hash", sa.String(64)),
        sa.Column("username", sa.String(100), nullable=False),
        sa.Column("author", sa.String(100), nullable=False),
        sa.Column("record_version", sa.Integer()),
        sa.Column("at", sa.String(32), nullable=False),
        sa.UniqueConstraint("device_id", "op_id", name="uq_task_result_op"),
    )
    op.create_index("ix_task_results_item_id", "task_results", ["item_id"])


def downgrade() -> None:
    raise NotImplementedError("restore the backup taken before the upgrade")
