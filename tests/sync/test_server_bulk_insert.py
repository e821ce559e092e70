"""The server's bulk insert (``sync.server.bulk.insert_rows``: on SQLite a raw executemany of
tuples with the columns' scalar defaults filled in) against the plain ``insert(table)`` of the
same rows: both leave exactly the same rows, for every shape a push writes and for rows that
leave defaulted columns out."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, Engine, MetaData, String, Table, create_engine, insert, select
from sqlalchemy.exc import StatementError

from sync.server import bulk, db

TEXT = st.text(max_size=12)
NAME = st.text(min_size=1, max_size=12)
RECORD = st.fixed_dictionaries(
    {
        "form": NAME,
        "form_version": st.integers(1, 9),
        "grid": st.none() | NAME,
        "data": TEXT,
        "status": st.sampled_from(["draft", "complete"]),
        "version": st.integers(1, 9),
        "conflict": st.none() | TEXT,
        "seq": st.integers(0, 2**62),
        "created_at": NAME,
        "created_by": NAME,
        "updated_at": NAME,
        "updated_by": NAME,
        "title": TEXT,
        "deleted": st.booleans(),
        "stamps": TEXT,
    }
)
DEFAULTED = ("title", "deleted", "stamps")  # columns with a default ("", False, "{}")
KEY = st.fixed_dictionaries({"form": NAME, "key": NAME, "record_id": NAME})


def _engine() -> Engine:
    engine = create_engine("sqlite://")
    db.metadata.create_all(engine, tables=[db.records, db.record_keys])
    return engine


def _stored(engine: Engine, table: Any) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(table).order_by(*table.primary_key))]


@settings(max_examples=40, deadline=None)
@given(
    records=st.lists(RECORD, max_size=12),
    keys=st.lists(KEY, max_size=12, unique_by=lambda k: (k["form"], k["key"])),
    left_out=st.sets(st.sampled_from(DEFAULTED)),
)
def test_bulk_insert_leaves_the_rows_the_plain_insert_leaves(
    records: list[dict[str, Any]], keys: list[dict[str, Any]], left_out: set[str]
) -> None:
    # rows of one batch name the same columns (as a push's do); some defaulted ones left out
    records = [{k: v for k, v in r.items() if k not in left_out} for r in records]
    records = [{**r, "id": f"r{i}"} for i, r in enumerate(records)]
    bulk_db, plain_db = _engine(), _engine()
    for table, rows in ((db.records, records), (db.record_keys, keys)):
        with bulk_db.begin() as conn:
            bulk.insert_rows(conn, table, rows)
        with plain_db.begin() as conn:
            if rows:
                conn.execute(insert(table), rows)
        assert _stored(bulk_db, table) == _stored(plain_db, table)


def test_rows_without_defaulted_columns_get_the_defaults() -> None:
    row = {
        "form": "resident",
        "form_version": 1,
        "grid": None,
        "data": "{}",
        "status": "draft",
        "version": 1,
        "conflict": None,
        "seq": 0,
        "created_at": "t",
        "created_by": "u",
        "updated_at": "t",
        "updated_by": "u",
    }
    engine = _engine()
    with engine.begin() as conn:
        bulk.insert_rows(conn, db.records, [{**row, "id": f"r{i}"} for i in range(bulk.MIN_ROWS)])
    stored = {r.id: r for r in engine.connect().execute(select(db.records))}
    assert all((r.title, r.deleted, r.stamps) == ("", False, "{}") for r in stored.values())


@settings(max_examples=40, deadline=None)
@given(
    records=st.lists(
        st.tuples(RECORD, st.sets(st.sampled_from(DEFAULTED))), min_size=bulk.MIN_ROWS, max_size=12
    )
)
def test_rows_of_several_shapes_leave_what_the_plain_insert_leaves(
    records: list[tuple[dict[str, Any], set[str]]],
) -> None:
    """Each row leaves out its own defaulted columns: the shape check (one set of columns in
    every row, compared as key views) must hand a batch of several shapes to the plain
    ``insert(table)``, which then stores it, or refuses it, exactly as it would alone."""
    rows = [
        {**{k: v for k, v in r.items() if k not in out}, "id": f"r{i}"}
        for i, (r, out) in enumerate(records)
    ]
    outcomes = []
    for write in (
        lambda conn: bulk.insert_rows(conn, db.records, rows),
        lambda conn: conn.execute(insert(db.records), rows),
    ):
        engine = _engine()
        try:
            with engine.begin() as conn:
                write(conn)
        except StatementError as exc:
            outcomes.append(type(exc.orig))
        else:
            outcomes.append(_stored(engine, db.records))
    assert outcomes[0] == outcomes[1]


@settings(max_examples=20, deadline=None)
@given(values=st.lists(NAME, min_size=1, max_size=12, unique=True))
def test_a_table_of_one_column(values: list[str]) -> None:
    meta = MetaData()
    one = Table("one", meta, Column("v", String(20), primary_key=True))
    engine = create_engine("sqlite://")
    meta.create_all(engine)
    with engine.begin() as conn:
        bulk.insert_rows(conn, one, [{"v": v} for v in values])
    assert _stored(engine, one) == sorted((v,) for v in values)
