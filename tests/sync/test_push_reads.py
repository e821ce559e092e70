"""The reads of a push (issue 19: server CPU per nightly sync): how many statements the check
and the prefetch run, that they are built once, and that the reads a chunk skips could not
have found anything.

A nightly sync pushes ~50 new residents. The check and the prefetch read what the apply
needs in bulk; each statement costs SQLAlchemy and the driver far more than the database.
"""

from __future__ import annotations

import collections
import datetime as dt
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, event, text

from app.core import ids
from app.core.forms import FormSet
from sync import protocol as p
from sync.server import db, sqlin, tx
from sync.server.auth import User
from sync.server.service import Service
from sync.server.tx import Tx
from tests.factories import resident
from tests.sync.conftest import GRID_A, GRID_B, Platform, resident_creates, statements_run
from tests.sync.test_server_batch import RECORDS, WORKER, _fresh, op_lists

_FIRST_TABLE = re.compile(r"\bFROM\s+\"?(\w+)", re.IGNORECASE)
_JOINED_TABLE = re.compile(r"\bJOIN\s+\"?(\w+)", re.IGNORECASE)
_ROW_SOURCES = {"unnest", "json_each"}  # rows of run-time lists, joined to the table read
NOT_READS_OF_THIS_PATH = {"counters", "task_items"}  # numbering, tasks' automatic done


def _creates(count: int, device: str, start: int = 0) -> list[p.Op]:
    return resident_creates(count, device, dt.date(1950, 1, 1), start, seq=11)


def _push(service: Service, ops: list[p.Op], device: str = "dev") -> list[dict[str, Any]]:
    req = p.PushRequest(protocol=p.SUPPORTED_PROTOCOLS[-1], device_id=device, ops=ops)
    return service.push(WORKER, req, device)


def _reads(statements: list[str]) -> collections.Counter[str]:
    """The table each SELECT reads first (its FROM), counted."""
    found: collections.Counter[str] = collections.Counter()
    for s in statements:
        if s.lstrip().upper().startswith("SELECT"):
            match = _FIRST_TABLE.search(s)
            table = match.group(1) if match else "?"
            if table in _ROW_SOURCES:
                joined = _JOINED_TABLE.search(s)
                table = joined.group(1) if joined else table
            if table not in NOT_READS_OF_THIS_PATH:
                found[table] += 1
    return found


def test_a_push_of_new_residents_reads_five_times(db_url: str, formset: FormSet) -> None:
    """50 creates of new ids: aliases of the ids, the records (loaded once, for check and
    apply), the op log with the device's family in the same statement, natural-key holders
    and claimants in one statement, and the people who may be the same. No read of aliases
    pointing at the new ids nor of this device's versions of them: neither can exist."""
    engine = _fresh(db_url)
    try:
        service = Service(engine, formset)
        _push(service, _creates(50, "dev"))  # a platform that holds records and this device's ops
        with statements_run(engine) as statements:
            results = _push(service, _creates(50, "dev", start=50))
        assert {r["status"] for r in results} == {"applied"}
        assert _reads(statements) == {
            "aliases": 1,
            "records": 1,
            "ops": 1,
            "record_keys": 1,
            "people": 1,
        }
        keys = [s for s in statements if "FROM record_keys" in s]
        assert "record_claims" in keys[0]
    finally:
        engine.dispose()


