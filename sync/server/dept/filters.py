"""A grant's record filter, in the tasks' filter syntax (``app.core.recordfilter``).

One place turns the filter text of a grant into a predicate over a record's data, so the
download, the API, the feed and the statistics cannot disagree about which records it takes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from app.core.forms import Form, FormSet
from app.core.recordfilter import FilterError, parse_filter
from sync.server.errors import ApiError

Predicate = Callable[[Mapping[str, Any], dt.date], bool]


def _always(_data: Mapping[str, Any], _today: dt.date) -> bool:
    return True


def compile_filter(text: str, form: Form, formset: FormSet | None = None) -> Predicate:
    """The predicate of ``text`` for records of ``form``; 422 ``bad_filter`` when it does not
    parse (the message says what to fix)."""
    if not text.strip():
        return _always
    try:
        parsed = parse_filter(text, form, formset)
    except FilterError as exc:
        zh, en = exc.message_zh[:300], exc.message_en[:300]
        raise ApiError(422, "bad_filter", detail_zh=zh, detail_en=en) from None
    return parsed.matches
