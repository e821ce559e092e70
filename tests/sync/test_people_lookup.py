"""The duplicate guard's people look-up (issue 19): it finds exactly the people
``Person.alike`` accepts, whatever the names hold, and it tests each birth date's people
against the pushed person of that date alone, not against every name of the push."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, event, insert, text

from sync.server import db
from sync.server.rows import Person
from sync.server.tx import Tx
from tests.sync.test_server_batch import _fresh

BIRTHS = ["1950-01-01", "1950-01-02", "1987-02-11"]
# names that stress the array and JSON texts: quotes, backslashes, commas, braces, spaces
NAMES = ["王伟", "汪伟", "张三", 'a"b', "c\\d", "e,f", "{g}", "h i", "NULL"]
PINYINS = ["wangwei", "zhangsan", 'a"b', "c\\d", "e,f", "{g}", "NULL"]

people = st.builds(
    Person, st.sampled_from(NAMES), st.sampled_from(PINYINS), st.sampled_from(BIRTHS)
)


def _date(day: int) -> str:
    return (dt.date(1950, 1, 1) + dt.timedelta(days=day)).isoformat()


def _url(backend: str, request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'people.db'}"
    url: str = request.getfixturevalue("pg_database")
    return url


def _store(engine: Engine, stored: list[tuple[str, Person]]) -> None:
    with db.write(engine) as conn:
        conn.execute(text("DELETE FROM people"))
        if stored:
            conn.execute(
                insert(db.people),
                [
                    {"record_id": rid, "form": form, **q.columns()}
                    for rid, q, form in ((r, q, "resident") for r, q in stored)
                ],
            )


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_people_look_up_finds_exactly_the_alike(
    backend: str, request: pytest.FixtureRequest, tmp_path: Any
) -> None:
    """For random stored people and a random push of people (repeats included), each pushed
    person's candidates are exactly the stored people ``alike`` it, in id order: a stored
    pinyin need not be the pinyin of its name (another pypinyin made it), so the name probe
    and the pinyin probe are both needed."""
    engine = _fresh(_url(backend, request, tmp_path))

    @settings(
        max_examples=60 if backend == "sqlite" else 25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(stored=st.lists(people, max_size=30), pushed=st.lists(people, min_size=1, max_size=12))
    def check(stored: list[Person], pushed: list[Person]) -> None:
        rows = [(f"r{n:03d}", q) for n, q in enumerate(stored)]
        _store(engine, rows)
        with db.write(engine) as conn:
            found = Tx(conn)
            found.prefetch_people("resident", pushed)
            for p in pushed:
                expected = [(rid, q) for rid, q in rows if p.alike(q)]
                assert found.same_person("resident", p) == expected, p

    try:
        check()
    finally:
        engine.dispose()


def _plan(engine: Engine, pushed: list[Person]) -> str:
    """The plan the database gives the look-up of ``pushed`` (PostgreSQL: sequential and
    bitmap scans priced out, test tables being small), as text."""
    seen: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        seen.append((statement, params))

    with engine.connect() as conn:
        event.listen(conn, "before_cursor_execute", capture)
        Tx(conn).prefetch_people("resident", pushed)
        event.remove(conn, "before_cursor_execute", capture)
        ((statement, params),) = [s for s in seen if "people" in s[0]]
        raw = conn.connection.driver_connection
        assert raw is not None
        if conn.dialect.name == "postgresql":
            with raw.cursor() as cur:
                cur.execute("SET LOCAL enable_seqscan = off")
                cur.execute("SET LOCAL enable_bitmapscan = off")
                cur.execute("EXPLAIN " + statement, params)
                return "\n".join(r[0] for r in cur.fetchall())
        found = raw.execute("EXPLAIN QUERY PLAN " + statement, params).fetchall()
        return "\n".join(str(r[-1]) for r in found)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_each_pushed_person_probes_its_own_birth_date(
    backend: str, request: pytest.FixtureRequest, tmp_path: Any
) -> None:
    """Many people born on the pushed dates: the look-up is a loop over the pushed people,
    each probing ``ix_people_birth`` by (form, birth) and testing the rows found against its
    own name and pinyin (PostgreSQL: from the index alone). Before, one scan of every pushed
    date tested each row against all the push's names and pinyins (18 ms of a backend's CPU
    a call on the bench's 2.57 M-person platform; now 4.4 ms, tests/bench/bench_plan_costs)."""
    engine = _fresh(_url(backend, request, tmp_path))
    try:
        # a city's spread: a thousand birth dates, three people each (two of them pushed)
        crowd = [(f"x{n:05d}", Person(f"n{n}", f"p{n}", _date(n % 1000))) for n in range(3000)]
        _store(engine, crowd)
        if backend == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM (ANALYZE) people"))
        else:
            with db.write(engine) as conn:
                conn.execute(text("ANALYZE"))
        plan = _plan(engine, [Person("王伟", "wangwei", _date(0)), Person("n7", "p7", _date(7))])
    finally:
        engine.dispose()
    lines = plan.splitlines()
    if backend == "postgresql":
        assert "Nested Loop" in plan and "Function Scan on wanted" in plan, plan
        assert "Index Only Scan using ix_people_birth" in plan, plan
        conds = " ".join(line for line in lines if "Index Cond" in line)
        assert "birth = wanted.births" in conds, plan
        tested = " ".join(line for line in lines if "Filter" in line)
        assert "= wanted.names" in tested and "= wanted.pinyins" in tested, plan
        assert "ANY" not in plan, plan
    else:
        people = next(i for i, line in enumerate(lines) if "people" in line)
        assert "VIRTUAL TABLE" in " ".join(lines[:people]), plan  # the pushed people first
        assert "USING INDEX ix_people_birth (form=? AND birth=?)" in lines[people], plan
        assert "LIST SUBQUERY" not in plan, plan


def test_on_sqlite_each_row_is_read_from_its_own_text(tmp_path: Any) -> None:
    """SQLite gets the pushed people as one JSON list of rows, each column read from its row's
    own small text. Read by position from whole lists (``json_extract(?, '$[' || key || ']')``)
    every row parsed every list again: a push of 1 000 new residents (10 000 pushed in
    requests of 1 000) spent 3 s of its 3.6 s SQL floor in that look-up."""
    engine = _fresh(f"sqlite:///{tmp_path / 'rows.db'}")
    seen: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if "people" in statement:
            seen.append((statement, params))

    pushed = [Person(f"n{n}", f"p{n}", _date(n)) for n in range(3)]
    try:
        with engine.connect() as conn:
            event.listen(conn, "before_cursor_execute", capture)
            Tx(conn).prefetch_people("resident", pushed)
    finally:
        engine.dispose()
    ((statement, params),) = seen
    assert "json_extract(?" not in statement, statement
    rows = [p for p in params if isinstance(p, str) and p.startswith("[[")]
    assert len(rows) == 1 and json.loads(rows[0]) == [[p.birth, p.name, p.pinyin] for p in pushed]
