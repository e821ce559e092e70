"""Change numbers (PROTOCOL.md §8): taken by writers, bounded for readers.

Every change (record write, alias, scope exit, grid, task, task item) gets a number from the
counter row ``counters.seq``, and a pull pages by those numbers. The one rule: a cursor must
never pass a number whose change has not committed yet, or that change is never pulled.

SQLite serialises writers, so a writer takes its numbers inside its own transaction and the
counter a reader sees is always complete.

PostgreSQL runs writers side by side. Holding the counter row locked from taking numbers to
commit (the design up to platform schema 0013) made every push wait for the one before it:
at 32 devices, 72-79 % of the sessions' time was spent waiting for that lock. Now a writer
takes its numbers in a short transaction of its own, on a second connection, that moves the
counter *and* inserts an ``inflight_numbers`` row holding the lowest of them (one statement,
committed at once: the row is locked for that statement and its commit only). The writer
deletes the row in its own transaction, just before commit (``db.write`` runs the callback),
so the row disappears exactly when the changes appear. A reader's ``high_water`` reads the
counter and the lowest in-flight number in one statement and never goes past either.

A writer that dies between the two (its process killed) leaves a row behind. Readers reap
rows older than ``STALE_MS``; a writer still alive whose row was reaped finds it gone when it
deletes it and rolls back, so reaping can delay a change but never lose one.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Engine, bindparam, create_engine, delete, event, select, text, update
from sqlalchemy.engine import Connection

from sync.server import db, liveness

log = logging.getLogger(__name__)
T = TypeVar("T")

STALE_MS = 300_000  # an in-flight row this old belongs to a writer that died (a push takes ~0.1 s)
SIDE_CONNECTIONS = 5  # per server process, kept open (README, city section)
_SIDES: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()
_SIDES_LOCK = threading.Lock()
# The side transaction commits without waiting for its WAL to reach the disk
# (``synchronous_commit`` off for this transaction only: ``set_config(..., true)``, so nothing
# leaks to a pooled connection's next user). Why: the counter row stays locked until the commit
# returns, so every push waited for the one before it to flush its WAL: 4-7 % of a city night's
# session samples, most under a checkpoint. Safe: PostgreSQL's WAL is one sequence, so the
# writer's own commit, which waits for the flush, makes this earlier commit durable too; lost
# in a crash before that, it only takes back numbers no committed change carries.
_TAKE = db.prepared(
    text(
        "WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true)), "
        "moved AS (UPDATE counters SET value = value + :count WHERE name = :name "
        "RETURNING value) "
        "INSERT INTO inflight_numbers (id, floor, at) "
        "SELECT :id, value - :count + 1, :at FROM moved, relaxed RETURNING floor"
    )
)
_WITHDRAW = text(
    "WITH gone AS (DELETE FROM inflight_numbers WHERE id = :id RETURNING floor) "
    "UPDATE counters SET value = value - :count WHERE name = :name AND value = :last "
    "AND EXISTS (SELECT 1 FROM gone)"
)
_SETTLE = db.prepared(
    delete(db.inflight_numbers).where(db.inflight_numbers.c.id == bindparam("id"))
)
_HIGH_WATER = db.prepared(
    text(
        "SELECT c.value, (SELECT min(floor) FROM inflight_numbers), "
        "(SELECT min(at) FROM inflight_numbers) FROM counters c WHERE c.name = :name"
    )
)


class NumbersWithdrawn(RuntimeError):
    """The writer's in-flight numbers were reaped as stale: it must roll back and retry."""


def take(conn: Connection, count: int) -> int:
    """Reserve ``count`` consecutive change numbers for this transaction; returns the first.

    Must run inside ``db.write`` (PostgreSQL: the numbers' in-flight row is deleted by it just
    before commit, or withdrawn after a rollback)."""
    if count <= 0:
        raise ValueError("count must be positive")
    if conn.dialect.name != "postgresql":
        return _take_in_transaction(conn, count)
    if db.BEFORE_COMMIT not in conn.info:
        raise RuntimeError("change numbers are taken inside db.write only")
    key = str(uuid.uuid4())
    params = {"count": count, "name": db.SEQ, "id": key, "at": _now_ms()}
    first = _on_side(conn.engine, lambda side: side.execute(_TAKE, params).scalar_one())
    conn.info[db.BEFORE_COMMIT].append(_settle(key))
    conn.info[db.AFTER_ROLLBACK].append(_withdraw(key, int(first), count))
    return int(first)


