"""What a push writes, and what it no longer has to: the op log keeps only the indexes a query
reads (each costs every logged op an insertion), and the reads of a push still find theirs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import event, insert, inspect, select, update

from app.core.ids import uuid7
from sync.merge import Stamp
from sync.server import bulk, db, rows
from tests.factories import resident
from tests.sync.conftest import GRID_A, Platform


def test_the_op_log_keeps_only_the_indexes_a_query_reads(platform: Platform) -> None:
    """ix_ops_record_id answered no query (revision 0015), nor does ix_ops_op_id since the
    replay look-up probes the primary key with the device's family as a list (revision 0018)."""
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


STAMP = st.builds(Stamp, st.text(max_size=30), st.text(max_size=20))


@settings(max_examples=200, deadline=None)
@given(stamps=st.dictionaries(st.text(max_size=12), STAMP, max_size=20))
def test_stamps_read_back_as_written_in_either_form(stamps: dict[str, Stamp]) -> None:
    """The grouped form (each stamp once) and the per-field form of rows written before it
    both read back as the stamps written."""
    text = rows.stamps_text(stamps)
    assert rows.stamps_of(text) == stamps
    per_field = db.dumps({k: [s.at, s.device] for k, s in stamps.items()})
    assert rows.stamps_of(per_field) == stamps
    # a held record's stamps, read at first use, are the same stamps
    assert rows.StoredStamps(text) == stamps and dict(rows.StoredStamps(per_field)) == stamps
    # the grouped form reads each stamp once, shared by its fields (they are immutable)
    assert len({id(s) for s in rows.stamps_of(text).values()}) == len(set(stamps.values()))


def _stored_stamps(platform: Platform, record_id: str) -> str:
    with platform.engine.connect() as conn:
        stmt = select(db.records.c.stamps).where(db.records.c.id == record_id)
        return str(conn.execute(stmt).scalar_one())


def test_a_new_record_stores_its_one_stamp_once(platform: Platform) -> None:
    client = platform.client("wang")
    rid = uuid7()
    op = client.op(rid, "create", {**resident(grid=GRID_A, seq=7), "_status": "draft"})
    assert client.push([op])[0]["status"] == "applied"
    stored = json.loads(_stored_stamps(platform, rid))
    fields = {k for k in op["fields"] if k != "_status"}
    assert stored == [[op["edited_at"], client.device_id, sorted(stored[0][2])]]
    assert fields <= set(stored[0][2])


def test_a_record_stamped_per_field_merges_as_before(platform: Platform) -> None:
    """A row written before the grouped form: a concurrent edit of another field from another
    device merges field by field, and the row is rewritten in the grouped form."""
    wang, other = platform.client("wang"), platform.client("wang")
    rid = uuid7()
    create = wang.op(rid, "create", {**resident(grid=GRID_A, seq=9), "_status": "draft"})
    assert wang.push([create])[0]["status"] == "applied"
    stamps = rows.stamps_of(_stored_stamps(platform, rid))
    old = db.dumps({k: [s.at, s.device] for k, s in stamps.items()})
    with platform.engine.begin() as conn:
        conn.execute(update(db.records).where(db.records.c.id == rid).values(stamps=old))
    first = wang.op(rid, "update", {"phone": "13900000001"}, base_version=1)
    second = other.op(rid, "update", {"residence_address": "幸福路2号"}, base_version=1)
    assert wang.push([first])[0]["status"] == "applied"
    answer = other.push([second])[0]
    assert answer["status"] == "applied" and answer["version"] == 3, answer
    got = platform.service.get_record(_admin(), rid)
    assert got["data"]["phone"] == "13900000001"
    assert got["data"]["residence_address"] == "幸福路2号"
    stamps = rows.stamps_of(_stored_stamps(platform, rid))
    assert stamps["phone"].device == wang.device_id
    assert stamps["residence_address"].device == other.device_id
    assert stamps["name"] == Stamp(create["edited_at"], wang.device_id)
    assert isinstance(json.loads(_stored_stamps(platform, rid)), list)


def _admin() -> Any:
    from sync.server.auth import User

    return User("root", "admin", None, None)


def test_a_race_raised_by_a_raw_copy_runs_the_chunk_again(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two copies of one data dir pushing the same creates at once: the loser's COPY (of
    search terms then, of pending records or of any table's rows now; psycopg's own cursor,
    so the error is psycopg's, not SQLAlchemy's) hits the winner's rows. That is a unique-key
    race like any other: the chunk runs again and sees the winner's commit. It answered 500
    (seen in test_stateful on PostgreSQL). Four creates: fewer rows go by INSERT, not COPY."""
    if platform.engine.dialect.name != "postgresql":
        pytest.skip("COPY is PostgreSQL's")
    import psycopg

    real, raised = bulk.copy_tuples, []

    def copy_once_racing(*args: Any, **kwargs: Any) -> None:
        if not raised:
            raised.append(1)
            raise psycopg.errors.UniqueViolation("duplicate key value (a concurrent copy)")
        real(*args, **kwargs)

    monkeypatch.setattr(bulk, "copy_tuples", copy_once_racing)
    client = platform.client("wang")
    rids = [uuid7() for _ in range(bulk.MIN_ROWS)]
    answer = client.push(
        [client.op(rid, fields=resident(grid=GRID_A, seq=2 * n + 1)) for n, rid in enumerate(rids)]
    )
    assert raised and {a["status"] for a in answer} == {"applied"}, answer
    with platform.engine.connect() as conn:
        stmt = select(db.records.c.version).where(db.records.c.id.in_(rids))
        assert conn.execute(stmt).all() == [(1,)] * len(rids)
