"""What a push writes, and what it no longer has to: the op log keeps only the indexes a query
reads (each costs every logged op an insertion), and the reads of a push still find theirs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, insert, inspect

from app.core.ids import uuid7
from sync.server import db
from tests.factories import resident
from tests.sync.conftest import GRID_A, Platform


def test_the_op_log_keeps_only_the_indexes_a_query_reads(platform: Platform) -> None:
    """ix_ops_record_id and ix_ops_op_id answered no query (revision 0015_h_pwrite)."""
    names = {i["name"] for i in inspect(platform.engine).get_indexes("ops")}
    assert names == {"ix_ops_device_record", "ix_ops_device_user_at"}


def _plans(platform: Platform, work: Any) -> list[str]:
    """The plan of every statement reading ``ops`` that ``work`` runs (PostgreSQL: with
    sequential scans priced out, so an index that can answer is taken on a small table)."""
    plans: list[str] = []
    pg = platform.engine.dialect.name == "postgresql"

    def plan(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if "FROM ops" not in statement or statement.startswith("EXPLAIN"):
            return
        raw = cursor.connection.cursor()
        if pg:
            raw.execute("SET LOCAL enable_seqscan = off")
            raw.execute("EXPLAIN " + statement, params)
        else:
            raw.execute("EXPLAIN QUERY PLAN " + statement, params)
        plans.append("\n".join(str(r[-1]) for r in raw.fetchall()))
        if pg:
            raw.execute("SET LOCAL enable_seqscan = on")

    event.listen(platform.engine, "before_cursor_execute", plan)
    try:
        work()
    finally:
        event.remove(platform.engine, "before_cursor_execute", plan)
    return plans


def test_a_push_reads_the_op_log_through_an_index(platform: Platform) -> None:
    """The replay look-up (op ids of the device) and what the device last wrote on records
    are each one index range on both columns, with the device's log far bigger than the push."""
    client = platform.client("wang")
    logged = [
        {
            "device_id": client.device_id,
            "op_id": f"{client.device_id}:old-{n}",
            "username": "wang",
            "record_id": f"r{n}",
            "version": 1,
            "result": "{}",
            "at": "2026-12-01T08:00:00Z",
        }
        for n in range(30000)
    ]
    with platform.engine.begin() as conn:
        conn.execute(insert(db.ops), logged)
    people = [resident(grid=GRID_A, seq=n) for n in range(1, 60, 2)]
    ops = [client.op(uuid7(), "create", {**p, "_status": "draft"}) for p in people]
    assert {r["status"] for r in client.push(ops[:20])} == {"applied"}
    db.analyze(platform.engine)
    plans = _plans(platform, lambda: client.push(ops))  # 20 replays, 10 new
    assert len(plans) >= 2, plans
    for text in plans:
        assert "Seq Scan" not in text and "SCAN ops" not in text.replace("USING", ""), text
        if platform.engine.dialect.name == "postgresql":
            cond = " ".join(line for line in text.splitlines() if "Index Cond" in line)
        else:
            cond = text
        assert "device_id" in cond and ("op_id" in cond or "record_id" in cond), text
