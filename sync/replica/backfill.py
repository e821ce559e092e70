"""Grids that entered this device's scope: fetching the records its cursor had passed.

Part of ``sync.replica``. A pull page may name grids in ``entered`` (PROTOCOL.md §8): the user
was given the grid (or it moved into their community) after the device's cursor passed the
numbers of the grid's records. The names are kept in the store's meta table in the same local
transaction as the page that carried them, and each grid is then fetched page by page
(``GET /v1/pull?grid=&upto=``) through ``apply_pull``, the code that applies every pulled page;
each page's own cursor is stored in the same transaction as its rows, so a dropped link resumes
where it stopped, and the main cursor is left as it was.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from app.core.store import Store
from sync.protocol import EnteredGrid, PullResponse
from sync.replica.pull import CURSOR_KEY, PullTally, apply_pull
from sync.replica.push import requeue_entered

BACKFILL_KEY = "sync_backfill"  # {"scope": ..., "grids": {grid: {"upto": U, "after": A}}}


@dataclass(frozen=True)
class Pending:
    """A grid still to fetch: its records numbered in ``(after, upto]``."""

    grid: str
    upto: int
    after: int


def _load(store: Store, scope: str) -> dict[str, dict[str, int]]:
    raw = store.meta(BACKFILL_KEY)
    if not raw:
        return {}
    state = json.loads(raw)
    if state.get("scope") != scope:  # another server or user: their grids mean nothing here
        return {}
    return {
        g: {"upto": int(v["upto"]), "after": int(v["after"])} for g, v in state["grids"].items()
    }


def _save(store: Store, scope: str, grids: dict[str, dict[str, int]]) -> None:
    store.set_meta(BACKFILL_KEY, json.dumps({"scope": scope, "grids": grids}, sort_keys=True))


def note(store: Store, scope: str, entered: Sequence[EnteredGrid]) -> int:
    """Remember grids a page names as entered; call in the page's transaction.

    A grid named again (taken away and given back meanwhile) starts over from its first
    record: changes made while it was away did not reach this device."""
    if not entered:
        return 0
    grids = _load(store, scope)
    for e in entered:
        old = grids.get(e.grid)
        grids[e.grid] = {"upto": max(e.upto, old["upto"] if old else 0), "after": 0}
    _save(store, scope, grids)
    return len(entered)


def pending(store: Store, scope: str) -> list[Pending]:
    """Grids still to fetch for this scope, in code order."""
    grids = _load(store, scope)
    return [Pending(g, v["upto"], v["after"]) for g, v in sorted(grids.items())]


def clear(store: Store) -> None:
    """Forget every grid still to fetch: a pull from the start brings the whole scope."""
    store.set_meta(BACKFILL_KEY, "")


def apply_page(store: Store, scope: str, grid: str, page: PullResponse) -> PullTally:
    """Apply one page of ``grid`` with its own cursor, in one transaction; the main cursor
    (which ``apply_pull`` moves to the page's) is put back as it was. The last page also
    queues again the ops the platform refused as ``out_of_scope`` for the grid's records
    (``push.requeue_entered``; ``tally.requeued``): the grid is the user's again."""
    with store.transaction():
        main = store.meta(CURSOR_KEY, "0") or "0"
        tally = apply_pull(store, page, scope)
        store.set_meta(CURSOR_KEY, main)
        grids = _load(store, scope)
        if page.more and grid in grids:
            grids[grid]["after"] = page.cursor
        else:
            grids.pop(grid, None)
            tally.requeued = requeue_entered(store, grid)
        _save(store, scope, grids)
    return tally
