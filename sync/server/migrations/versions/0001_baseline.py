"""baseline: the schema of the first release (server-admin init before migrations)

Revision ID: 0001
Revises:
Create Date: 2026-12-06 04:18:13.078007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "aliases",
        sa.Column("old_id", sa.String(length=64), nullable=False),
        sa.Column("canonical_id", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("at", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("old_id"),
    )
    with op.batch_alter_table("aliases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_aliases_canonical_id"), ["canonical_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_aliases_seq"), ["seq"], unique=False)

    op.create_table(
        "communities",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_table(
        "counters",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "grids",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("community", sa.String(length=64), nullable=False),
        sa.Column("level", sa.String(length=8), nullable=False),
        sa.Column("polygon", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("code"),
    )
    with op.batch_alter_table("grids", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_grids_community"), ["community"], unique=False)

    op.create_table(
        "meta",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "ops",
        sa.Column("op_id", sa.String(length=128), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("op_id"),
    )
    with op.batch_alter_table("ops", schema=None) as batch_op:
        batch_op.create_index("ix_ops_device_record", ["device_id", "record_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ops_record_id"), ["record_id"], unique=False)

    op.create_table(
        "people",
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("form", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("pinyin", sa.String(length=300), nullable=False),
        sa.Column("birth", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("record_id"),
    )
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.create_index("ix_people_birth", ["form", "birth"], unique=False)

    op.create_table(
        "quarantine",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("op_id", sa.String(length=128), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("form", sa.String(length=64), nullable=False),
        sa.Column("op", sa.Text(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "record_keys",
        sa.Column("form", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("form", "key"),
    )
    with op.batch_alter_table("record_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_record_keys_record_id"), ["record_id"], unique=False)

    op.create_table(
        "record_versions",
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("form", sa.String(length=64), nullable=False),
        sa.Column("grid", sa.String(length=64), nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("conflict", sa.Text(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("op_id", sa.String(length=128), nullable=True),
        sa.Column("device_id", sa.String(length=64), nullable=True),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("author", sa.String(length=100), nullable=False),
        sa.Column("edited_at", sa.String(length=64), nullable=True),
        sa.Column("at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("record_id", "version"),
    )
    op.create_table(
        "records",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("form", sa.String(length=64), nullable=False),
        sa.Column("form_version", sa.Integer(), nullable=False),
        sa.Column("grid", sa.String(length=64), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("conflict", sa.Text(), nullable=True),
        sa.Column("stamps", sa.Text(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("updated_at", sa.String(length=32), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.create_index("ix_records_grid_seq", ["grid", "seq"], unique=False)
        batch_op.create_index(batch_op.f("ix_records_seq"), ["seq"], unique=False)

    op.create_table(
        "review_audit",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("review_id", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("at", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("review_audit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_review_audit_review_id"), ["review_id"], unique=False)

    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("form", sa.String(length=64), nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("other_id", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.Column("decided_by", sa.String(length=100), nullable=True),
        sa.Column("decided_at", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("record_id", "other_id", name="uq_review_pair"),
    )
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reviews_other_id"), ["other_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_reviews_record_id"), ["record_id"], unique=False)

    op.create_table(
        "scope_exits",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("grid", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("scope_exits", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_scope_exits_seq"), ["seq"], unique=False)

    op.create_table(
        "tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.Column("expires_at", sa.String(length=32), nullable=False),
        sa.Column("revoked_at", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tokens_username"), ["username"], unique=False)

    op.create_table(
        "user_grids",
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("grid", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("username", "grid"),
    )
    op.create_table(
        "users",
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("password_hash", sa.String(length=300), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("community", sa.String(length=64), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("username"),
    )


def downgrade() -> None:
    op.drop_table("users")
    op.drop_table("user_grids")
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tokens_username"))

    op.drop_table("tokens")
    with op.batch_alter_table("scope_exits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scope_exits_seq"))

    op.drop_table("scope_exits")
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reviews_record_id"))
        batch_op.drop_index(batch_op.f("ix_reviews_other_id"))

    op.drop_table("reviews")
    with op.batch_alter_table("review_audit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_audit_review_id"))

    op.drop_table("review_audit")
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_records_seq"))
        batch_op.drop_index("ix_records_grid_seq")

    op.drop_table("records")
    op.drop_table("record_versions")
    with op.batch_alter_table("record_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_record_keys_record_id"))

    op.drop_table("record_keys")
    op.drop_table("quarantine")
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.drop_index("ix_people_birth")

    op.drop_table("people")
    with op.batch_alter_table("ops", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ops_record_id"))
        batch_op.drop_index("ix_ops_device_record")

    op.drop_table("ops")
    op.drop_table("meta")
    with op.batch_alter_table("grids", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_grids_community"))

    op.drop_table("grids")
    op.drop_table("counters")
    op.drop_table("communities")
    with op.batch_alter_table("aliases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_aliases_seq"))
        batch_op.drop_index(batch_op.f("ix_aliases_canonical_id"))

    op.drop_table("aliases")
