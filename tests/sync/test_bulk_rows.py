"""SQLite's bulk inserts put ``bulk.SQLITE_ROWS`` rows in each statement run
(``bulk._sqlite_insert``) and leave exactly what one row per run left: the same rows, in the
same order, whatever the chunking, the width or SQLite's parameter limit."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, create_engine, event, insert, text

from sync.server import bulk, db
from sync.server.tx import RECORD_COLUMNS
from tests.sync.test_checkpoint import _engine

VALUE = st.none() | st.integers(-(2**62), 2**62) | st.text(max_size=8) | st.floats(allow_nan=False)


@contextmanager
def _limits(rows: int, chunk: int, parameters: int) -> Iterator[None]:
    """``bulk``'s rows per statement, rows per chunk and parameter limit, for a while."""
    saved = bulk.SQLITE_ROWS, bulk.CHUNK, bulk.SQLITE_PARAMETERS
    bulk.SQLITE_ROWS, bulk.CHUNK, bulk.SQLITE_PARAMETERS = rows, chunk, parameters
    try:
        yield
    finally:
        bulk.SQLITE_ROWS, bulk.CHUNK, bulk.SQLITE_PARAMETERS = saved


def _table(conn: Connection, width: int) -> tuple[str, ...]:
    columns = tuple(f"c{i}" for i in range(width))
    conn.exec_driver_sql(f"CREATE TABLE t (n INTEGER PRIMARY KEY, {', '.join(columns)})")
    return columns


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    width=st.integers(1, 12),
    count=st.integers(0, 260),
    rows_per=st.integers(1, 120),
    chunk=st.integers(1, 300),
    parameters=st.sampled_from([7, 999, 32766]),
)
def test_rows_per_statement_leave_what_one_row_per_run_leaves(
    data: st.DataObject, width: int, count: int, rows_per: int, chunk: int, parameters: int
) -> None:
    rows = [tuple(data.draw(VALUE) for _ in range(width)) for _ in range(count)]
    stored = []
    widest = 0
    for fast in (False, True):
        engine = create_engine("sqlite://")

        @event.listens_for(engine, "before_cursor_execute")
        def _seen(_c: Any, _cur: Any, sql: str, *_rest: Any) -> None:
            nonlocal widest
            widest = max(widest, sql.count("?"))

        with engine.begin() as conn:
            columns = _table(conn, width)
            if fast:
                with _limits(rows_per, chunk, parameters):
                    bulk.insert_tuples(conn, "t", columns, iter(rows))
            else:  # the plain path: one row per run
                names = ", ".join(columns)
                one = f"INSERT INTO t ({names}) VALUES ({', '.join('?' * width)})"
                if rows:
                    conn.exec_driver_sql(one, rows)
            stored.append(conn.exec_driver_sql("SELECT * FROM t ORDER BY n").all())
        engine.dispose()
    assert stored[0] == stored[1]
    assert widest <= max(parameters, width)


@settings(max_examples=30, deadline=None)
@given(
    keys=st.lists(st.text(min_size=1, max_size=10), min_size=4, max_size=300, unique=True),
    rows_per=st.integers(1, 50),
)
def test_insert_rows_of_dicts_leaves_what_the_plain_insert_leaves(
    keys: list[str], rows_per: int
) -> None:
    rows = [{"form": "resident", "key": k, "record_id": f"r{i}"} for i, k in enumerate(keys)]
    stored = []
    for fast in (False, True):
        engine = create_engine("sqlite://")
        db.metadata.create_all(engine, tables=[db.record_keys])
        with engine.begin() as conn:
            if fast:
                with _limits(rows_per, bulk.CHUNK, bulk.SQLITE_PARAMETERS):
                    bulk.insert_rows(conn, db.record_keys, rows)
            else:
                conn.execute(insert(db.record_keys), rows)
            sql = "SELECT form, key, record_id FROM record_keys ORDER BY rowid"
            stored.append(conn.execute(text(sql)).all())
        engine.dispose()
    assert stored[0] == stored[1]


def test_a_thousand_records_take_ten_statement_runs(tmp_path: Any) -> None:
    """A push's 1 000 new records go in 10 runs of a 100-row INSERT (SQLite's own trace of
    the statements it runs), not 1 000 runs of a one-row one."""
    engine = _engine(tmp_path / "p.db")
    runs: list[str] = []
    rows = [
        (f"id{i:04}", "resident", 1, "g1", "", "{}", "draft", False, 1, None, "{}")
        + ("t", "u", "t", "u", i + 1)
        for i in range(1000)
    ]
    with db.write(engine) as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        raw.set_trace_callback(runs.append)
        bulk.insert_tuples(conn, "records", RECORD_COLUMNS, rows)
        raw.set_trace_callback(None)
        assert conn.exec_driver_sql("SELECT count(*) FROM records").scalar() == 1000
    inserts = [sql for sql in runs if re.match(r'INSERT INTO "?records', sql)]
    assert len(inserts) == 10
    engine.dispose()
