"""``column IN (values)`` as PostgreSQL plans it cheaply: one array parameter.

Why: a push's prefetch asks for a few hundred ids at a time. SQLAlchemy renders an IN list as
one bind parameter per value, and psycopg parses that text again for every new length: at 50
ops per push the two were 15-20 % of the server's push CPU (py-spy --gil, nightly syncs on
PostgreSQL). ``= ANY(:array)`` is one parameter and one statement text whatever the length,
and PostgreSQL plans it with the values like the IN list. SQLite has no arrays and keeps IN.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ARRAY, any_, bindparam
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement


def among(
    conn: Connection, column: ColumnElement[Any], values: Iterable[Any]
) -> ColumnElement[bool]:
    """``column`` is one of ``values`` (an empty list matches nothing on both backends)."""
    listed = list(values)
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, listed, type_=ARRAY(column.type)))
    return column.in_(listed)
