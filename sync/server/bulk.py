"""Many rows into one table in one statement, on either database.

Why: a push of 50 new residents writes ~250 rows over five tables (plus the search index).
psycopg's ``executemany`` sends one Bind/Execute per row, ~40 µs of client CPU each and as
many executions on the server; one ``INSERT … VALUES (…), (…), …`` per table and chunk sends
them in one execution. (``unnest`` of arrays was measured too: psycopg escapes text arrays
element by element in Python, slower than the row loop.) SQLite's ``executemany`` is already a
loop in C over one prepared statement, so it is kept there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.engine import Connection

MAX_PARAMS = 30_000  # PostgreSQL takes at most 65 535 parameters per statement
_SIZES = (1000, 500, 200, 100, 50, 20, 10, 5, 2, 1)  # few statement texts to prepare


def insert_rows(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (dicts, as ``insert(table)`` takes them)."""
    if not rows:
        return
    columns = tuple(rows[0])
    if (
        conn.dialect.name != "postgresql"
        or len(rows) < 4
        or any(len(row) != len(columns) or any(c not in row for c in columns) for row in rows)
    ):
        conn.execute(insert(table), list(rows))  # SQLite, few rows, or rows of several shapes
        return
    at = 0
    while at < len(rows):
        size = next(n for n in _SIZES if n <= len(rows) - at and n * len(columns) <= MAX_PARAMS)
        params = [row[c] for row in rows[at : at + size] for c in columns]
        conn.exec_driver_sql(_values_sql(table.name, columns, size), tuple(params))
        at += size


@cache
def _values_sql(table: str, columns: tuple[str, ...], count: int) -> str:
    names = ", ".join(f'"{c}"' for c in columns)
    one = "(" + ", ".join(["%s"] * len(columns)) + ")"
    return f'INSERT INTO "{table}" ({names}) VALUES ' + ", ".join([one] * count)
