"""The console's record search index: ``record_terms``, filled from the existing records.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

Every record gets its search keys and every word its terms (``sync.server.terms``) in pages of ``BATCH`` records by id, with
the forms the platform ships (a record of a form it does not know gets none, and is found
again once it is next written). PostgreSQL: ``term`` has the "C" collation so that a prefix
is one index range.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.core.forms import load_formset
from sync.server import db, terms
from sync.server.tx import term_sql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BATCH = 5000


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
    """Terms of every stored record, a page at a time (memory stays flat on millions)."""
    forms = load_formset()
    r = sa.table(
        "records",
        sa.column("id", sa.String),
        sa.column("form", sa.String),
        sa.column("grid", sa.String),
        sa.column("title", sa.Text),
        sa.column("data", sa.Text),
    )
    sql = term_sql(conn.dialect.name)
    after = ""
    seen: set[str] = set()  # words given their terms (a street office: well under a million)
    while True:
        page = conn.execute(
            sa.select(r.c.id, r.c.form, r.c.grid, r.c.title, r.c.data)
            .where(r.c.id > after)
            .order_by(r.c.id)
            .limit(BATCH)
        ).all()
        if not page:
            return
        rows: list[tuple[str, str, str]] = []
        words: list[tuple[str, str]] = []
        for rec in page:
            if rec.form not in forms.forms:
                continue
            keys = terms.record_keys(forms.form(rec.form), db.loads(rec.data) or {}, rec.title)
            rows.extend((k, rec.grid or "", rec.id) for k in keys)
            for word in sorted(k for k in keys if terms.is_word(k) and k not in seen):
                seen.add(word)
                words.extend((t, word) for t in terms.word_terms(word))
        if rows:  # plain DB-API executemany, the write path's statements: millions of rows
            conn.exec_driver_sql(sql["insert"], rows)
        if words:
            conn.exec_driver_sql(sql["words"], words)
        after = page[-1].id


def downgrade() -> None:
    raise NotImplementedError("restore the backup taken before the upgrade")
