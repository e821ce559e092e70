"""Derived data: what a record's values imply for the store's side tables.

Pure functions of (form, values), kept apart from SQLite: the store's writes, bulk inserts
and sync's replica (through ``Store.derive``) must all compute keys, references, search terms
and the person-index row the same way, and they are easy to test without a database.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
    roles = form.roles
    keys = tuple(k for k in (natural_key(form, data, fields) for fields in form.natural_keys) if k)
    refs = tuple((f, str(data[f])) for f in form.reference_fields if data.get(f))
    names = [str(data[f]) for f in roles.name if data.get(f)]
    addresses = [str(data[f]) for f in roles.address if data.get(f)]
    terms = record_terms(
        names,
        [str(data[f]) for f in roles.id if data.get(f)],
        [str(data[f]) for f in roles.phone if data.get(f)],
        addresses,
    )
    person = None
    if names and (roles.birth_date or roles.house):
        pinyin = next((t for t in name_terms(names[0]) if t.isascii()), names[0])
        birth = data.get(roles.birth_date) if roles.birth_date else None
        house = data.get(roles.house) if roles.house else None
        person = (names[0], pinyin, birth, house)
    grid = data.get(roles.grid) if roles.grid else None
    title = form.title_of(data)
    address = address_text(addresses)
    sort = sort_key(title, surname=bool(roles.birth_date))  # a person's title is their name
    return Derived(grid, title, keys, refs, terms, person, address, sort)


def natural_key(form: Form, data: Mapping[str, Any], fields: Sequence[str]) -> str | None:
    """The normalised natural key for one key declaration, or None if a part is empty."""
    parts = []
    for field_id in fields:
        value = data.get(field_id)
        if value is None or str(value).strip() == "":
            return None
        parts.append(normalize_key(str(value)))
    return "|".join(parts)