def test_creates_whose_id_another_grid_holds_are_read_with_the_others(
    db_url: str, formset: FormSet
) -> None:
    """A pushed resident whose ID number a record outside the caller's scope holds is a new
    record (a transfer claim), so its possible duplicates are read with the chunk's other
    people: one statement. The prefetch skipped it as if it merged, and each such create read
    people again on its own (≈ 400 extra look-ups in a 640-sync city night)."""
    engine = _fresh(db_url)
    try:
        service = Service(engine, formset)
        first = _creates(5, "dev")
        _push(service, first)
        other = User("li", "worker", None, frozenset({GRID_B}))
        moved = [  # the same people, registered again in the other grid
            p.Op(
                op_id=f"li-dev:{i}",
                record_id=ids.uuid7(),
                form="resident",
                kind="create",
                fields={**op.fields, "grid": GRID_B},
                edited_at=op.edited_at,
                author="li",
            )
            for i, op in enumerate(first)
        ]
        fresh = [
            p.Op(
                **{**vars(op), "op_id": f"li-dev:{50 + i}", "fields": {**op.fields, "grid": GRID_B}}
            )
            for i, op in enumerate(_creates(20, "x", start=100))
        ]
        req = p.PushRequest(
            protocol=p.SUPPORTED_PROTOCOLS[-1], device_id="li-dev", ops=[*moved, *fresh]
        )
        with statements_run(engine) as statements:
            results = service.push(other, req, "li-dev")
        assert {r["status"] for r in results} == {"applied"}
        assert _reads(statements)["people"] == 1
    finally:
        engine.dispose()


def test_the_reads_of_a_push_are_built_once(db_url: str, formset: FormSet) -> None:
    """The check's and the prefetch's statements are the same objects push after push (a
    statement built per call coerced each of its values into SQL again)."""
    engine = _fresh(db_url)
    seen: list[list[int]] = [[], []]

    def note(_conn: Any, clause: Any, *_args: Any) -> None:
        if getattr(clause, "is_select", False) and _reads([str(clause)]):
            seen[-1].append(id(clause))

    try:
        service = Service(engine, formset)
        _push(service, _creates(20, "dev"))
        event.listen(engine, "before_execute", note)
        try:
            for n in (1, 2):
                seen.append([])
                _push(service, _creates(20, "dev", start=20 * n))
        finally:
            event.remove(engine, "before_execute", note)
        first, second = seen[-2], seen[-1]
        assert len(first) >= 5
        built_per_call = [c for c in first if c not in second]
        assert built_per_call == [], f"{len(built_per_call)} of {len(first)} rebuilt"
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_records_not_in_the_database_have_no_incoming_aliases_nor_device_versions(
    backend: str, request: pytest.FixtureRequest, tmp_path: Any, formset: FormSet
) -> None:
    """``Tx.known_absent`` answers without a query what ``prefetch_incoming`` and
    ``prefetch_device_versions`` read, for every id the database has no record of: after
    random pushes from two devices (creates merged by natural key leave aliases, rejected
    ops are logged without a version), both ways agree on every id, alias ids included."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'absent.db'}"
    else:
        url = request.getfixturevalue("pg_database")

    @settings(
        max_examples=40 if backend == "sqlite" else 12,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(first=op_lists(), second=op_lists(), extra=st.sampled_from([[], [ids.uuid7()]]))
    def check(first: list[p.Op], second: list[p.Op], extra: list[str]) -> None:
        engine = _fresh(url)
        try:
            service = Service(engine, formset)
            service.apply(WORKER, "dev", first)
            service.apply(
                WORKER, "other", [o.model_copy(update={"op_id": "o" + o.op_id}) for o in second]
            )
            _compare(engine, [*RECORDS, *extra])
        finally:
            engine.dispose()

    check()


def _compare(engine: Engine, wanted: list[str]) -> None:
    with db.write(engine) as conn:
        fast, plain = Tx(conn), Tx(conn)
        fast.load_many(wanted)
        absent = [i for i in wanted if fast.rows[i] is None]
        for device in ("dev", "other"):
            fast.known_absent(device, wanted)
            plain.prefetch_device_versions(device, absent)
            for i in absent:
                assert fast.device_version(device, i) == plain.device_version(device, i)
        plain.prefetch_incoming(absent)
        for i in absent:
            assert fast.incoming(i) == plain.incoming(i)
        assert all((("dev", i) in fast._device_versions) for i in absent)


def _task_on(engine: Engine, record_id: str, fields: list[str]) -> str:
    """An open verify task with one open item on ``record_id`` (as the console issues it)."""
    at = ids.now_iso()
    item = ids.uuid7()
    with db.write(engine) as conn:
        conn.execute(
            db.tasks.insert().values(
                id="t1",
                kind="verify",
                title="核实电话",
                form="resident",
                fields=db.dumps(fields),
                issued_at=at,
                issued_by="sup",
                updated_at=at,
                updated_by="sup",
                seq=0,
            )
        )
        conn.execute(
            db.task_items.insert().values(
                id=item, task_id="t1", record_id=record_id, grid=GRID_A, updated_at=at, seq=0
            )
        )
    return item


def test_a_push_of_new_records_reads_no_task_items(db_url: str, formset: FormSet) -> None:
    """Task items name records that existed when their task was issued, so the automatic done
    after a push (PROTOCOL.md §13.1) looks only at records the chunk did not create: a push
    of new residents reads nothing there; a save of an item's record in the same push
    still finishes the item."""
    engine = _fresh(db_url)
    try:
        service = Service(engine, formset)
        known = _creates(1, "dev")
        del known[0].fields["phone"]
        _push(service, known)
        item = _task_on(engine, known[0].record_id, ["phone"])
        with statements_run(engine) as statements:
            assert {r["status"] for r in _push(service, _creates(30, "dev", 1))} == {"applied"}
        assert not [s for s in statements if "FROM task_items" in s]
        fill = known[0].model_copy(
            update={"op_id": "dev:fill", "kind": "update", "fields": {"phone": "13900000000"}}
        )
        results = _push(service, [fill, *_creates(10, "dev", 31)])
        assert {r["status"] for r in results} == {"applied"}
        with db.read(engine) as conn:
            state = conn.execute(db.task_items.select().where(db.task_items.c.id == item)).one()
            done = conn.execute(db.task_results.select()).all()
        assert state.state == "done"
        assert [(r.item_id, r.source, r.state) for r in done] == [(item, "save", "done")]
    finally:
        engine.dispose()


def _people_plan(
    platform: Platform, client: Any, ops: list[Any]
) -> tuple[str, list[dict[str, Any]]]:
    """Push ``ops``; the plan PostgreSQL gives the push's first people look-up (sequential and
    bitmap scans priced out: test tables are small), and the push's results."""
    seen: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if "JOIN people" in statement and "birth" in statement:
            seen.append((statement, params))

    event.listen(platform.engine, "before_cursor_execute", capture)
    try:
        results = client.push(ops)
    finally:
        event.remove(platform.engine, "before_cursor_execute", capture)
    assert seen
    with platform.engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cur:
            cur.execute("SET LOCAL enable_seqscan = off")
            cur.execute("SET LOCAL enable_bitmapscan = off")
            cur.execute("EXPLAIN " + seen[0][0], seen[0][1])
            return "\n".join(r[0] for r in cur.fetchall()), results


