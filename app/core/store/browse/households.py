"""The navigation tree (communities, grids, buildings, houses) and the household view.

Field meaning comes from the form files where they say it (roles, reference targets, the
``household_relation`` code table). Two meanings have no role yet and are named once here:
the house's building and a resident's move-out date come from the forms' ``building`` and
``moved_out`` roles.

Part of ``app.core.store.browse`` (import it from there).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from app.core.forms import Form, FormSet
from app.core.records import Record, Summary
from app.core.store.browse.lists import (
    HOUSE_FORM,
    _building_value,
    _house_building,
    house_ref_field,
    summary,
)
from app.core.store.store import Store

RELATION_TABLE = "household_relation"  # GB/T 4761: the field using this table is 与户主关系
HEAD_CODE = "02"  # 户主
HEAD_CODES = frozenset({"01", "02", "03"})  # 本人 / 户主 / 小集体户户主 all mark the head
RESIDENT_FORM, UNIT_FORM = "resident", "unit"


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
    moved_out_reason: str | None = None
    moved_out_to: str | None = None


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
        moved_out_reason=resident.roles.moved_out_reason,
        moved_out_to=resident.roles.moved_out_to,
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
