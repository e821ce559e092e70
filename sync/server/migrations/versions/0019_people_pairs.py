"""The duplicate guard probes (birth, name) and (birth, pinyin) pairs.

Revision ID: 0019_people_pairs
Revises: 0018_pending_terms
Create Date: 2026-12-07

Every push of new people asks which live people share a birth date and a name or pinyin
(``Tx.prefetch_people``). With ``ix_people_birth`` on (form, birth) the look-up read every
person born on each pushed birth date and tested their names: on the bench's 2.57 M-person
platform ~140 per date, 7 000 index rows and ~1 000 heap visits a push of 50, the costliest
statement of a city's night (10-20 ms a call); in a city of 10 M, ~550 per date. Two indexes,
(form, birth, name) and (form, birth, pinyin), answer it with one probe per pair (0.7 ms a
call on the same platform). On PostgreSQL they carry the other columns the look-up returns
(``INCLUDE``) so it reads no heap row of an all-visible page.
"""

from __future__ import annotations

from alembic import op

revision = "0019_people_pairs"
down_revision = "0018_pending_terms"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_people_birth", table_name="people")
    op.create_index(
        "ix_people_name",
        "people",
        ["form", "birth", "name"],
        postgresql_include=["pinyin", "record_id"],
    )
    op.create_index(
        "ix_people_pinyin",
        "people",
        ["form", "birth", "pinyin"],
        postgresql_include=["name", "record_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_people_pinyin", table_name="people")
    op.drop_index("ix_people_name", table_name="people")
    op.create_index(
        "ix_people_birth",
        "people",
        ["form", "birth"],
        postgresql_include=["name", "pinyin", "record_id"],
    )
