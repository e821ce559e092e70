"""Many rows into one table at once, on either database.

Why: a push of 50 new residents writes ~250 rows over five tables. psycopg's ``executemany``
sends one Bind/Execute per row; measured for 50 rows of 13 columns (one process, PostgreSQL
on loopback): executemany 0.91 ms CPU / 4.5 ms wall, a multi-row VALUES 1.63 / 6.7 (psycopg
re-parses the long statement each time), unnest of arrays 0.67-0.75 / 3.9, ``COPY FROM
STDIN`` 0.19 / 1.4. So PostgreSQL gets COPY, inside the push's transaction. SQLite gets the
rows as tuples straight from here (``insert(table)`` with dicts compiled and processed each
row's parameters in Python: ~7 % of a 10 k push's server time), the columns' scalar defaults
filled in as SQLAlchemy fills them, ``SQLITE_ROWS`` rows per statement (``_sqlite_insert``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from itertools import chain, islice
from operator import itemgetter
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.engine import Connection

MIN_ROWS = 4  # below this a plain INSERT costs less than starting a COPY
CHUNK = 5000  # rows per executemany
SQLITE_ROWS = 100  # rows per INSERT statement on SQLite (fewer when they would pass its limit)
# host parameters one SQLite statement may hold (SQLITE_MAX_VARIABLE_NUMBER): 999 before 3.32
SQLITE_PARAMETERS = 32766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999


def insert_rows(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (dicts, as ``insert(table)`` takes them)."""
    if not rows:
        return
    first = rows[0].keys()
    # one shape: the same set of columns in every row (a comparison of key views, in C)
    if len(rows) < MIN_ROWS or not all(row.keys() == first for row in rows):
        conn.execute(insert(table), list(rows))  # few rows, or rows of several shapes
        return
    columns = tuple(first)
    pick = _picker(columns)
    if conn.dialect.name == "postgresql":
        copy_tuples(conn, table.name, columns, [pick(row) for row in rows])
        return
    defaults = _scalar_defaults(table, columns)
    if defaults is None:  # a default SQLAlchemy computes per row
        conn.execute(insert(table), list(rows))
        return
    names = columns + tuple(defaults)
    values = tuple(defaults.values())
    _sqlite_insert(
        conn, _insert_sql(conn, table.name, names), len(names), [pick(row) + values for row in rows]
    )


@cache
def _picker(columns: tuple[str, ...]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """A row's values in ``columns`` order as a tuple (``itemgetter``: one call in C per row,
    not a generator per row; a 50-op push builds ~300 such tuples)."""
    if len(columns) == 1:
        name = columns[0]
        return lambda row: (row[name],)
    return itemgetter(*columns)


def _scalar_defaults(table: Table, columns: tuple[str, ...]) -> dict[str, Any] | None:
    """The Python-side defaults ``insert(table)`` would add for the columns not given, when
    all are plain values (None when one is computed)."""
    out: dict[str, Any] = {}
    for column in table.columns:
        if column.name in columns or column.default is None:
            continue
        if not column.default.is_scalar:
            return None
        out[column.name] = column.default.arg  # type: ignore[attr-defined]
    return out


def _insert_sql(conn: Connection, table: str, columns: tuple[str, ...]) -> str:
    """The statement ``insert(table)`` compiles to up to its values (names quoted only where
    SQL needs it)."""
    quote = conn.dialect.identifier_preparer.quote
    return f"INSERT INTO {quote(table)} ({', '.join(quote(c) for c in columns)})"


def _sqlite_insert(
    conn: Connection, into: str, width: int, rows: Iterable[tuple[Any, ...]]
) -> None:
    """SQLite: ``rows`` (tuples of ``width`` values) inserted by ``into`` (the statement up to
    its values), ``SQLITE_ROWS`` rows per statement run, the rest of each chunk one per run.

    Why: each run of an INSERT opens a cursor on its table and on each of its indexes and seeks
    them; a 1 000-row ``executemany`` did that 1 000 times. Replayed on plain sqlite3, a push
    of 10 k new residents inserted its rows in 0.159 s of CPU one row a run and in 0.134 s
    100 rows a run (50: 0.156, 1 000: 0.142). The full statements are one text per table,
    kept by the driver's statement cache; rows go in in their order, as one by one."""
    per = max(1, min(SQLITE_ROWS, SQLITE_PARAMETERS // width))
    one = f"{into} VALUES ({', '.join('?' * width)})"
    it = iter(rows)
    while chunk := list(islice(it, CHUNK)):
        full = len(chunk) - len(chunk) % per
        if full:
            flat = chain.from_iterable
            runs = [tuple(flat(chunk[i : i + per])) for i in range(0, full, per)]
            conn.exec_driver_sql(_rows_sql(one, per), runs)
        if full < len(chunk):
            conn.exec_driver_sql(one, chunk[full:])


@cache
def _rows_sql(one: str, rows: int) -> str:
    """``one`` (an INSERT of one row of ``?``) with ``rows`` rows of values."""
    into, _, values = one.partition(" VALUES ")
    return f"{into} VALUES {', '.join([values] * rows)}"


def copy_tuples(
    conn: Connection, table: str, columns: tuple[str, ...], rows: Sequence[Sequence[Any]]
) -> None:
    """PostgreSQL only: ``rows`` (values in ``columns`` order) in one ``COPY FROM STDIN``, in
    this transaction (no conflict handling: none of the rows may be stored yet)."""
    raw = conn.connection.driver_connection  # psycopg's connection, in this transaction
    assert raw is not None
    with raw.cursor() as cur, cur.copy(_copy_sql(table, columns)) as copy:
        for row in rows:
            copy.write_row(row)


def insert_tuples(
    conn: Connection, table: str, columns: tuple[str, ...], rows: Iterable[tuple[Any, ...]]
) -> None:
    """Insert many rows given as tuples in ``columns`` order, streamed: COPY on PostgreSQL
    (a 100 000-item task: executemany took most of its 9-15 s), else ``_sqlite_insert`` in
    chunks."""
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cur, cur.copy(_copy_sql(table, columns)) as copy:
            for row in rows:
                copy.write_row(row)
        return
    names = ", ".join(f'"{c}"' for c in columns)
    _sqlite_insert(conn, f'INSERT INTO "{table}" ({names})', len(columns), rows)


@cache
def _copy_sql(table: str, columns: tuple[str, ...]) -> str:
    names = ", ".join(f'"{c}"' for c in columns)
    return f'COPY "{table}" ({names}) FROM STDIN'
