"""Many rows into one table at once, on either database.

Why: a push of 50 new residents writes ~250 rows over five tables. psycopg's ``executemany``
sends one Bind/Execute per row; measured for 50 rows of 13 columns (one process, PostgreSQL
on loopback): executemany 0.91 ms CPU / 4.5 ms wall, a multi-row VALUES 1.63 / 6.7 (psycopg
re-parses the long statement each time), unnest of arrays 0.67-0.75 / 3.9, ``COPY FROM
STDIN`` 0.19 / 1.4. So PostgreSQL gets COPY, inside the push's transaction. SQLite's
``executemany`` is already a loop in C over one prepared statement; it gets the rows as tuples
straight from here (``insert(table)`` with dicts compiled and processed each row's
parameters in Python: ~7 % of a 10 k push's server time), the columns' scalar defaults
filled in as SQLAlchemy fills them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from itertools import islice
from operator import itemgetter
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.engine import Connection

MIN_ROWS = 4  # below this a plain INSERT costs less than starting a COPY
CHUNK = 5000  # rows per executemany


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
    conn.exec_driver_sql(
        _insert_sql(conn, table.name, names),
        [pick(row) + values for row in rows],
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
    """The statement ``insert(table)`` compiles to (names quoted only where SQL needs it)."""
    quote = conn.dialect.identifier_preparer.quote
    names = ", ".join(quote(c) for c in columns)
    return f"INSERT INTO {quote(table)} ({names}) VALUES ({', '.join('?' * len(columns))})"


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
    (a 100 000-item task: executemany took most of its 9-15 s), else ``executemany`` in chunks
    (SQLite's is a loop in C)."""
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cur, cur.copy(_copy_sql(table, columns)) as copy:
            for row in rows:
                copy.write_row(row)
        return
    names = ", ".join(f'"{c}"' for c in columns)
    sql = f'INSERT INTO "{table}" ({names}) VALUES ({", ".join("?" * len(columns))})'
    it = iter(rows)
    while chunk := list(islice(it, CHUNK)):
        conn.exec_driver_sql(sql, chunk)


@cache
def _copy_sql(table: str, columns: tuple[str, ...]) -> str:
    names = ", ".join(f'"{c}"' for c in columns)
    return f'COPY "{table}" ({names}) FROM STDIN'
