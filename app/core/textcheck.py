"""What text and numbers the platform stores: the one definition for device and server.

Every file the app reads (``tabular``) and every push the server takes (``sync.server.checks``)
asks these questions, so a value an import accepts is never refused by the sync afterwards.
No NUL (PostgreSQL refuses it), no lone surrogates (not UTF-8), at most ``MAX_VALUE_CHARS``
characters per string, finite numbers only (JSON has no NaN or Infinity), lists and objects
nested at most ``MAX_DEPTH`` deep.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

MAX_VALUE_CHARS = 10_000
# Lists and objects inside one another in one value (a field's value holds at most 2: a
# coordinates object's ``gk3``). Deeper is ``bad_value``, decided at the limit, so that no check
# walks one level a call to Python's recursion limit (``json.loads`` reads ~1 000 levels; a
# push of a value ~400 deep was answered 500, which a device retries for ever).
MAX_DEPTH = 64
_BAD_CHAR = re.compile("[\x00\ud800-\udfff]")  # NUL and lone surrogates (not UTF-8)
# exactly str, for "are these all text?" as one C-level pass (``TEXT_ONLY.issuperset(map(type,
# values))``): a subclass goes the asker's plain way. The one such set of the project.
TEXT_ONLY = frozenset({str})


def text_ok(text: str) -> bool:
    """``text_problem`` would find nothing: one regex scan, what a hot path asks first.

    A 10 000-op push checks 200 000 strings; building each one's explanation up front cost
    more than the checks."""
    return len(text) <= MAX_VALUE_CHARS and _BAD_CHAR.search(text) is None


def cells_ok(cells: list[Any]) -> bool:
    """Every cell is a string that passes ``text_ok``: one length pass and one regex scan for a
    whole line of a file (an import of 20 000 rows x 14 columns asked 280 000 times).

    False also when a cell is not a string: the caller then asks ``plain_problem`` per cell."""
    return (
        {*map(type, cells)} <= TEXT_ONLY
        and max(map(len, cells), default=0) <= MAX_VALUE_CHARS
        and _clean("".join(cells))
    )


def _clean(text: str) -> bool:
    """No NUL and no lone surrogate in a long text: a search for NUL, then (beyond ASCII)
    its UTF-8 encoding, which refuses exactly the surrogates. Why: both are C passes at
    memory speed; the regex ``text_ok`` asks of short strings visits each character, twice
    as slow over the ~370 000 characters of a push of 1 000 residents (issue 17)."""
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def text_problem(text: str) -> str | None:
    """The first problem of a string, named as the server's error codes name it, else None.

    ``nul_char``: holds NUL; ``too_long``: over ``MAX_VALUE_CHARS``; ``bad_text``: not
    encodable as UTF-8 (a lone surrogate). Kept apart from ``text_ok`` so that a test can
    hold one against the other."""
    if "\x00" in text:
        return "nul_char"
    if len(text) > MAX_VALUE_CHARS:
        return "too_long"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "bad_text"
    return None


def plain_ok(value: Any, _depth: int = 0) -> bool:
    """Every string inside ``value`` (keys included) passes ``text_ok``; floats are finite;
    lists and dicts are nested at most ``MAX_DEPTH`` deep (``_depth``: those around ``value``)."""
    if isinstance(value, str):
        return text_ok(value)
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return _depth < MAX_DEPTH and all(plain_ok(v, _depth + 1) for v in value)
    if isinstance(value, dict):
        return _depth < MAX_DEPTH and all(
            isinstance(k, str) and text_ok(k) and plain_ok(v, _depth + 1) for k, v in value.items()
        )
    return True


def plain_problem(value: Any, _depth: int = 0) -> str | None:
    """The first problem inside ``value``: a ``text_problem`` code, or ``bad_value`` for a
    number that is not finite or lists and dicts nested past ``MAX_DEPTH``; None when
    ``plain_ok``."""
    if isinstance(value, str):
        return text_problem(value)
    if isinstance(value, float):
        return None if math.isfinite(value) else "bad_value"
    if isinstance(value, list | dict) and _depth >= MAX_DEPTH:
        return "bad_value"
    if isinstance(value, list):
        return next((p for v in value if (p := plain_problem(v, _depth + 1))), None)
    if isinstance(value, dict):
        for key, item in value.items():
            problem = text_problem(str(key)) or plain_problem(item, _depth + 1)
            if problem:
                return problem
    return None


def first_unstorable(data: Mapping[str, Any]) -> tuple[str, str] | None:
    """The first field whose value the platform would refuse to store, with the problem's
    code (``plain_problem``), else None. Why: a draft saves whatever its errors, but a value
    over the platform's limits would be refused by every sync after it; the editor says so
    at the save instead (one rule: the push's)."""
    for field_id, value in data.items():
        if not plain_ok(value) and (problem := plain_problem(value)):
            return field_id, problem
    return None