def high_water(conn: Connection) -> int:
    """The highest change number below which every change is committed (or rolled back)."""
    c = db.counters.c
    if conn.dialect.name != "postgresql":
        value = conn.execute(select(c.value).where(c.name == db.SEQ)).scalar_one_or_none()
        return int(value or 0)
    row = conn.execute(_HIGH_WATER, {"name": db.SEQ}).one()
    if row[2] is not None and _now_ms() - int(row[2]) > STALE_MS:
        _reap(conn.engine)
        row = conn.execute(_HIGH_WATER, {"name": db.SEQ}).one()
    value, floor = int(row[0]), row[1]
    return value if floor is None else min(value, int(floor) - 1)


def _take_in_transaction(conn: Connection, count: int) -> int:
    """SQLite: writers are serialised (BEGIN IMMEDIATE), the counter row is theirs."""
    c = db.counters.c
    start = int(conn.execute(select(c.value).where(c.name == db.SEQ)).scalar_one())
    conn.execute(update(db.counters).where(c.name == db.SEQ).values(value=start + count))
    return start + 1


def _settle(key: str) -> Callable[[Connection], None]:
    def settle(conn: Connection) -> None:
        gone = conn.execute(_SETTLE, {"id": key}).rowcount  # built once: no per-push cache key
        if gone != 1:
            raise NumbersWithdrawn(
                "this transaction's change numbers were reaped as stale; it is rolled back"
            )

    return settle


def _withdraw(key: str, first: int, count: int) -> Callable[[Connection], None]:
    """After a rollback: delete the in-flight row and, when no writer took numbers since, move
    the counter back, so a refused request leaves the platform exactly as it was. Safe: while
    the row existed no pull could reach ``first``, and both change in one transaction."""
    params = {"id": key, "count": count, "last": first + count - 1, "name": db.SEQ}

    def withdraw(conn: Connection) -> None:
        try:
            _on_side(conn.engine, lambda side: side.execute(_WITHDRAW, params))
        except Exception:  # the row then waits for a reader to reap it
            log.warning("could not withdraw rolled-back change numbers", exc_info=True)

    return withdraw


def _reap(engine: Engine) -> None:
    cutoff = _now_ms() - STALE_MS
    at = db.inflight_numbers.c.at
    gone = _on_side(
        engine, lambda side: side.execute(delete(db.inflight_numbers).where(at < cutoff)).rowcount
    )
    if gone:
        log.warning("reaped %d stale in-flight change number rows (a writer died)", gone)


def _on_side(engine: Engine, work: Callable[[Connection], T]) -> T:
    """Run ``work`` in its own committed transaction on the side pool."""
    with _side(engine).connect() as side:
        return work(side)


def _side(engine: Engine) -> Engine:
    """An autocommit engine on the same database, for the numbers' own transactions.

    Why its own small pool: the writer holds its main connection meanwhile, and a side
    statement borrowed from the main pool could wait for a connection that only a waiting
    writer would free. Its connections stay open (no overflow): with 2 kept and 3 more
    allowed, every third concurrent push opened a connection and closed it as soon as two
    were idle again, and a new backend costs PostgreSQL ~7 ms of CPU to start and to fill its
    catalog caches (a 640-sync night of 32 devices opened 101 connections, now 35-49, most of
    them the pools' first)."""
    with _SIDES_LOCK:
        side = _SIDES.get(engine)
        if side is None:
            side = create_engine(
                engine.url,
                isolation_level="AUTOCOMMIT",
                connect_args=db.connect_args(engine),  # prepared as the main engine's
                pool_size=SIDE_CONNECTIONS,
                max_overflow=0,
            )
            db.prepare_marked(side)
            liveness.watch(side)  # a side connection whose backend ended is replaced
            _SIDES[engine] = side
            event.listen(engine, "engine_disposed", _dispose_side)
        return side


def _dispose_side(engine: Engine) -> None:
    side = _SIDES.pop(engine, None)
    if side is not None:
        side.dispose()


def _now_ms() -> int:
    return int(time.time() * 1000)
