"""Shared pieces of the device-side sync state (``sync.replica``): a record row as the replica
reads it, the full-state shape the merge rules compare, and the history writer.

Why apart: push, pull and merge all read rows and write history the same way; keeping that here
lets each of them stay one concern without importing each other.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from app.core.records import clean, diff
from app.core.store import ReplicaRow, Store
from sync.merge import DELETED, STATUS

_Row = ReplicaRow  # a record row as the replica reads it


def _split(state: Mapping[str, Any]) -> tuple[dict[str, Any], str, bool]:
    data = clean({k: v for k, v in state.items() if k not in (STATUS, DELETED)})
    return data, str(state.get(STATUS) or "draft"), bool(state.get(DELETED))


def _loads(text: str | None) -> Any:
    return json.loads(text) if text else None


def _fetch(store: Store, record_ids: Iterable[str]) -> dict[str, _Row]:
    return store.replica.rows(record_ids)


def _fetch_one(store: Store, record_id: str) -> _Row | None:
    return _fetch(store, [record_id]).get(record_id)


def _history(
    store: Store, record_id: str, kind: str, changes: Mapping[str, Any], author: str
) -> None:
    store.replica.add_history(record_id, kind, changes, author)


def _changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, list[Any]]:
    """History's field -> [old, new], the pseudo-fields included."""
    return diff(old, new)
