"""Natural keys made again by today's rule (``app.core.naturalkeys``) for the records an
older app keyed otherwise: a first-generation 15-digit ID number was keyed as typed, so it
did not meet its 18-digit form. The step (``MIGRATION``) only marks the store; the first open
re-keys, because the keys come from the forms' field types, which SQL does not know.

Part of ``app.core.store``: SQL stays in this package.
"""

from __future__ import annotations

import json
import sqlite3

from app.core.forms import FormSet
from app.core.store.derive import derive
from app.core.store.once import flag_step, run_once

PENDING = "id15_keys_pending"  # meta key: keys holding 15 digits still to be made again
MIGRATION = flag_step(PENDING)

# a key part of exactly 15 digits: parts are joined by "|", so the key is framed by them too
_FIFTEEN = "*|" + "[0-9]" * 15 + "|*"


def rekey_fifteen(conn: sqlite3.Connection, formset: FormSet) -> int:
    """Re-key the live records that hold a key with a 15-digit part; returns how many.
    Runs once, in one write transaction with the flag's removal (cut short, it runs again
    whole). A part of 15 digits that is no ID number gets the same key back."""

    def work() -> int:
        rows = conn.execute(
            "SELECT r.rid, r.form, r.data FROM records r WHERE r.rid IN "
            "(SELECT k.rid FROM record_keys k WHERE '|' || k.key || '|' GLOB ?)",
            (_FIFTEEN,),
        ).fetchall()
        return sum(_rekey(conn, formset, rid, form_id, data) for rid, form_id, data in rows)

    return run_once(conn, PENDING, work)


def _rekey(conn: sqlite3.Connection, formset: FormSet, rid: int, form_id: str, data: str) -> int:
    """Replace one record's keys by those its values make now (1), or leave a record of a
    form this app does not know as it is (0)."""
    form = formset.forms.get(form_id)
    if form is None:
        return 0
    keys = derive(form, json.loads(data)).keys
    conn.execute("DELETE FROM record_keys WHERE rid = ?", (rid,))
    conn.executemany(
        "INSERT OR IGNORE INTO record_keys (form, key, rid) VALUES (?, ?, ?)",
        [(form_id, key, rid) for key in keys],
    )
    return 1
