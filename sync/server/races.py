"""Which database errors mean "another writer got in the way: run the transaction again".

On PostgreSQL concurrent transactions can deadlock (40P01), fail to serialise (40001), miss a
lock they asked for without waiting (55P03) or both insert the same new key (a unique
violation); SQLite answers "database is locked" when its busy timeout runs out. Each of these
leaves nothing written, and the same work run again sees the other writer's commit. The push
path and the login throttle both retry on them, so they share this one definition.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import IntegrityError, OperationalError

T = TypeVar("T")

RETRY_SQLSTATES = frozenset({"40P01", "40001", "55P03"})
UNIQUE_VIOLATION = "23505"


class MergedMeanwhile(Exception):
    """A record the transaction read no alias of was merged away (a supervisor's "same")
    while it waited for the record's lock: PostgreSQL then hands over the tombstone as
    committed. Run again, the aliases are read anew and the op lands on the held record."""


def _sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a driver error, raised through SQLAlchemy (``orig``) or straight from
    the driver (the COPYs of ``bulk`` use psycopg's own cursor)."""
    for err in (exc, getattr(exc, "orig", None)):
        state = getattr(err, "sqlstate", None) or getattr(err, "pgcode", None)
        if state:
            return str(state)
    return None


def retryable(exc: BaseException) -> bool:
    """A deadlock, serialisation failure, lock not available or SQLite's busy timeout."""
    if _sqlstate(exc) in RETRY_SQLSTATES:
        return True
    orig = getattr(exc, "orig", None)
    return isinstance(exc, OperationalError) and "locked" in str(orig or "").lower()


def is_race(exc: BaseException) -> bool:
    """``retryable`` or a unique-key race (two writers inserting the same new key)."""
    if isinstance(exc, IntegrityError | MergedMeanwhile) or _sqlstate(exc) == UNIQUE_VIOLATION:
        return True
    return retryable(exc)


def pause(attempt: int) -> None:
    """A short random wait before attempt ``attempt + 1``, so the racers part ways."""
    time.sleep(random.uniform(0.005, 0.03) * (attempt + 1))


def retried(work: Callable[[], T], attempts: int) -> T:
    """``work()`` (one whole transaction), run again after a race (``is_race``, a driver
    error from a raw COPY too) at most ``attempts`` times in all, with a ``pause`` between."""
    for attempt in range(attempts):
        try:
            return work()
        except Exception as exc:
            if not is_race(exc) or attempt == attempts - 1:
                raise
            pause(attempt)
    raise AssertionError("unreachable")
