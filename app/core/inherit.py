"""What a new record already knows from the house it is in and the household it joins.

Why: a worker adding a member to a household retyped the house's address, area and grid and
the head's register number, ID number, name and phone and the register's own address.
Everything here goes through the forms' roles (``house``, ``grid``, ``address``, ``region``,
``household_number``, ``head_id``, ``head_name``, ``head_phone``, ``household``), never
field names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from app.core.forms import Form, FormSet
from app.core.records import Record, is_empty


def from_house(
    formset: FormSet, form: Form, house: Record, neighbours: Iterable[Record] = ()
) -> dict[str, Any]:
    """Values a new record of ``form`` in ``house`` starts with: the link, the house's grid
    and address, and the area (现住地) its residents give, else the county of its grid."""
    roles, house_roles = form.roles, formset.form(house.form).roles
    values: dict[str, Any] = {}
    if roles.house:
        values[roles.house] = house.id
    if roles.grid and house.grid:
        values[roles.grid] = house.grid
    address = _first(house.data, house_roles.address)
    if roles.address and address:
        values[roles.address[0]] = address
    if roles.region:
        region = next(
            (r.data[roles.region] for r in neighbours if not is_empty(r.data.get(roles.region))),
            None,
        )
        values[roles.region] = region or _county_of(formset, form, roles.region, house.grid)
    return {k: v for k, v in values.items() if not is_empty(v)}


def from_head(form: Form, head: Record) -> dict[str, Any]:
    """Values a new member of ``head``'s household starts with: the register's number, the
    head's ID number, name and phone (from the head's own fields), and what one register
    gives all its members (``roles.household``: 人口类型, 户籍地, 户籍详址…)."""
    roles, data = form.roles, head.data
    pairs = (
        (roles.household_number, data.get(roles.household_number or "")),
        (roles.head_id, _first(data, roles.id)),
        (roles.head_name, _first(data, roles.name)),
        (roles.head_phone, _first(data, roles.phone)),
    )
    shared = [(f, data.get(f)) for f in roles.household]
    return {target: value for target, value in (*pairs, *shared) if target and not is_empty(value)}


def fill_empty(current: Mapping[str, Any], inherited: Mapping[str, Any]) -> dict[str, Any]:
    """The inherited values whose fields are still empty in ``current``."""
    return {k: v for k, v in inherited.items() if is_empty(current.get(k))}


def _first(data: Mapping[str, Any], fields: Iterable[str]) -> Any:
    return next((data[f] for f in fields if not is_empty(data.get(f))), None)


def _county_of(formset: FormSet, form: Form, field_id: str, grid: str | None) -> str | None:
    """The county a grid code starts with, when it is a current code of the field's table."""
    if not grid or field_id not in form.fields:
        return None
    table = formset.table(form.fields[field_id].codes or "")
    known = table.codes.get(grid[:6])
    return known.code if known is not None and not known.historical else None
