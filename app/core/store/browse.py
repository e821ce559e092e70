"""Read-only queries the desktop lists, tree and household view need (no Qt here).

Widgets never talk SQL (DESIGN.md); these functions do, over a ``Store``'s connection, and
return plain dataclasses. They are written for the 1.63 M-record demo: lists page by keyset
(title, id) so page 5000 costs what page 1 costs, search is an FTS5 prefix query stopped by
LIMIT, and nothing here counts a whole table on the UI thread's behalf unless asked (counts
are for background tasks).

Field meaning comes from the form files where they say it (roles, reference targets, the
``household_relation`` code table). Two meanings have no role yet and are named once here:
the house's building and a resident's move-out date come from the forms' ``building`` and
``moved_out`` roles.
"""

from __future__ import annotations

import heapq
import re
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from app.core.forms import Form, FormSet
from app.core.records import Record, Summary
from app.core.search import fts_query
from app.core.store import Store

RELATION_TABLE = "household_relation"  # GB/T 4761: the field using this table is 与户主关系
HEAD_CODE = "02"  # 户主
HEAD_CODES = frozenset({"01", "02", "03"})  # 本人 / 户主 / 小集体户户主 all mark the head
RESIDENT_FORM, HOUSE_FORM, UNIT_FORM = "resident", "house", "unit"
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
    except sqlite3.OperationalError as exc:
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
    "r.updated_at"
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


@dataclass(frozen=True)
class Community:
    """A community (社区) and its grids, from the grid table."""

    code: str
    name: str
    grids: tuple[tuple[str, str], ...]  # (grid code, grid name)


@dataclass(frozen=True)
class Building:
    """A building in a grid: its name (``""`` for houses without one) and house count."""

    name: str
    houses: int


@dataclass(frozen=True)
class HouseNode:
    """A house as the navigation tree shows it."""

    id: str
    title: str


@dataclass(frozen=True)
class HouseholdFields:
    """The resident fields the household view reads and writes, resolved from the forms."""

    house_ref: str
    relation: str | None
    moved_out: str | None
    address: str | None
    grid: str | None
    house_address: str | None
    house_grid: str | None


@dataclass(frozen=True)
class Member:
    """One resident of a house as the household view lists them."""

    id: str
    title: str
    relation: str | None
    moved_out_on: str | None
    gender: str | None
    birth_date: str | None
    status: str

    @property
    def is_head(self) -> bool:
        return self.relation in HEAD_CODES and not self.moved_out_on


@dataclass
class Household:
    """A house with the residents and units that point at it."""

    house: Record
    members: list[Member] = field(default_factory=list)
    units: list[Summary] = field(default_factory=list)

    @property
    def heads(self) -> list[Member]:
        return [m for m in self.members if m.is_head]


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
        Summary(i, f, t, g, s, bool(d), bool(c), dup, u) for i, f, t, g, s, d, c, dup, u in rows
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
    """One page of a list ordered by (title, id), starting after ``after`` (keyset paging).

    A scope of several grids (a community) is read grid by grid, each an index range on
    (form, grid, title), and merged: one ``grid IN (...)`` query would walk the whole form's
    title index instead.
    """
    if scope.grids is not None and 1 < len(scope.grids) <= MAX_MERGED_GRIDS:
        per_grid = (
            page(store, form, Scope(grids=(g,)), filters, after=after, limit=limit)
            for g in scope.grids
        )
        return list(heapq.merge(*per_grid, key=lambda s: (s.title, s.id)))[:limit]
    where, args = _where(store, form, scope, filters)
    if after is not None:
        where += " AND r.title >= ? AND (r.title > ? OR r.id > ?)"
        args.extend((after[0], after[0], after[1]))
    hint = _table_hint(store, filters)
    sql = (
        f"SELECT {_SUMMARY_SQL} FROM records r {hint} WHERE {where} ORDER BY r.title, r.id LIMIT ?"
    )
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

    Results come in index order (stopping at ``limit`` keeps a one-letter query fast on
    millions of rows); ``offset`` pages further.
    """
    query = fts_query(text)
    if query is None:
        return []
    where, args = _where(store, form, scope, filters)
    sql = (
        # CROSS JOIN keeps the FTS index as the outer loop: with a plain JOIN and a form
        # filter SQLite walks every record of the form and probes the index for each.
        f"SELECT {_SUMMARY_SQL} FROM search CROSS JOIN records r ON r.rid = search.rowid "
        f"WHERE search MATCH ? AND {where} LIMIT ? OFFSET ?"
    )
    return _summaries(store.conn.execute(sql, (query, *args, limit, offset)).fetchall())


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
    if scope.grids is not None or by_index or has_index(store, "records_live_title"):
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
    row = store.conn.execute("SELECT count(*) FROM outbox WHERE state = 'pending'").fetchone()
    return int(row[0])


def conflict_count(store: Store) -> int:
    """Live records with an unresolved sync conflict."""
    row = store.conn.execute(
        "SELECT count(*) FROM records WHERE conflict IS NOT NULL AND deleted = 0"
    ).fetchone()
    return int(row[0])


# -- navigation tree -----------------------------------------------------------------------


def communities(store: Store) -> list[Community]:
    """Communities with their grids, from the grid table (small: a few hundred rows)."""
    out: dict[str, tuple[str, list[tuple[str, str]]]] = {}
    for grid in store.grids():
        name, grids = out.setdefault(grid.community_code, (grid.community_name, []))
        grids.append((grid.code, grid.name))
    return [Community(code, name, tuple(grids)) for code, (name, grids) in out.items()]


def undefined_grids(store: Store, form: str = HOUSE_FORM) -> list[str]:
    """Grid codes used by records of ``form`` but missing from the grid table (imports)."""
    rows = store.conn.execute(
        "SELECT DISTINCT grid FROM records WHERE form = ? AND grid IS NOT NULL AND deleted = 0 "
        "AND grid NOT IN (SELECT code FROM grids) ORDER BY grid",
        (form,),
    )
    return [r[0] for r in rows]


def buildings(store: Store, grid: str) -> list[Building]:
    """Buildings of a grid's houses in natural order ("2栋" before "10栋")."""
    rows = store.conn.execute(
        f"SELECT {_building_value('r', _house_building(store))} AS b, count(*) FROM records r "
        "WHERE r.form = ? AND r.grid = ? AND r.deleted = 0 GROUP BY b",
        (HOUSE_FORM, grid),
    ).fetchall()
    return sorted(
        (Building(b, n) for b, n in rows), key=lambda b: (b.name == "", natural_key(b.name))
    )


