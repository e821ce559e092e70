"""The pull cursor never skips a change, with many writers at once (PROTOCOL.md §8).

Hypothesis draws how many devices push at the same time, how big their pushes are, how long
each transaction lingers before it commits, and how a reader pages; the reader pulls without
pause while they write. Whatever the interleaving, every record written must reach the reader
in its final version, and its cursor must only grow. On PostgreSQL the writers really run
side by side (their numbers in flight until they commit, numbering.py); SQLite queues them.
``GC_COUNTER_EXAMPLES=100`` hunts longer.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import random
import threading
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from app.core.ids import uuid7
from sync.server import db
from tests.factories import resident
from tests.sync.conftest import GRID_A, GRID_B, Platform

_people = itertools.count(1)


def _person(grid: str) -> dict[str, Any]:
    n = next(_people)
    birth = dt.date(1950, 1, 1) + dt.timedelta(days=n)
    return {
        **resident(birth=birth, seq=n % 900 + 1, grid=grid, name=f"居民{n}"),
        "_status": "draft",
    }


@settings(
    max_examples=int(os.environ.get("GC_COUNTER_EXAMPLES", "4")),  # a long hunt: 100
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    writers=st.integers(2, 6),
    pushes=st.integers(1, 3),
    size=st.integers(1, 12),
    linger_ms=st.integers(20, 80),
    page=st.integers(1, 9),
    seed=st.integers(0, 2**16),
)
def test_many_writers_never_make_a_pull_skip(
    platform: Platform,
    writers: int,
    pushes: int,
    size: int,
    linger_ms: int,
    page: int,
    seed: int,
) -> None:
    reader = platform.client("chen")
    start = reader.pull(0, 1)["cursor"]  # only this example's changes matter
    clients = [platform.client("wang" if w % 2 else "li") for w in range(writers)]
    rng = random.Random(seed)
    lock = threading.Lock()

    def linger() -> None:
        with lock:
            pause = rng.uniform(0, linger_ms / 1000)
        time.sleep(pause)

    platform.service.before_commit = linger
    done = threading.Event()
    seen: dict[str, int] = {}
    cursors: list[int] = []
    failures: list[BaseException] = []

    def read() -> None:
        since = start
        try:
            while True:
                finished = done.is_set()
                answer = reader.pull(since, limit=page)
                for record in answer["records"]:
                    seen[record["id"]] = record["version"]
                since = answer["cursor"]
                cursors.append(since)
                if finished and not answer["more"]:
                    return
        except BaseException as exc:  # raised again in the test's thread
            failures.append(exc)

    def write(w: int) -> None:
        client = clients[w]
        grid = GRID_A if w % 2 else GRID_B
        mine: dict[str, int] = {}
        try:
            for _ in range(pushes):
                ops = [client.op(uuid7(), "create", _person(grid)) for _ in range(size)]
                if mine:  # and an edit of an earlier record: updates take numbers too
                    rid = sorted(mine)[0]
                    ops.append(
                        client.op(rid, "update", {"occupation": "职员"}, base_version=mine[rid])
                    )
                for op, result in zip(ops, client.push(ops), strict=True):
                    assert result["status"] == "applied", result
                    mine[op["record_id"]] = result["version"]
        except BaseException as exc:
            failures.append(exc)

    reading = threading.Thread(target=read)
    reading.start()
    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    done.set()
    reading.join(120)
    platform.service.before_commit = None
    if failures:
        raise failures[0]
    r = db.records.c
    with platform.engine.connect() as conn:
        truth = dict(conn.execute(select(r.id, r.version).where(r.seq > start)).all())
    assert truth, "the writers wrote"
    assert seen == truth  # every change arrived, each in its final version
    assert cursors == sorted(cursors)
