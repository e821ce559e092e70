"""Natural keys: the one rule that makes a record's key from its values, for the device's
duplicate guard and store (``store.derive``) and the platform's de-duplication
(``sync.server.rows``, ``sync.server.fresh``) alike.

A key is its declaration's parts, each normalised by its field's type, joined by "|". Text
goes through ``normalize_key`` (case, full-width, spaces); an ID number also through
``idnumber.key_form``, so a first-generation 15-digit number and its 18-digit form are one key.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from app.core.forms import Form
from app.core.textnorm import normalize_key

__all__ = ["Part", "key_of", "part_rule", "parts_of"]

Part = Callable[[str], str]  # one part's text -> its form in the key


def _id_number(text: str) -> str:
    """``idnumber.key_form``; only a 15-character number needs it, and only then is it
    loaded (with stdnum: 16 ms the store's import, the headless sync's, does not pay)."""
    number = normalize_key(text)
    if len(number) != 15:
        return number
    from app.core.idnumber import key_form

    return key_form(number)


_BY_TYPE: dict[str, Part] = {"id_number": _id_number}


def part_rule(form: Form, field_id: str) -> Part:
    """How the value of ``field_id`` is normalised in a key (by the field's type)."""
    fld = form.fields.get(field_id)
    return _BY_TYPE.get(fld.type, normalize_key) if fld is not None else normalize_key


def parts_of(form: Form, fields: Sequence[str]) -> tuple[tuple[str, Part], ...]:
    """Each field of one key declaration with its rule (looked up once per form and page)."""
    return tuple((f, part_rule(form, f)) for f in fields)


def key_of(get: Callable[[str], Any], parts: Sequence[tuple[str, Part]]) -> str | None:
    """The key of one declaration (``parts_of``) for a record's values, or None when a part
    is empty (no key: a draft without its number is nobody yet)."""
    out = []
    for field_id, rule in parts:
        value = get(field_id)
        if value is None:
            return None
        text = value if type(value) is str else str(value)
        if not text.strip():
            return None
        out.append(rule(text))
    return "|".join(out)
