"""Derived data: what a record's values imply for the store's side tables.

Pure functions of (form, values), kept apart from SQLite: the store's writes, bulk inserts
and sync's replica (through ``Store.derive``) must all compute keys, references, search terms
and the person-index row the same way, and they are easy to test without a database.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from app.core.forms import Form
from app.core.naturalkeys import Part, key_of, parts_of
from app.core.search import address_text, name_terms, record_terms
from app.core.sortkey import sort_key


class Derived(NamedTuple):
    """Everything a record's values imply for the side tables.

    A named tuple, not a frozen dataclass: a pulled page makes one per record, and a frozen
    dataclass sets each of its eight fields through ``object.__setattr__`` (2 % of the device's
    CPU in a 10 k pull, ``tests/bench/bench_pull_device.py``)."""

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

    keys: tuple[tuple[Part, ...], ...]  # each declaration's fields and ID flags
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
        tuple(parts_of(form, fields) for fields in form.natural_keys),
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
    keys_of = _keys_of(plan.keys)
    names_f, ids_f, phones_f, addresses_f, refs_f = (
        plan.names,
        plan.ids,
        plan.phones,
        plan.addresses,
        plan.refs,
    )
    person_f, birth_f, house_f, grid_f, surname = (
        plan.person,
        plan.birth,
        plan.house,
        plan.grid,
        plan.surname,
    )
    out: list[Derived] = []
    append = out.append
    for data in page:
        get = data.get
        names = [str(v) for f in names_f if (v := get(f))]
        addresses = [str(v) for f in addresses_f if (v := get(f))]
        terms = record_terms(
            names,
            [str(v) for f in ids_f if (v := get(f))],
            [str(v) for f in phones_f if (v := get(f))],
            addresses,
        )
        person = None
        if names and person_f:
            pinyin = names[0]
            for term in name_terms(pinyin):  # the first Latin term: the full pinyin
                if term.isascii():
                    pinyin = term
                    break
            person = (
                names[0],
                pinyin,
                get(birth_f) if birth_f else None,
                get(house_f) if house_f else None,
            )
        title = title_of(data)
        append(
            Derived(
                get(grid_f) if grid_f else None,
                title,
                keys_of(get),
                tuple([(f, str(v)) for f in refs_f if (v := get(f))]),
                terms,
                person,
                address_text(addresses),
                sort_key(title, surname),  # a person's title is their name
            )
        )
    return out


def _keys_of(
    declarations: tuple[tuple[Part, ...], ...],
) -> Callable[[Callable[[str], Any]], tuple[str, ...]]:
    """The natural keys of one record (``key_of`` each declaration, the empty ones left out),
    as a function of its values' ``get``: a form's usual single declaration is one call."""
    if len(declarations) == 1:
        (parts,) = declarations

        def one(get: Callable[[str], Any]) -> tuple[str, ...]:
            key = key_of(get, parts)
            return (key,) if key else ()

        return one
    return lambda get: tuple([k for parts in declarations if (k := key_of(get, parts))])


def natural_key(form: Form, data: Mapping[str, Any], fields: Sequence[str]) -> str | None:
    """The natural key for one key declaration, or None if a part is empty
    (``app.core.naturalkeys``: the platform makes its keys by the same rule)."""
    return key_of(data.get, parts_of(form, fields))
