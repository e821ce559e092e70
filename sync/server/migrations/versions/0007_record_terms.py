"""The console's record search index: ``record_terms``, filled from the existing records.

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-06

Every record gets its terms (``sync.server.terms``) in pages of ``BATCH`` records by id, with
the forms the platform ships (a record of a form it does not know gets none, and is found
again once it is next written). PostgreSQL: ``term`` has the "C" collation so that a prefix
is one index range.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from app.core.forms import load_formset
from sync.server import db, terms

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None

BATCH = 5000


def upgrade() -> None:
    op.create_table(
        "record_terms",
        sa.Column("term", db.TERM, nullable=False),
        sa.Column("grid", sa.String(64), nullable=False),
        sa.Column("record_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("term", "grid", "record_id"),
    )
    op.create_index("ix_record_terms_record", "record_terms", ["record_id"])
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
    after = ""
    while True:
        page = conn.execute(
            sa.select(r.c.id, r.c.form, r.c.grid, r.c.title, r.c.data)
            .where(r.c.id > after)
            .order_by(r.c.id)
            .limit(BATCH)
        ).all()
        if not page:
            return
        rows: list[dict[str, Any]] = []
        for rec in page:
            if rec.form not in forms.forms:
                continue
            found = terms.terms_of(forms.form(rec.form), db.loads(rec.data) or {}, rec.title)
            rows.extend({"term": t, "grid": rec.grid or "", "record_id": rec.id} for t in found)
        if rows:
            conn.execute(sa.insert(db.record_terms), rows)
        after = page[-1].id


def downgrade() -> None:
    raise NotImplementedError("restore the backup taken before the upgrade")
