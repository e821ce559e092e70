"""Times as the console shows them: in the platform's zone, to the minute.

Why: the platform stores UTC (ISO 8601, ``Z``), which read eight hours off to a supervisor in
China ("00:34" for a task issued at 08:34). Pages show local time; exports and the JSON API
keep UTC, which programs read. The zone is ``$GRIDCOLLECT_TZ`` (an IANA name), else
Asia/Shanghai; ``tzdata`` supplies the zone database where the system has none.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ZONE_ENV = "GRIDCOLLECT_TZ"
DEFAULT_ZONE = "Asia/Shanghai"


@lru_cache(maxsize=4)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_ZONE)  # a mistyped zone: the country's, not a crash per page


def zone() -> ZoneInfo:
    """The zone pages show times in (read per call: a test or a restart may change it)."""
    return _zone(os.environ.get(ZONE_ENV) or DEFAULT_ZONE)


def when(value: object) -> str:
    """A stored time (``2026-12-08T00:34:30.889Z``) as ``2026-12-08 08:34`` in ``zone()``;
    a date alone, an empty value or text that is no time, as it is."""
    text = "" if value is None else str(value)
    if "T" not in text:
        return text
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # the platform writes UTC
    return moment.astimezone(zone()).strftime("%Y-%m-%d %H:%M")
