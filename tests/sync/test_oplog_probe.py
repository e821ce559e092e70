"""The replay look-up of a push probes the op log per op id: the pages it reads do not grow
with the device's log. (Revision 0015 at first dropped ``ix_ops_op_id``; the look-up, which
names the device or its family in one statement, then read the whole log: 1.7 s a push on the
1.63 M-record bench platform. A plan test with sequential scans priced out did not see it.)"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import event, insert

from app.core.ids import uuid7
from sync.server import db
from tests.factories import resident
from tests.sync.conftest import GRID_A, Platform


def _log(platform: Platform, device_id: str, count: int, start: int) -> None:
    rows = [
        {
            "device_id": device_id,
            "op_id": f"{device_id}:old-{n}",
            "username": "wang",
            "record_id": f"r{n}",
            "version": 1,
            "result": "{}",
            "at": "2026-12-01T08:00:00Z",
        }
        for n in range(start, start + count)
    ]
    with platform.engine.begin() as conn:
        conn.execute(insert(db.ops), rows)


def _pages_read(platform: Platform, work: Any) -> int:
    """Buffers (hit or read) of the push's replay look-up, from EXPLAIN (ANALYZE, BUFFERS)."""
    pages: list[int] = []

    def measure(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if "FROM ops" not in statement or "op_hash" not in statement:
            return
        raw = cursor.connection.cursor()
        raw.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, params)
        plan = raw.fetchone()[0]
        plan = json.loads(plan) if isinstance(plan, str) else plan
        top = plan[0]["Plan"]
        pages.append(int(top.get("Shared Hit Blocks", 0)) + int(top.get("Shared Read Blocks", 0)))

    event.listen(platform.engine, "before_cursor_execute", measure)
    try:
        work()
    finally:
        event.remove(platform.engine, "before_cursor_execute", measure)
    assert pages, "no replay look-up seen"
    return max(pages)


def test_the_replay_look_up_reads_the_same_pages_for_a_bigger_log(platform: Platform) -> None:
    if platform.engine.dialect.name != "postgresql":
        pytest.skip("buffer counts are PostgreSQL's EXPLAIN")
    client = platform.client("wang")
    people = iter(resident(grid=GRID_A, seq=n) for n in range(1, 400, 2))

    def push(count: int) -> int:
        ops = [
            client.op(uuid7(), "create", {**next(people), "_status": "draft"}) for _ in range(count)
        ]
        return _pages_read(platform, lambda: client.push(ops))

    _log(platform, client.device_id, 2_000, 0)
    db.analyze(platform.engine)
    small = push(20)
    _log(platform, client.device_id, 40_000, 2_000)
    db.analyze(platform.engine)
    big = push(20)
    # a probe per op id reads one page more per b-tree level (25 -> 60 pages here); reading
    # the log grows with its size (25 -> 520 pages without ix_ops_op_id)
    assert big <= 4 * small, (small, big)