def test_the_duplicate_guard_reads_people_from_the_index_alone(platform: Platform) -> None:
    """Which live people share a pushed resident's birth date and name or pinyin: on
    PostgreSQL an index-only scan of ``ix_people_birth`` (revision 0017). With the index on
    (form, birth) alone each birth date's people were fetched from the heap: 8 ms a push on a
    street office of 955 k residents."""
    if platform.engine.dialect.name != "postgresql":
        pytest.skip("INCLUDE columns are PostgreSQL's; SQLite keeps (form, birth)")
    client = platform.client("wang")
    people = [resident(grid=GRID_A, seq=n) for n in range(1, 80, 2)]
    ops = [client.op(ids.uuid7(), "create", {**q, "_status": "draft"}) for q in people]
    assert {r["status"] for r in client.push(ops[:30])} == {"applied"}
    with platform.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM (ANALYZE) people"))
    plan, _results = _people_plan(platform, client, ops[30:])
    assert "Index Only Scan using ix_people_birth" in plan, plan


def test_the_duplicate_guard_is_planned_without_its_values(platform: Platform) -> None:
    """PostgreSQL plans this statement at every call (it is not prepared): the pushed people's
    birth dates, names and pinyins reach the planner as run-time arrays (``sqlin.zipped``),
    so it does not estimate each value against the columns' statistics; each person's birth
    date is an index probe's condition, and the rows found are tested against that person's
    name and pinyin only."""
    if platform.engine.dialect.name != "postgresql":
        pytest.skip("SQLite plans IN lists of bound parameters; nothing to estimate")
    client = platform.client("wang")
    born = [dt.date(1950, 1, 1) + dt.timedelta(days=97 * n) for n in range(60)]
    people = [resident(grid=GRID_A, seq=2 * n + 1, birth=b) for n, b in enumerate(born)]
    ops = [client.op(ids.uuid7(), "create", {**q, "_status": "draft"}) for q in people]
    assert {r["status"] for r in client.push(ops[:40])} == {"applied"}
    with platform.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        # a city's spread: about two people per birth date (statistics the planner weighs)
        conn.execute(
            text(
                "INSERT INTO people (record_id, form, name, pinyin, birth) SELECT 'x' || g, "
                "'resident', 'n' || g, 'p' || g, to_char(date '1940-01-01' + g % 20000, "
                "'YYYY-MM-DD') FROM generate_series(1, 40000) g"
            )
        )
        conn.execute(text("VACUUM (ANALYZE) people"))
    plan, results = _people_plan(platform, client, ops[40:])
    assert {r["status"] for r in results} == {"applied"}
    assert not [b for b in born if b.isoformat() in plan], plan  # no birth is a constant
    assert people[40]["name"] not in plan, plan  # nor a name
    cond = " ".join(line for line in plan.splitlines() if "Index Cond" in line)
    assert "ix_people_birth" in plan and "birth = wanted.births" in cond, plan
    tested = " ".join(line for line in plan.splitlines() if "Filter" in line)
    assert "name)::text = wanted.names" in tested and "ANY" not in tested, plan


