"""Masking of sensitive values for printouts, exports and lists.

What is sensitive is the form's call (``sensitive: true``); how a value is masked depends only
on its type: identifiers keep the first 3 and last 2 characters (the birth date is printed
elsewhere on the same sheet, so keeping the area code and sequence would give the whole
number back), phones keep the first 3 and last 4, other text keeps its first character. Flags and lists are hidden entirely.
"""

from __future__ import annotations

from app.core.forms import Field

MASK = "*"


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
