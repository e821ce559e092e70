"""The search index's words are kept per grid, and a push only notes its new words.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06

``search_words`` gets a leading ``grid`` column, so a search reads only the words of its
scope's grids (a supervisor's search with no match in their community no longer reads every
matching word of the street office). The table is rebuilt from ``record_terms``, which holds
every record's words with its grid (``sync.server.termfill``): each word gets its terms in
every grid that has it (PostgreSQL: ``grid`` in byte order too, as a search pages by it).
``new_words`` (words a push noted, expanded by the next search of their
scope) starts empty.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sync.server import db, termfill

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table("search_words")
    op.create_table(
        "search_words",
        sa.Column("grid", db.GRID, nullable=False),
        sa.Column("term", db.TERM, nullable=False),
        sa.Column("word", db.WORD, nullable=False),
        sa.PrimaryKeyConstraint("grid", "term", "word"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "new_words",
        sa.Column("grid", db.GRID, nullable=False),
        sa.Column("word", db.WORD, nullable=False),
        sa.PrimaryKeyConstraint("grid", "word"),
        sqlite_with_rowid=False,
    )
    termfill.fill_search_words(op.get_bind())


def downgrade() -> None:
    raise NotImplementedError("restore the backup taken before the upgrade")
