"""Change numbers without a lock held to commit (numbering.py, PROTOCOL.md §8).

On PostgreSQL a writer announces the numbers it took as in flight, in a transaction of its own,
and a pull never reads past the lowest in-flight number. These tests stage the races by hand
with real transactions: a writer that has taken numbers and not committed must neither block
the next writer nor let a reader's high-water mark pass its numbers; a rolled-back writer
withdraws its numbers; a dead writer's row is reaped, and if that writer was only slow it rolls
back instead of committing below a cursor already handed out.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, event, func, insert, select, text

from sync.server import db, numbering
from tests.sync.conftest import Platform


@pytest.fixture
def engine(platform: Platform) -> Engine:
    return platform.engine


def _counter(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(db.counters.c.value).where(db.counters.c.name == db.SEQ)
            ).scalar_one()
        )


def _high_water(engine: Engine) -> int:
    with db.read(engine) as conn:
        return numbering.high_water(conn)


def _in_flight(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(db.inflight_numbers)).scalar())


class Writer:
    """A writing transaction on its own thread that takes numbers and waits to be released."""

    def __init__(self, engine: Engine, count: int, fail: bool = False) -> None:
        self.engine, self.count, self.fail = engine, count, fail
        self.first = 0
        self.taken, self.release = threading.Event(), threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run)
        self.thread.start()
        assert self.taken.wait(30), self.error

    def _run(self) -> None:
        try:
            with db.write(self.engine) as conn:
                self.first = numbering.take(conn, self.count)
                key = f"numbering-test-{self.count}"  # a write visible only at commit
                conn.execute(insert(db.meta).values(key=key, value=str(self.first)))
                self.taken.set()
                assert self.release.wait(30)
                if self.fail:
                    raise RuntimeError("this writer gives up")
        except BaseException as exc:
            self.error = exc
            self.taken.set()

    def finish(self) -> BaseException | None:
        self.release.set()
        self.thread.join(30)
        return self.error


@pytest.fixture
def postgres(engine: Engine) -> Iterator[Engine]:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers: numbers are taken inside the transaction")
    yield engine


def test_a_writer_in_flight_blocks_neither_writers_nor_readers_but_bounds_the_pull(
    postgres: Engine,
) -> None:
    start = _counter(postgres)
    slow = Writer(postgres, 3)  # has taken start+1..start+3, not committed
    with db.write(postgres) as conn:
        # the old design locked the counter row until commit: this would wait for ``slow``
        conn.execute(text("SET LOCAL lock_timeout = '3s'"))
        fast = numbering.take(conn, 2)
    assert (slow.first, fast) == (start + 1, start + 4)
    assert _counter(postgres) == start + 5  # both took their numbers
    assert _high_water(postgres) == start  # but no pull may pass the slow writer's numbers
    assert slow.finish() is None
    assert _high_water(postgres) == start + 5
    assert _in_flight(postgres) == 0


def test_a_rolled_back_writer_withdraws_its_numbers(postgres: Engine) -> None:
    start = _counter(postgres)
    failing = Writer(postgres, 4, fail=True)
    assert _high_water(postgres) == start
    assert isinstance(failing.finish(), RuntimeError)
    assert _in_flight(postgres) == 0
    assert _counter(postgres) == _high_water(postgres) == start  # as if it never ran


def test_numbers_withdrawn_after_others_took_theirs_leave_a_hole(postgres: Engine) -> None:
    start = _counter(postgres)
    failing = Writer(postgres, 4, fail=True)
    with db.write(postgres) as conn:
        assert numbering.take(conn, 1) == start + 5
    assert _high_water(postgres) == start  # bounded by the failing writer's numbers
    assert isinstance(failing.finish(), RuntimeError)
    assert _in_flight(postgres) == 0
    assert _counter(postgres) == _high_water(postgres) == start + 5  # start+1..4: a hole


def test_a_stale_row_is_reaped_and_its_slow_writer_rolls_back(
    postgres: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = _counter(postgres)
    slow = Writer(postgres, 2)
    assert _high_water(postgres) == start
    monkeypatch.setattr(numbering, "STALE_MS", -1)  # every in-flight row now looks dead
    assert _high_water(postgres) == start + 2  # reaped: the reader moves on
    assert _in_flight(postgres) == 0
    assert isinstance(slow.finish(), numbering.NumbersWithdrawn)
    with postgres.connect() as conn:  # its write never became visible below the cursor
        written = select(db.meta.c.value).where(db.meta.c.key == "numbering-test-2")
        assert conn.execute(written).first() is None


def test_numbers_are_taken_inside_a_write_transaction_only(postgres: Engine) -> None:
    with postgres.connect() as conn, conn.begin(), pytest.raises(RuntimeError, match="db.write"):
        numbering.take(conn, 1)


def test_sqlite_takes_numbers_in_the_transaction(platform: Platform) -> None:
    if platform.engine.dialect.name != "sqlite":
        pytest.skip("the SQLite path")
    start = _counter(platform.engine)
    with db.write(platform.engine) as conn:
        assert numbering.take(conn, 3) == start + 1
    assert _high_water(platform.engine) == start + 3
    assert _in_flight(platform.engine) == 0


def test_concurrent_writers_reuse_the_side_connections(postgres: Engine) -> None:
    """Numbers are taken on a side pool whose connections stay open: rounds of as many
    concurrent takes as it holds open no new connection after the first round (with 2 kept
    and 3 more allowed, the 3 extra were closed and opened again every round: a new backend
    costs PostgreSQL ~7 ms of CPU)."""
    side = numbering._side(postgres)
    opened: list[int] = []
    event.listen(side, "connect", lambda *_: opened.append(1))
    width = numbering.SIDE_CONNECTIONS
    meet = threading.Barrier(width)
    errors: list[BaseException] = []

    def take() -> None:
        try:
            with db.write(postgres) as conn:
                numbering._on_side(postgres, lambda c: (c.execute(text("SELECT 1")), meet.wait(10)))
                numbering.take(conn, 1)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    for _ in range(4):
        threads = [threading.Thread(target=take) for _ in range(width)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not errors, errors
    assert len(opened) <= width, f"{len(opened)} side connections opened for {width} at once"


def _wal_writes_of(engine: Engine, sql: str, times: int) -> int:
    """WAL writes of ``times`` runs of ``sql`` in autocommit on one connection (its backend's
    own statistics, flushed before they are read)."""
    params = {"count": 1, "name": db.SEQ, "at": 0}
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        read = text("SELECT pg_stat_force_next_flush()")
        count = text("SELECT wal_write FROM pg_stat_wal")
        conn.execute(read)
        conn.execute(text("SELECT 1"))
        before = int(conn.execute(count).scalar_one())
        for n in range(times):
            conn.execute(text(sql), {**params, "id": f"wal-test-{n}"})
        conn.execute(read)
        conn.execute(text("SELECT 1"))
        written = int(conn.execute(count).scalar_one()) - before
        conn.execute(text("DELETE FROM inflight_numbers WHERE id LIKE 'wal-test-%'"))
    return written


def test_taking_numbers_does_not_wait_for_the_wal_flush(postgres: Engine) -> None:
    """The side transaction that moves the counter commits asynchronously: it holds the
    counter row only for its statement, not for a WAL flush (a checkpoint's stall); the
    writer's own synchronous commit, later in the same WAL, makes it durable. Counted: the WAL
    writes its backend makes for 40 takes, against the same statement committed as usual."""
    taking = str(numbering._TAKE)
    usual = taking.replace(
        "WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true)), ", "WITH "
    ).replace("FROM moved, relaxed", "FROM moved")
    assert usual != taking
    relaxed, synchronous = _wal_writes_of(postgres, taking, 40), _wal_writes_of(postgres, usual, 40)
    assert synchronous >= 40, synchronous  # each commit wrote (and flushed) its WAL
    assert relaxed < 10, relaxed
