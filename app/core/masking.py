"""Masking of sensitive values for printouts, exports and lists.

What is sensitive is the form's call (``sensitive: true``); how a value is masked depends only
on its type: identifiers keep the first 3 and last 2 characters, phones keep the first 3 and
last 4, other text keeps its first character. Flags and lists are hidden entirely.

A citizen ID number (GB 11643) is area code (6) + birth date (8) + sequence (3) + check. With
the birth date and the registration area in clear beside "110***********12", about 9 numbers
fit (issue 15). So where a whole record is masked (``mask_record``: exports, printed sheets)
the fields that give those parts away are masked too (``revealing``): the birth date the ID
number derives (``derives.birth_date``, or the form's ``roles.birth_date``) keeps only its
year, and every area-code field (a choice over a GB/T 2260 code table) only its province (the
first 2 digits). Then tens of thousands of numbers fit. A view that masks only some sensitive
fields (a department's grant) reduces them when it masks an ID number (``reduced``).
docs/SECURITY.md lists what each level shows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from app.core.forms import Field, Form, FormSet

MASK = "*"
AREA_STANDARD = "GB/T 2260"  # the code table standard of area codes, as the ID number's first 6
BIRTH, AREA = "birth_date", "area"


def mask_value(fld: Field, value: object) -> str:
    """The masked text of a sensitive value ('' for empty)."""
    if value is None or value == "" or value == []:
        return ""
    text = str(value)
    if fld.type in ("id_number", "credit_code"):
        return _keep(text, 3, 2) if len(text) > 10 else MASK * len(text)
    if fld.type == "phone":
        return _keep(text, 3, 4) if len(text) > 7 else MASK * len(text)
    if fld.type in ("multi_choice", "choice", "boolean", "coordinates"):
        return MASK * 3
    return text[0] + MASK * max(len(text) - 1, 1)


def _keep(text: str, head: int, tail: int) -> str:
    return text[:head] + MASK * (len(text) - head - tail) + text[-tail:]


def revealing(form: Form, formset: FormSet) -> dict[str, str]:
    """Fields that are not sensitive but give part of a masked ID number away:
    {field id: ``BIRTH`` | ``AREA``}. Empty for a form without a sensitive ID number."""
    ids = [f for f in form.fields.values() if f.type == "id_number" and f.sensitive]
    if not ids:
        return {}
    found: dict[str, str] = {}
    births = [f.derives.get(BIRTH) for f in ids] + [form.roles.birth_date]
    for target in births:
        if target and target in form.fields and not form.fields[target].sensitive:
            found[target] = BIRTH
    for fld in form.fields.values():
        if fld.sensitive or fld.type not in ("choice", "multi_choice") or not fld.codes:
            continue
        if fld.codes in formset.tables and formset.table(fld.codes).standard == AREA_STANDARD:
            found[fld.id] = AREA
    return found


def reduced(form: Form, formset: FormSet, masked: Iterable[str]) -> dict[str, str]:
    """``revealing`` for a view that masks only some sensitive fields (``masked``: a
    department's grant gives others in full): the fields to reduce when a sensitive ID number
    is among them; none when every ID number is shown in full or not at all (nothing masked
    to give back)."""
    fields = form.fields
    if any(n in fields and fields[n].type == "id_number" and fields[n].sensitive for n in masked):
        return revealing(form, formset)
    return {}


def mask_part(kind: str, value: object) -> object:
    """A revealing field's value with only what is safe kept: a birth date's year, an area
    code's province (first 2 digits). Lists mask each item; empty stays empty."""
    if value is None or value == "":
        return value
    if isinstance(value, list):
        return [mask_part(kind, v) for v in value]
    text = str(value)
    if kind == BIRTH:
        return text[:4] + "-**-**" if len(text) >= 4 else MASK * len(text)
    return text[:2] + MASK * max(len(text) - 2, 0)


def looks_masked(fld: Field, kind: str | None, value: object) -> bool:
    """A cell a masked export wrote in place of a value: it holds ``MASK`` and masks to
    itself (``mask_value`` of a sensitive field, ``mask_part`` of a revealing one, ``kind``).
    An import refuses it, or "E12******78" would overwrite the real number."""
    if not isinstance(value, str) or MASK not in value:
        return False
    text = value.strip()
    if fld.sensitive:
        return mask_value(fld, text) == text
    return kind is not None and mask_part(kind, text) == text


def mask_record(form: Form, formset: FormSet, data: Mapping[str, Any]) -> dict[str, Any]:
    """A record as a masked export or sheet shows it: sensitive values masked, and the values
    that would give a masked ID number back reduced (``revealing``)."""
    parts = revealing(form, formset)
    out: dict[str, Any] = {}
    for key, value in data.items():
        fld = form.fields.get(key)
        if fld is not None and fld.sensitive:
            out[key] = mask_value(fld, value)
        elif key in parts:
            out[key] = mask_part(parts[key], value)
        else:
            out[key] = value
    return out
