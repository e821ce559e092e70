"""``column IN (values)`` as PostgreSQL plans it cheaply: one array parameter.

Why: a push's prefetch asks for a few hundred ids at a time. SQLAlchemy renders an IN list as
one bind parameter per value, and psycopg parses that text again for every new length: at 50
ops per push the two were 15-20 % of the server's push CPU (py-spy --gil, nightly syncs on
PostgreSQL). ``= ANY(:array)`` is one parameter and one statement text whatever the length,
and PostgreSQL plans it with the values like the IN list. SQLite has no arrays and keeps IN.

``Built`` goes one step further for the statements every push runs: the statement is built
once per dialect with the values as a named parameter (``among_bound``), so a call builds no
SQL (``column.in_(values)`` coerced each of the 50-500 values into a bind parameter, per call).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from sqlalchemy import ARRAY, any_, bindparam
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

S = TypeVar("S")
Among = Callable[[ColumnElement[Any], str], ColumnElement[bool]]


def among(
    conn: Connection, column: ColumnElement[Any], values: Iterable[Any]
) -> ColumnElement[bool]:
    """``column`` is one of ``values`` (an empty list matches nothing on both backends)."""
    listed = list(values)
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, listed, type_=ARRAY(column.type)))
    return column.in_(listed)


def among_bound(dialect: str, column: ColumnElement[Any], name: str) -> ColumnElement[bool]:
    """``among`` whose values come at execution as the list parameter ``name``."""
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))


class Built(Generic[S]):
    """A statement built once per dialect by ``build(among)``, where ``among(column, name)``
    is ``among_bound`` for the connection's dialect; execute it with ``{name: [values]}``."""

    def __init__(self, build: Callable[[Among], S]) -> None:
        self._build = build
        self._built: dict[str, S] = {}

    def on(self, conn: Connection) -> S:
        """The statement for ``conn``'s dialect."""
        dialect = conn.dialect.name
        found = self._built.get(dialect)
        if found is None:
            found = self._built[dialect] = self._build(
                lambda column, name: among_bound(dialect, column, name)
            )
        return found