def test_the_duplicate_guard_does_not_weigh_names_when_planned(platform: Platform) -> None:
    """The names and pinyins reach the planner as run-time arrays, not constants: it does
    not weigh each of a push's ~100 values against the columns' common values (0.5 ms of a
    backend's CPU per call on a 200 k-person table, 0.2 ms without), and a common name is
    estimated like a rare one. The rows found stay the same (tests/sync/test_people_lookup)."""
    if platform.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's planner statistics")
    with platform.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(
            text(
                "INSERT INTO people (record_id, form, name, pinyin, birth) SELECT 'x' || g, "
                "'resident', CASE WHEN g % 2 = 0 THEN '王伟' ELSE 'n' || g END, CASE WHEN "
                "g % 2 = 0 THEN 'wangwei' ELSE 'p' || g END, to_char(date '1940-01-01' + "
                "g % 20000, 'YYYY-MM-DD') FROM generate_series(1, 40000) g"
            )
        )
        conn.execute(text("VACUUM (ANALYZE) people"))
        stmt = tx._PEOPLE.on(conn)
        sql = str(stmt.compile(dialect=conn.dialect))
        births = sqlin.array_literal(["1950-01-01"])
        raw = conn.connection.driver_connection
        assert raw is not None

        def estimated(names: list[str], pinyins: list[str]) -> float:
            params = {
                "form": "resident",
                "births": births,
                "names": sqlin.array_literal(names),
                "pinyins": sqlin.array_literal(pinyins),
            }
            with raw.cursor() as cur:
                cur.execute("EXPLAIN (FORMAT JSON) " + sql, params)
                row = cur.fetchone()
            assert row is not None
            return float(row[0][0]["Plan"]["Plan Rows"])

        common = estimated(["王伟"], ["wangwei"])
        rare = estimated(["没有的名字"], ["meiyou"])
    assert common == rare, (common, rare)
