"""Read-only list queries (no Qt here): pages, search, counts and the status bar's counts.

Widgets never talk SQL (DESIGN.md); these functions do, over a ``Store``'s connection, and
return plain dataclasses. They are written for the 1.63 M-record demo: lists page by keyset
(sort key, id) so page 5000 costs what page 1 costs, search is an FTS5 prefix query stopped by
LIMIT, and nothing here counts a whole table on the UI thread's behalf unless asked (counts
are for background tasks).

Part of ``app.core.store.browse`` (import it from there).
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from app.core.forms import Form
from app.core.records import Summary
from app.core.search import fts_query, mixes_digits_and_han
from app.core.store import driver, places
from app.core.store.outbox import OutboxState
from app.core.store.store import Store

HOUSE_FORM = "house"
MAX_MERGED_GRIDS = 64  # above this a scope's grids are read with one IN query
FEW_DIRTY = 20_000  # up to this many unsynced records, the dirty filter sorts them itself

# Indexes these queries are written for. Until a migration adds them, rare filters and whole-
# form counts read the table sequentially (NOT INDEXED), which beats walking the title index
# with a table lookup per row by about ten times on the 1.63 M-record demo.


class TooSlow(Exception):
    """A query ran past its time budget and was stopped (run it off the UI thread instead)."""


@contextmanager
def time_budget(store: Store, seconds: float | None) -> Iterator[None]:
    """Stop the store's queries inside the block after ``seconds`` (raising ``TooSlow``).

    The UI thread runs list queries under a budget so a broad search or a rare filter can
    never freeze the window; what runs over is redone in a background task.
    """
    if seconds is None:
        yield
        return
    deadline = time.perf_counter() + seconds
    store.conn.set_progress_handler(lambda: int(time.perf_counter() > deadline), 2000)
    try:
        yield
    except driver.OperationalError as exc:
        if "interrupt" in str(exc):
            raise TooSlow from None
        raise
    finally:
        store.conn.set_progress_handler(None, 0)


def has_index(store: Store, name: str) -> bool:
    """Whether the store has an index of this name (the proposed ones may not exist yet)."""
    row = store.conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", (name,)
    ).fetchone()
    return row is not None


def _table_hint(store: Store, filters: Filters) -> str:
    """How to read ``records`` for these filters when the title index would be a bad walk.

    - changed since the last sync, when few records are: through the partial dirty index,
      then sort those few (walking 1.6 M titles to find none took 13 s on the demo);
    - conflict / suspected duplicate without their partial index: a sequential scan, ten
      times cheaper than a title-index walk with a table read per row.
    """
    if filters.dirty and has_index(store, "records_dirty") and _few_dirty(store):
        return "INDEXED BY records_dirty"
    if filters.conflict and not has_index(store, "records_conflicted"):
        return "NOT INDEXED"
    if filters.dup and not has_index(store, "records_suspected"):
        return "NOT INDEXED"
    return ""


def _few_dirty(store: Store) -> bool:
    """Whether at most ``FEW_DIRTY`` records wait for sync (a bounded partial-index count)."""
    row = store.conn.execute(
        "SELECT count(*) FROM (SELECT 1 FROM records WHERE dirty = 1 LIMIT ?)", (FEW_DIRTY + 1,)
    ).fetchone()
    return int(row[0]) <= FEW_DIRTY


_SUMMARY_SQL = (
    "r.id, r.form, r.title, r.grid, r.status, r.dirty, r.conflict IS NOT NULL, r.dup_state, "
    "r.updated_at, r.sort_key"
)


@dataclass(frozen=True)
class Scope:
    """Where lists look: everything, some grids (a community or one grid), or one building.

    ``building`` needs exactly one grid; ``""`` means houses with no building filled in.
    """

    grids: tuple[str, ...] | None = None
    building: str | None = None

    @property
    def grid(self) -> str | None:
        """The single grid of the scope, if it has exactly one."""
        return self.grids[0] if self.grids and len(self.grids) == 1 else None


@dataclass(frozen=True)
class Filters:
    """List filters; ``None`` means "don't care". They combine with AND."""

    status: str | None = None  # "draft" | "complete"
    dirty: bool | None = None  # changed since the last sync
    conflict: bool | None = None
    dup: bool | None = None  # suspected duplicate


# -- lists ---------------------------------------------------------------------------------


def house_ref_field(form: Form) -> str | None:
    """The field linking a record of ``form`` to its house (role, else a reference to house)."""
    if form.roles.house:
        return form.roles.house
    return next(
        (f.id for f in form.fields.values() if f.type == "reference" and f.target == HOUSE_FORM),
        None,
    )


def _where(
    store: Store, form: str | None, scope: Scope, filters: Filters, alias: str = "r"
) -> tuple[str, list[Any]]:
    """SQL conditions (on ``records`` as ``alias``) for a form, scope and filters."""
    a = alias
    clauses, args = [f"{a}.deleted = 0"], []
    if form:
        clauses.append(f"{a}.form = ?")
        args.append(form)
    if scope.grids is not None:
        if len(scope.grids) == 1:
            clauses.append(f"{a}.grid = ?")
        else:
            clauses.append(f"{a}.grid IN ({','.join('?' * len(scope.grids))})")
        args.extend(scope.grids)
    if scope.building is not None and form and scope.grid:
        cond, more = _building_clause(store, form, scope.grid, scope.building, a)
        clauses.append(cond)
        args.extend(more)
    if filters.status is not None:
        clauses.append(f"{a}.status = ?")
        args.append(filters.status)
    if filters.dirty is not None:
        clauses.append(f"{a}.dirty = {1 if filters.dirty else 0}")
    if filters.conflict is not None:
        clauses.append(f"{a}.conflict IS {'NOT ' if filters.conflict else ''}NULL")
    if filters.dup is not None:
        clauses.append(
            f"{a}.dup_state = 'suspected'"
            if filters.dup
            else f"({a}.dup_state IS NULL OR {a}.dup_state != 'suspected')"
        )
    return " AND ".join(clauses), args


def _building_value(alias: str, field: str | None) -> str:
    """SQL for a record's building (the form's ``building`` role), '' when it has none."""
    if not field:
        return "''"
    return f"coalesce(json_extract({alias}.data, '$.{field}'), '')"


def _house_building(store: Store) -> str | None:
    return store.formset.form(HOUSE_FORM).roles.building


def _building_clause(
    store: Store, form_id: str, grid: str, building: str, a: str
) -> tuple[str, list[Any]]:
    """Records in one building: by their own building field, else through their house link."""
    form = store.formset.form(form_id)
    if form.roles.building:
        return f"{_building_value(a, form.roles.building)} = ?", [building]
    ref = house_ref_field(form)
    if ref is None:
        return "1 = 1", []
    return (
        f"{a}.id IN (SELECT f.src FROM refs f JOIN records h ON h.id = f.dst "
        f"WHERE f.field = ? AND h.form = ? AND h.grid = ? AND h.deleted = 0 "
        f"AND {_building_value('h', _house_building(store))} = ?)",
        [ref, HOUSE_FORM, grid, building],
    )


def _summaries(rows: Sequence[Sequence[Any]]) -> list[Summary]:
    return [
        Summary(i, f, t, g, s, bool(d), bool(c), dup, u, k)
        for i, f, t, g, s, d, c, dup, u, k in rows
    ]


def page(
    store: Store,
    form: str,
    scope: Scope = Scope(),
    filters: Filters = Filters(),
    *,
    after: tuple[str, str] | None = None,
    limit: int = 200,
) -> list[Summary]:
    """One page of a list in list order (sort key, id), starting after ``after`` = (sort key,
    id) of the last row shown (keyset paging; the key: names by pinyin, rooms by number).

    A scope of several grids (a community) is read grid by grid, each an index range on
    (form, grid, title), and merged: one ``grid IN (...)`` query would walk the whole form's
    title index instead.
    """
    if scope.grids is not None and 1 < len(scope.grids) <= MAX_MERGED_GRIDS:
        per_grid = (
            page(store, form, Scope(grids=(g,)), filters, after=after, limit=limit)
            for g in scope.grids
        )
        return list(heapq.merge(*per_grid, key=lambda s: (s.sort_key, s.id)))[:limit]
    where, args = _where(store, form, scope, filters)
    if after is not None:
        where += " AND r.sort_key >= ? AND (r.sort_key > ? OR r.id > ?)"
        args.extend((after[0], after[0], after[1]))
    hint = _table_hint(store, filters)
    sql = f"SELECT {_SUMMARY_SQL} FROM records r {hint} WHERE {where} ORDER BY r.sort_key, r.id LIMIT ?"
    return _summaries(store.conn.execute(sql, (*args, limit)).fetchall())


def search(
    store: Store,
    text: str,
    form: str | None = None,
    scope: Scope = Scope(),
    filters: Filters = Filters(),
    *,
    offset: int = 0,
    limit: int = 200,
) -> list[Summary]:
    """Search-as-you-type within a scope and filters (name, pinyin, ID/phone tail, address).

    Records whose address holds the typed run come first, nearest first (``places``); then
    term matches in index order (stopping at ``limit`` keeps a one-letter query fast on
    millions of rows); ``offset`` pages through both.
    """
    where, args = _where(store, form, scope, filters)
    near = places.matches(store.conn, text, _SUMMARY_SQL, where, args, offset, limit)
    if near is None:
        return _summaries(_term_matches(store, text, where, args, offset, limit))
    rows = list(near.rows)
    if len(rows) < limit and not mixes_digits_and_han(text):  # else an address, not a name
        more = _term_matches(
            store,
            text,
            f"{where} AND {near.skip}",
            [*args, *near.skip_args],
            max(0, offset - near.total),
            limit - len(rows),
        )
        rows.extend(more)
    return _summaries(rows)


def _term_matches(
    store: Store, text: str, where: str, args: list[Any], offset: int, limit: int
) -> list[Any]:
    """Rows whose search terms match (names, pinyin, number tails, address words)."""
    query = fts_query(text)
    if query is None:
        return []
    sql = (
        # CROSS JOIN keeps the FTS index as the outer loop: with a plain JOIN and a form
        # filter SQLite walks every record of the form and probes the index for each.
        f"SELECT {_SUMMARY_SQL} FROM search CROSS JOIN records r ON r.rid = search.rowid "
        f"WHERE search MATCH ? AND {where} LIMIT ? OFFSET ?"
    )
    return store.conn.execute(sql, (query, *args, limit, offset)).fetchall()


def count(
    store: Store, form: str | None = None, scope: Scope = Scope(), filters: Filters = Filters()
) -> int:
    """How many records a list has (a full index scan on big stores: call it off the UI)."""
    where, args = _where(store, form, scope, filters)
    hint = _table_hint(store, filters)
    sql = f"SELECT count(*) FROM records r {hint} WHERE {where}"
    return int(store.conn.execute(sql, args).fetchone()[0])


def count_forms(
    store: Store, forms: Sequence[str], scope: Scope = Scope(), filters: Filters = Filters()
) -> dict[str, int]:
    """Totals per form for tab titles (background work: may scan the table).

    Over the whole store one sequential scan counts every form at once; without an index
    holding ``deleted``, the per-form index walk costs a random table read per record.
    """
    hint = _table_hint(store, filters)
    by_index = hint.startswith("INDEXED BY")
    if scope.grids is not None or by_index or has_index(store, "records_live_sort"):
        return {form: count(store, form, scope, filters) for form in forms}
    where, args = _where(store, None, scope, filters)
    marks = ",".join("?" * len(forms))
    rows = store.conn.execute(
        f"SELECT r.form, count(*) FROM records r NOT INDEXED WHERE {where} "
        f"AND r.form IN ({marks}) GROUP BY r.form",
        (*args, *forms),
    )
    found = dict(rows.fetchall())
    return {form: int(found.get(form, 0)) for form in forms}


def summary(store: Store, record_id: str) -> Summary | None:
    """One record's list row (after a save, to refresh it in place); None if gone."""
    rows = store.conn.execute(
        f"SELECT {_SUMMARY_SQL} FROM records r WHERE r.id = ? AND r.deleted = 0", (record_id,)
    ).fetchall()
    return _summaries(rows)[0] if rows else None


# -- status bar ----------------------------------------------------------------------------


def pending_count(store: Store) -> int:
    """Outbox ops waiting for sync (an index range count, not a load of the ops)."""
    row = store.conn.execute(
        f"SELECT count(*) FROM outbox WHERE state = '{OutboxState.PENDING.value}'"
    ).fetchone()
    return int(row[0])


def conflict_count(store: Store) -> int:
    """Live records with an unresolved sync conflict."""
    row = store.conn.execute(
        "SELECT count(*) FROM records WHERE conflict IS NOT NULL AND deleted = 0"
    ).fetchone()
    return int(row[0])
