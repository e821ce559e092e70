"""Login throttling: growing delays, then a temporary lockout, per account and per address.

Every login attempt is counted in the database (``db.login_failures``) before the password is
checked, so parallel guesses and several server processes share one count. Under a key's
``free`` failures nothing changes; after that each failure blocks the key for a delay that
doubles (1 s, 2 s, 4 s … up to ``max_delay``); at ``lock_after`` failures the key is locked for
``lock``. A blocked key is answered 429 with Retry-After, without checking the password and
without counting (so an attack cannot push the end of a lockout further away than one lock
period after its last counted guess). A row whose last failure is older than ``window`` starts
from nothing: the real user gets in at the latest ``lock`` after the attack stops.

The account key of a login from a device that already logged in as that user (it held a
token of theirs) is the device (``device:<id>``) instead: a stranger's guesses lock the account for strangers,
never the user's own laptop.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from sync.server import auth, db, races


@dataclass(frozen=True)
class Policy:
    """How many failures a key may have before delays, and before a lockout."""

    free: int
    lock_after: int
    lock: timedelta = timedelta(minutes=15)
    max_delay: timedelta = timedelta(seconds=60)
    window: timedelta = timedelta(minutes=15)

    def block(self, failures: int) -> timedelta:
        """How long a key with this many failures is refused."""
        if failures >= self.lock_after:
            return self.lock
        if failures < self.free:
            return timedelta(0)
        return min(timedelta(seconds=2 ** (failures - self.free)), self.max_delay)


# An account (or one device of it): a person mistyping gets 5 tries, a guesser ~10 per lock.
ACCOUNT = Policy(free=5, lock_after=10)
# One client address: an office behind one NAT address shares it, so it allows more.
ADDRESS = Policy(free=20, lock_after=50)
TRIES = 5  # runs of one login's throttle transaction when it races another


FORGET = timedelta(days=1)  # longer than any window or lock: such a row can only start afresh


class Throttled(Exception):
    """The login is refused before any password check; ``retry_after`` in whole seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("throttled")
        self.retry_after = max(retry_after, 1)


@dataclass(frozen=True)
class Attempt:
    """The keys one login attempt was counted under, and those its failure would lock."""

    keys: tuple[tuple[str, Policy], ...]
    locking: tuple[str, ...]


def keys_for(
    conn: Connection, username: str, device_id: str, address: str
) -> list[tuple[str, Policy]]:
    """The account key (or the user's known device) and the address key of one attempt."""
    t = db.tokens.c  # revoked and expired tokens still say the device was the user's
    known = conn.execute(
        select(t.device_id).where(t.username == username, t.device_id == device_id).limit(1)
    ).first()
    account = f"device:{device_id}" if known else f"account:{username}"
    return [(account[:200], ACCOUNT), (f"address:{address}"[:200], ADDRESS)]


def begin(engine: Engine, username: str, device_id: str, address: str, now: datetime) -> Attempt:
    """Count an attempt as a failure until it succeeds; raises ``Throttled`` when blocked."""

    def count() -> Attempt:  # two inserting the same new key, or a deadlock: run it again
        with db.write(engine) as conn:
            return _count(conn, keys_for(conn, username, device_id, address), now)

    return races.retried(count, TRIES)


def _count(conn: Connection, keys: Sequence[tuple[str, Policy]], now: datetime) -> Attempt:
    f = db.login_failures.c
    at = auth.iso(now)
    rows = {r.key: r for r in _lock(conn, [k for k, _ in keys], at)}
    waits = [
        _seconds(rows[k].blocked_until, now)
        for k, _ in keys
        if rows[k].blocked_until and rows[k].blocked_until > at
    ]
    if waits:
        raise Throttled(max(waits))
    locking = []
    for key, policy in keys:
        row = rows[key]
        fresh = row.last_at < auth.iso(now - policy.window)
        failures = 1 if fresh else row.failures + 1
        blocked = policy.block(failures)
        values = {
            "failures": failures,
            "last_at": at,
            "blocked_until": auth.iso(now + blocked) if blocked else None,
        }
        conn.execute(update(db.login_failures).where(f.key == key).values(**values))
        if failures == policy.lock_after:
            locking.append(key)
    return Attempt(tuple(keys), tuple(locking))


def _lock(conn: Connection, keys: list[str], at: str) -> Sequence[Any]:
    """Lock every key's row, creating the missing ones, in key order, in one statement.

    Why an upsert: a row that exists is locked by its ``DO UPDATE``, a new one by its insert, so
    every login holds its rows in one order from the first statement on. The earlier "insert
    missing rows, then SELECT … FOR UPDATE" let a new row's insert hold one key while another
    login held the other (PostgreSQL found a deadlock on every third of a dozen logins at once,
    each costing its one-second ``deadlock_timeout``). A new row counts nothing yet."""
    dialect = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
    fresh = dialect(db.login_failures).values(
        [{"key": k, "failures": 0, "last_at": at} for k in sorted(keys)]
    )
    locked = fresh.on_conflict_do_update(
        index_elements=[db.login_failures.c.key], set_={"key": fresh.excluded.key}
    )
    f = db.login_failures.c
    return conn.execute(locked.returning(f.key, f.failures, f.last_at, f.blocked_until)).all()


def succeeded(engine: Engine, attempt: Attempt, now: datetime) -> None:
    """The password was right: the account (or device) starts again from nothing; the address
    gets back the failure its attempt was counted as (others' failures from it stay). Rows
    nobody has failed on for a day are dropped on the way (a sprayed list of names would
    otherwise stay forever)."""

    def forgive() -> None:
        with db.write(engine) as conn:
            _forgive(conn, attempt, auth.iso(now))

    races.retried(forgive, TRIES)
    with db.write(engine) as conn:
        _sweep(conn, now)


def _forgive(conn: Connection, attempt: Attempt, at: str) -> None:
    """The account's row goes back to no failures (kept, not deleted: a deleted row let the
    next login's insert take one key before the other); the address's loses one."""
    f = db.login_failures.c
    (account, _), (address, policy) = attempt.keys
    held = {r.key: r for r in _lock(conn, [account, address], at)}
    conn.execute(
        update(db.login_failures).where(f.key == account).values(failures=0, blocked_until=None)
    )
    row = held[address]
    if row.failures < policy.lock_after:
        left = max(row.failures - 1, 0)
        unblock = {} if policy.block(left) else {"blocked_until": None}
        conn.execute(
            update(db.login_failures).where(f.key == address).values(failures=left, **unblock)
        )


def _sweep(conn: Connection, now: datetime) -> None:
    """Drop rows idle for a day; rows another login holds are left for a later sweep, so
    the sweep never waits on (or deadlocks with) a login in progress."""
    f = db.login_failures.c
    idle = (
        select(f.key)
        .where(f.last_at < auth.iso(now - FORGET))
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    conn.execute(delete(db.login_failures).where(f.key.in_(idle)))


def _seconds(until: str, now: datetime) -> int:
    end = datetime.fromisoformat(until.replace("Z", "+00:00"))
    return math.ceil((end - now).total_seconds())
