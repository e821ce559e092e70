"""Shared pieces of the device-side sync state (``sync.replica``): a record row as the replica
reads it, the full-state shape the merge rules compare, and the history writer.

Why apart: push, pull and merge all read rows and write history the same way; keeping that here
lets each of them stay one concern without importing each other.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from app.core import ids
from app.core.records import clean, diff, dumps, state_of, stored_base
from app.core.store import Store
from sync.merge import DELETED, STATUS

_RECORD_ROW = "rid, id, form, data, status, deleted, server_version, dirty, base, conflict"


@dataclass
class _Row:
    rid: int
    id: str
    form: str
    data: dict[str, Any]
    status: str
    deleted: bool
    server_version: int | None
    dirty: bool
    base: dict[str, Any] | None
    conflict: list[dict[str, Any]] | None

    def state(self) -> dict[str, Any]:
        """Fields plus the pseudo-fields, the shape the merge rules compare."""
        return state_of(self.data, self.status, self.deleted)


def _split(state: Mapping[str, Any]) -> tuple[dict[str, Any], str, bool]:
    data = clean({k: v for k, v in state.items() if k not in (STATUS, DELETED)})
    return data, str(state.get(STATUS) or "draft"), bool(state.get(DELETED))


def _loads(text: str | None) -> Any:
    return json.loads(text) if text else None


def _fetch(store: Store, record_ids: Iterable[str]) -> dict[str, _Row]:
    out: dict[str, _Row] = {}
    wanted = list(dict.fromkeys(record_ids))
    for start in range(0, len(wanted), 500):
        part = wanted[start : start + 500]
        marks = ",".join("?" * len(part))
        for row in store.conn.execute(
            f"SELECT {_RECORD_ROW} FROM records WHERE id IN ({marks})", part
        ):
            rid, rec_id, form, data, status, deleted, version, dirty, base, conflict = row
            values = json.loads(data)
            out[rec_id] = _Row(
                rid,
                rec_id,
                form,
                values,
                status,
                bool(deleted),
                version,
                bool(dirty),
                stored_base(base, values, status, bool(deleted), version, bool(dirty)),
                _loads(conflict),
            )
    return out


def _fetch_one(store: Store, record_id: str) -> _Row | None:
    return _fetch(store, [record_id]).get(record_id)


def _history(
    store: Store, record_id: str, kind: str, changes: Mapping[str, Any], author: str
) -> None:
    store.conn.execute(
        "INSERT INTO history (record_id, at, author, kind, changes) VALUES (?, ?, ?, ?, ?)",
        (record_id, ids.now_iso(), author, kind, dumps(dict(changes))),
    )


def _changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, list[Any]]:
    """History's field -> [old, new], the pseudo-fields included."""
    return diff(old, new)
