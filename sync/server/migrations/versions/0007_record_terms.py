"""The console's record search index: ``record_terms``, filled from the existing records.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

Every record gets its search keys (``sync.server.terms``) with the forms the platform ships (a
record of a form it does not know gets none, and is found again once it is next written), in
bulk (``sync.server.termfill``). ``search_words`` is created here in its first shape and
filled by revision 0010, which gives it its grid column (every upgrade past 0007 runs it).
PostgreSQL: ``term`` has the "C" collation so that a prefix is one index range.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.core.forms import load_formset
from sync.server import db, termfill

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "record_terms",
        sa.Column("term", db.WORD, nullable=False),
        sa.Column("grid", sa.String(64), nullable=False),
        sa.Column("record_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("term", "grid", "record_id"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "search_words",
        sa.Column("term", db.TERM, nullable=False),
        sa.Column("word", db.WORD, nullable=False),
        sa.PrimaryKeyConstraint("term", "word"),
        sqlite_with_rowid=False,
    )
    backfill(op.get_bind())


def backfill(conn: sa.Connection) -> None:
    """Search keys of every stored record (the words' terms: revision 0010)."""
    termfill.fill_record_terms(conn, load_formset())


def downgrade() -> None:
    raise NotImplementedError("restore the backup taken before the upgrade")