def houses(store: Store, grid: str, building: str) -> list[HouseNode]:
    """Houses of one building in a grid, in natural order of their addresses (501室 < 1201室)."""
    rows = store.conn.execute(
        "SELECT r.id, r.title FROM records r "
        "WHERE r.form = ? AND r.grid = ? AND r.deleted = 0 AND "
        f"{_building_value('r', _house_building(store))} = ?",
        (HOUSE_FORM, grid, building),
    ).fetchall()
    return sorted((HouseNode(i, t) for i, t in rows), key=lambda h: (natural_key(h.title), h.id))


def natural_key(text: str) -> tuple[tuple[int, Any], ...]:
    """Sort key that orders embedded numbers by value: 2栋 < 10栋, 501室 < 1201室."""
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", text) if part
    )


# -- household -----------------------------------------------------------------------------


def household_fields(formset: FormSet) -> HouseholdFields:
    """Resolve the resident/house fields a household needs from the form files."""
    resident, house = formset.form(RESIDENT_FORM), formset.form(HOUSE_FORM)
    ref = house_ref_field(resident)
    if ref is None:
        raise LookupError("the resident form has no reference to a house")
    relation = next((f.id for f in resident.fields.values() if f.codes == RELATION_TABLE), None)
    return HouseholdFields(
        house_ref=ref,
        relation=relation,
        moved_out=resident.roles.moved_out,
        address=resident.roles.address[0] if resident.roles.address else None,
        grid=resident.roles.grid,
        house_address=house.roles.address[0] if house.roles.address else None,
        house_grid=house.roles.grid,
    )


def _gender_and_birth(form: Form) -> tuple[str | None, str | None]:
    birth = form.roles.birth_date
    gender = next((f.id for f in form.fields.values() if f.codes == "gender"), None)
    return gender, birth


def household(store: Store, house_id: str, *, include_moved_out: bool = False) -> Household:
    """A house, its residents (current only unless asked) and its units."""
    house = store.get(house_id)
    if house is None or house.deleted:
        raise KeyError(house_id)
    hf = household_fields(store.formset)
    gender, birth = _gender_and_birth(store.formset.form(RESIDENT_FORM))
    result = Household(house)
    for record in _records(store, store.referrers(house_id, hf.house_ref)):
        if record.form != RESIDENT_FORM:
            continue
        d = record.data
        moved = str(d[hf.moved_out]) if hf.moved_out and d.get(hf.moved_out) else None
        if moved and not include_moved_out:
            continue
        result.members.append(
            Member(
                record.id,
                record.title,
                d.get(hf.relation) if hf.relation else None,
                moved,
                d.get(gender) if gender else None,
                d.get(birth) if birth else None,
                record.status,
            )
        )
    result.members.sort(
        key=lambda m: (
            not m.is_head,
            m.moved_out_on is not None,
            m.relation or "99",
            m.birth_date or "",
        )
    )
    unit_ref = house_ref_field(store.formset.form(UNIT_FORM))
    if unit_ref:
        unit_ids = store.referrers(house_id, unit_ref)
        result.units = [
            s for s in (summary(store, i) for i in unit_ids) if s and s.form == UNIT_FORM
        ]
    return result


def _records(store: Store, ids: Sequence[str]) -> list[Record]:
    return [r for r in (store.get(i) for i in ids) if r is not None and not r.deleted]


def grid_names(store: Store) -> dict[str, str]:
    """Grid code -> name, for showing grids by name."""
    return {g.code: g.name for g in store.grids()}
