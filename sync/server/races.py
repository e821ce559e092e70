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

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

RETRY_SQLSTATES = frozenset({"40P01", "40001", "55P03"})


def retryable(exc: Exception) -> bool:
    """A deadlock, serialisation failure, lock not available or SQLite's busy timeout."""
    orig = getattr(exc, "orig", None)
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if state in RETRY_SQLSTATES:
        return True
    return isinstance(exc, OperationalError) and "locked" in str(orig or "").lower()


def is_race(exc: Exception) -> bool:
    """``retryable`` or a unique-key race (two writers inserting the same new key)."""
    return isinstance(exc, IntegrityError) or (isinstance(exc, DBAPIError) and retryable(exc))


def pause(attempt: int) -> None:
    """A short random wait before attempt ``attempt + 1``, so the racers part ways."""
    time.sleep(random.uniform(0.005, 0.03) * (attempt + 1))
