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

__all__ = ["Part", "id_key", "key_of", "part_rule", "parts_of"]

# one part of a key declaration: its field, and whether it is an ID number (15 digits are
# keyed as their 18-digit form). A flag, not a function per part: a pulled page derives
# every record's keys, and a call per part was one more Python call per record (issue 17)
Part = tuple[str, bool]


def _fifteen(number: str) -> str:
    """``idnumber.key_form`` of a normalised 15-character number; loaded (with stdnum: 16 ms
    the store's import, the headless sync's, does not pay) only when one is keyed."""
    from app.core.idnumber import key_form

    return key_form(number)


def id_key(text: str) -> str:
    """An ID number's identity: normalised, 15 digits as their 18-digit form. Why public: the
    record filter (``recordfilter``) compares ID-number fields by this key too."""
    number = normalize_key(text)
    return _fifteen(number) if len(number) == 15 else number


def _is_id(form: Form, field_id: str) -> bool:
    fld = form.fields.get(field_id)
    return fld is not None and fld.type == "id_number"


def part_rule(form: Form, field_id: str) -> Callable[[str], str]:
    """How the value of ``field_id`` is normalised in a key (by the field's type)."""
    return id_key if _is_id(form, field_id) else normalize_key


def parts_of(form: Form, fields: Sequence[str]) -> tuple[Part, ...]:
    """Each field of one key declaration with its type's flag (looked up once per form and
    page)."""
    return tuple((f, _is_id(form, f)) for f in fields)


def key_of(get: Callable[[str], Any], parts: Sequence[Part]) -> str | None:
    """The key of one declaration (``parts_of``) for a record's values, or None when a part
    is empty (no key: a draft without its number is nobody yet)."""
    out = []
    for field_id, is_id in parts:
        value = get(field_id)
        if value is None:
            return None
        text = value if type(value) is str else str(value)
        if not text.strip():
            return None
        part = normalize_key(text)
        out.append(_fifteen(part) if is_id and len(part) == 15 else part)
    return "|".join(out)
