"""A grant's record filter, in the tasks' filter syntax (``app.core.recordfilter``).

One place turns the filter text of a grant into a predicate over a record's data, so the
download, the API, the feed and the statistics cannot disagree about which records it takes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from app.core.forms import Form
from sync.server.errors import ApiError

Predicate = Callable[[Mapping[str, Any], dt.date], bool]


def _always(_data: Mapping[str, Any], _today: dt.date) -> bool:
    return True


def compile_filter(text: str, form: Form) -> Predicate:
    """The predicate of ``text`` for records of ``form``; 422 ``bad_filter`` when it does not
    parse (the message says what to fix)."""
    if not text.strip():
        return _always
    from app.core.recordfilter import FilterError, parse_filter

    try:
        parsed = parse_filter(text, form)
    except FilterError as exc:
        zh, en = _messages(exc)
        raise ApiError(422, "bad_filter", detail_zh=zh, detail_en=en) from None
    return parsed.matches


def _messages(exc: Exception) -> tuple[str, str]:
    zh = str(getattr(exc, "message_zh", "") or exc)
    en = str(getattr(exc, "message_en", "") or exc)
    return zh[:300], en[:300]
