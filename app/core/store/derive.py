"""Derived data: what a record's values imply for the store's side tables.

Pure functions of (form, values), kept apart from SQLite: the store's writes, bulk inserts
and sync's replica (through ``Store.derive``) must all compute keys, references, search terms
and the person-index row the same way, and they are easy to test without a database.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.core.forms import Form
from app.core.search import address_text, name_terms, record_terms
from app.core.sortkey import sort_key
from app.core.textnorm import normalize_key


@dataclass(frozen=True)
class Derived:
    """Everything a record's values imply for the side tables."""

    grid: str | None
    title: str
    keys: tuple[str, ...]
    refs: tuple[tuple[str, str], ...]
    terms: str
    person: tuple[str, str, str | None, str | None] | None
    address: tuple[str, str, str] | None = None  # (text, initials, word starts): trigram index
    sort: str = ""  # the list order (``app.core.sortkey``): pinyin, numbers by value


def derive(form: Form, data: Mapping[str, Any]) -> Derived:
    """Keys, references, search terms and person-index row implied by the values."""
    return derive_page(form, (data,))[0]


@dataclass(frozen=True)
class _Plan:
    """What a form's declarations say ``derive`` reads, looked up once per form and page: a
    pulled page of 1 000 residents read the same roles, key declarations and reference
    fields a thousand times (with the per-record calls around them, 6-9 % of the device's
    CPU in a 10 k pull: ``tests/bench/bench_pull_device.py``)."""

    keys: tuple[tuple[str, ...], ...]
    refs: tuple[str, ...]
    names: tuple[str, ...]
    ids: tuple[str, ...]
    phones: tuple[str, ...]
    addresses: tuple[str, ...]
    birth: str | None
    house: str | None
    grid: str | None
    person: bool  # names make a person-index row
    surname: bool  # the title is a person's name (``sort_key``)


_PLANS: weakref.WeakKeyDictionary[Form, _Plan] = weakref.WeakKeyDictionary()


def _plan(form: Form) -> _Plan:
    """The form's plan, kept while the form lives (a test process loads many form sets)."""
    known = _PLANS.get(form)
    if known is not None:
        return known
    roles = form.roles
    plan = _Plan(
        form.natural_keys,
        form.reference_fields,
        roles.name,
        roles.id,
        roles.phone,
        roles.address,
        roles.birth_date,
        roles.house,
        roles.grid,
        bool(roles.birth_date or roles.house),
        bool(roles.birth_date),
    )
    _PLANS[form] = plan
    return plan


def derive_page(form: Form, page: Iterable[Mapping[str, Any]]) -> list[Derived]:
    """``derive`` of each record of one form, in order (a pulled page of records new to the
    device): the form's plan is read once for the page. The one implementation: ``derive``
    is this for a page of one."""
    plan = _plan(form)
    title_of = form.title_of
    out: list[Derived] = []
    for data in page:
        get = data.get
        keys = tuple(k for k in (_key(get, fields) for fields in plan.keys) if k)
        refs = tuple((f, str(v)) for f in plan.refs if (v := get(f)))
        names = [str(v) for f in plan.names if (v := get(f))]
        addresses = [str(v) for f in plan.addresses if (v := get(f))]
        terms = record_terms(
            names,
            [str(v) for f in plan.ids if (v := get(f))],
            [str(v) for f in plan.phones if (v := get(f))],
            addresses,
        )
        person = None
        if names and plan.person:
            pinyin = next((t for t in name_terms(names[0]) if t.isascii()), names[0])
            birth = get(plan.birth) if plan.birth else None
            house = get(plan.house) if plan.house else None
            person = (names[0], pinyin, birth, house)
        grid = get(plan.grid) if plan.grid else None
        title = title_of(data)
        address = address_text(addresses)
        sort = sort_key(title, surname=plan.surname)  # a person's title is their name
        out.append(Derived(grid, title, keys, refs, terms, person, address, sort))
    return out


def natural_key(form: Form, data: Mapping[str, Any], fields: Sequence[str]) -> str | None:
    """The normalised natural key for one key declaration, or None if a part is empty."""
    return _key(data.get, fields)


def _key(get: Callable[[str], Any], fields: Sequence[str]) -> str | None:
    parts = []
    for field_id in fields:
        value = get(field_id)
        if value is None:
            return None
        text = str(value)
        if not text.strip():
            return None
        parts.append(normalize_key(text))
    return "|".join(parts)
