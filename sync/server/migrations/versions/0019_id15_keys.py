"""A first-generation 15-digit ID number is keyed as its 18-digit form.

Revision ID: 0019_id15_keys
Revises: 0018_pending_terms
Create Date: 2026-12-07

Pushes now make natural keys by ``app.core.naturalkeys``: a 15-digit ID number (6-digit area,
YYMMDD, sequence) and its 18-digit form ("19" inserted, GB 11643 check character appended)
are one key, on the device and here. The keys the platform holds or claims were made by the
old rule (the 15 digits as typed), so each record keyed with a 15-digit part is keyed again
from its values. Where its new key is free the record holds it; where another live record
holds it already (the same person registered again from the new card), the record claims it
and a transfer claim opens for a supervisor (PROTOCOL.md §9.1), as a push would have done: the
key index never gets a second holder and nothing is merged without a person. No table
changes, so the downgrade is empty: the old code re-keys a record on its next write.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.engine import Connection

from app.core.forms import Form, load_formset
from sync.server import db, rows

revision = "0019_id15_keys"
down_revision = "0018_pending_terms"
branch_labels = None
depends_on = None

_K, _C, _R, _RV = db.record_keys.c, db.record_claims.c, db.records.c, db.reviews.c


def upgrade() -> None:
    conn = op.get_bind()
    forms = load_formset().forms
    at = conn.execute(sa.select(sa.func.max(_R.updated_at))).scalar() or ""
    for record_id in sorted(_fifteen(conn, db.record_keys) | _fifteen(conn, db.record_claims)):
        row = conn.execute(
            sa.select(_R.form, _R.data, _R.deleted).where(_R.id == record_id)
        ).first()
        form = forms.get(row.form) if row is not None else None
        if row is None or form is None or row.deleted:
            continue  # a form this platform does not ship keeps its keys, as terms do (0007)
        _rekey(conn, form, record_id, db.loads(row.data) or {}, at)


def downgrade() -> None:
    pass


def _fifteen(conn: Connection, table: sa.Table) -> set[str]:
    """Records with a key of ``table`` that has a part of exactly 15 digits."""
    framed = sa.literal("|") + table.c.key + sa.literal("|")
    if conn.dialect.name == "postgresql":
        matches = framed.op("~")(r"\|[0-9]{15}\|")
    else:
        matches = framed.op("GLOB")("*|" + "[0-9]" * 15 + "|*")
    return set(conn.execute(sa.select(table.c.record_id).where(matches)).scalars())


def _rekey(conn: Connection, form: Form, record_id: str, data: dict[str, Any], at: str) -> None:
    """Replace the record's stale keys (held or claimed) by those its values make now."""
    new = rows.natural_keys(form, data)
    held = set(conn.execute(sa.select(_K.key).where(_K.record_id == record_id)).scalars())
    claimed = set(conn.execute(sa.select(_C.key).where(_C.record_id == record_id)).scalars())
    stale_held, stale_claimed = held - set(new), claimed - set(new)
    for key in stale_held:
        conn.execute(sa.delete(db.record_keys).where(_K.form == form.id, _K.key == key))
    for key in stale_claimed:
        conn.execute(
            sa.delete(db.record_claims).where(
                _C.form == form.id, _C.key == key, _C.record_id == record_id
            )
        )
    for key in _missing(new, held | claimed):
        holder = conn.execute(
            sa.select(_K.record_id).where(_K.form == form.id, _K.key == key)
        ).scalar()
        if holder is None and stale_held:
            conn.execute(
                sa.insert(db.record_keys).values(form=form.id, key=key, record_id=record_id)
            )
            continue
        conn.execute(sa.insert(db.record_claims).values(form=form.id, key=key, record_id=record_id))
        if holder is not None:
            _open_transfer(conn, form.id, record_id, holder, at)


def _missing(new: list[str], had: set[str]) -> Iterator[str]:
    return (key for key in dict.fromkeys(new) if key not in had)


def _open_transfer(conn: Connection, form_id: str, claim_id: str, holder_id: str, at: str) -> None:
    """``reviews.open_transfer`` without a push's transaction: one review row per pair (a
    duplicate review of the two becomes the claim), opened again if it was decided."""
    pair = sa.or_(
        sa.and_(_RV.record_id == claim_id, _RV.other_id == holder_id),
        sa.and_(_RV.record_id == holder_id, _RV.other_id == claim_id),
    )
    found = conn.execute(sa.select(_RV.id, _RV.kind, _RV.state).where(pair)).first()
    if found is not None and found.kind == "transfer" and found.state == "open":
        return
    values = {
        "form": form_id,
        "record_id": claim_id,
        "other_id": holder_id,
        "reason": "transfer",
        "kind": "transfer",
        "state": "open",
        "created_at": at,
        "decided_by": None,
        "decided_at": None,
    }
    if found is None:
        conn.execute(sa.insert(db.reviews).values(**values))
    else:
        conn.execute(sa.update(db.reviews).where(_RV.id == found.id).values(**values))
