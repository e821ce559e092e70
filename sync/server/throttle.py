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

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from sync.server import auth, db


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
    for tries in range(3):  # two processes inserting the same new key: the loser retries
        try:
            with db.write(engine) as conn:
                keys = keys_for(conn, username, device_id, address)
                return _count(conn, keys, now)
        except IntegrityError:
            if tries == 2:
                raise
    raise AssertionError("unreachable")


def _count(conn: Connection, keys: Sequence[tuple[str, Policy]], now: datetime) -> Attempt:
    f = db.login_failures.c
    at = auth.iso(now)
    rows = {
        r.key: r
        for r in conn.execute(
            select(f.key, f.failures, f.last_at, f.blocked_until)
            .where(f.key.in_([k for k, _ in keys]))
            .with_for_update()
        )
    }
    waits = [
        _seconds(rows[k].blocked_until, now)
        for k, _ in keys
        if k in rows and rows[k].blocked_until and rows[k].blocked_until > at
    ]
    if waits:
        raise Throttled(max(waits))
    locking = []
    for key, policy in keys:
        row = rows.get(key)
        fresh = row is None or row.last_at < auth.iso(now - policy.window)
        failures = 1 if fresh or row is None else row.failures + 1
        blocked = policy.block(failures)
        values = {
            "failures": failures,
            "last_at": at,
            "blocked_until": auth.iso(now + blocked) if blocked else None,
        }
        if row is None:
            conn.execute(insert(db.login_failures).values(key=key, **values))
        else:
            conn.execute(update(db.login_failures).where(f.key == key).values(**values))
        if failures == policy.lock_after:
            locking.append(key)
    return Attempt(tuple(keys), tuple(locking))


def succeeded(engine: Engine, attempt: Attempt, now: datetime) -> None:
    """The password was right: the account (or device) starts again from nothing; the address
    gets back the failure its attempt was counted as (others' failures from it stay). Rows
    nobody has failed on for a day are dropped on the way (a sprayed list of names would
    otherwise stay forever)."""
    f = db.login_failures.c
    (account, _), (address, policy) = attempt.keys
    with db.write(engine) as conn:
        conn.execute(delete(db.login_failures).where(f.key == account))
        conn.execute(delete(db.login_failures).where(f.last_at < auth.iso(now - FORGET)))
        row = conn.execute(select(f.failures).where(f.key == address).with_for_update()).first()
        if row is not None and row.failures < policy.lock_after:
            left = max(row.failures - 1, 0)
            unblock = {} if policy.block(left) else {"blocked_until": None}
            conn.execute(
                update(db.login_failures).where(f.key == address).values(failures=left, **unblock)
            )


def _seconds(until: str, now: datetime) -> int:
    end = datetime.fromisoformat(until.replace("Z", "+00:00"))
    return math.ceil((end - now).total_seconds())
