"""Autosave: what is typed in an open form, kept so a crash loses nothing (not a save).

A part ``Store`` composes: no history and no outbox, one row per open form (its slot).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple

from app.core import ids
from app.core.records import dumps
from app.core.store.db import Database


class Autosave(NamedTuple):
    """One open form's unsaved state."""

    slot: str
    form: str
    record_id: str | None
    data: dict[str, Any]
    saved_at: str


class Autosaves:
    """The autosave table (``Store.autosave_put`` / ``autosaves`` / ``autosave_clear``)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def put(self, slot: str, form_id: str, record_id: str | None, data: Mapping[str, Any]) -> None:
        """Keep what is typed in an open form, without history or outbox (it is not a save)."""
        with self._db.transaction():
            self._db.conn.execute(
                "INSERT INTO autosave (slot, form, record_id, data, saved_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (slot) DO UPDATE SET form = excluded.form, record_id = excluded.record_id, "
                "data = excluded.data, saved_at = excluded.saved_at",
                (slot, form_id, record_id, dumps(dict(data)), ids.now_iso()),
            )

    def all(self) -> list[Autosave]:
        """Every unsaved open form, oldest first."""
        rows = self._db.conn.execute(
            "SELECT slot, form, record_id, data, saved_at FROM autosave ORDER BY saved_at"
        )
        return [Autosave(s, f, r, json.loads(d), t) for s, f, r, d, t in rows]

    def clear(self, slot: str) -> None:
        """Forget an open form's unsaved state (after a save or an explicit discard)."""
        with self._db.transaction():
            self._db.conn.execute("DELETE FROM autosave WHERE slot = ?", (slot,))
