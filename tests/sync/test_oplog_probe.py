"""The replay look-up of a push probes the op log per op id: the pages it reads do not grow
with the device's log. (Revision 0015 at first dropped ``ix_ops_op_id``; the look-up, which
then named the device *or* its family, read the whole log: 1.7 s a push on the 1.63 M-record
bench platform. A plan test with sequential scans priced out did not see it. Since revision
0018 the device and its family are one list and the look-up probes the primary key.)"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import event, insert

from app.core.ids import uuid7
from sync import protocol as p
from sync.server import db, oplog
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
    # the log grows with its size (25 -> 520 pages when the look-up could not probe)
    assert big <= 4 * small, (small, big)


def _replay_look_ups(platform: Platform, work: Any) -> list[tuple[str, Any]]:
    """The replay look-ups (statement, parameters) ``work`` runs."""
    seen: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if "FROM ops" in statement and "op_hash" in statement:
            seen.append((statement, params))

    event.listen(platform.engine, "before_cursor_execute", capture)
    try:
        work()
    finally:
        event.remove(platform.engine, "before_cursor_execute", capture)
    assert seen, "no replay look-up seen"
    return seen


def _plan(platform: Platform, statement: str, params: Any) -> str:
    """The plan the database gives ``statement`` as it stands (nothing priced out)."""
    with platform.engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        cur = raw.cursor()
        if platform.engine.dialect.name == "postgresql":
            cur.execute("EXPLAIN " + statement, params)
        else:
            cur.execute("EXPLAIN QUERY PLAN " + statement, params)
        plan = "\n".join(str(r[-1]) for r in cur.fetchall())
        cur.close()
        return plan


def test_the_replay_look_up_probes_the_primary_key_per_device_and_op_id(
    platform: Platform,
) -> None:
    """Revision 0018: the device and its family (copies of one data dir) are one list, so the
    look-up is an index condition on both columns of the op log's primary key (device_id,
    op_id), on a log spread over many devices as a city's is; ``ix_ops_op_id`` is gone. Asked
    for "this device *or* a family member", only that index could probe by op id."""
    client = platform.client("wang")
    for n in range(40):  # other devices' logs, and this device's own
        _log(platform, f"other-{n}", 500, 0)
    _log(platform, client.device_id, 5_000, 0)
    db.analyze(platform.engine)
    people = iter(resident(grid=GRID_A, seq=n) for n in range(1, 100, 2))
    ops = [client.op(uuid7(), "create", {**next(people), "_status": "draft"}) for _ in range(30)]
    (statement, params), *_ = _replay_look_ups(platform, lambda: client.push(ops))
    plan = _plan(platform, statement, params)
    if platform.engine.dialect.name == "postgresql":
        probe = [line for line in plan.splitlines() if "on ops" in line]
        assert probe and "ops_pkey" in probe[0], plan
        cond = plan.split(probe[0], 1)[1].splitlines()[1]
        assert "Index Cond" in cond and "device_id" in cond and "op_id" in cond, plan
    else:
        assert "SEARCH ops USING PRIMARY KEY (device_id=? AND op_id=?)" in plan or (
            "SEARCH ops USING INDEX sqlite_autoindex_ops_1 (device_id=? AND op_id=?)" in plan
        ), plan


def test_the_look_up_answers_from_the_device_and_its_family_only(platform: Platform) -> None:
    """The family is still read in the same statement: an op a copy of the data dir sends
    again, which the original device logged, is answered from the original's log; so is the
    device's own op when the device has no ``devices`` row; another family's op is not."""
    op = p.Op(
        op_id="dev-1:7",
        record_id=uuid7(),
        form="resident",
        kind="create",
        fields={"name": "x"},
        edited_at="2026-12-01T08:00:00Z#0001",
        author="wang",
    )
    at = "2026-12-01T08:00:00Z"
    family = [("dev-1", "dev-1", None), ("dev-1b", "dev-1", "dev-1"), ("dev-2", "dev-2", None)]
    with platform.engine.begin() as conn:
        conn.execute(
            insert(db.devices),
            [
                {
                    "device_id": d,
                    "installation": d,
                    "username": "wang",
                    "root": r,
                    "parent": q,
                    "created_at": at,
                }
                for d, r, q in family
            ],
        )
        for device in ("dev-1", "lone"):
            conn.execute(
                insert(db.ops),
                {
                    "device_id": device,
                    "op_id": op.op_id,
                    "op_hash": oplog.op_hash(op),
                    "username": "wang",
                    "record_id": op.record_id,
                    "version": 1,
                    "result": "{}",
                    "at": at,
                },
            )
    with platform.engine.connect() as conn:

        def found(device: str) -> Any:
            match = oplog.lookup(conn, device, "wang", [op]).get(op.op_id)
            return match and match["device_id"]

        assert found("dev-1b") == "dev-1"  # a copy: the original's log
        assert found("dev-1") == "dev-1"
        assert found("lone") == "lone"  # no devices row: its own log
        assert found("dev-2") is None  # another data dir's op under the same id: new
