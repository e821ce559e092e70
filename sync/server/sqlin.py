"""``column IN (values)`` as PostgreSQL plans it cheaply: one array parameter.

Why: a push's prefetch asks for a few hundred ids at a time. SQLAlchemy renders an IN list as
one bind parameter per value, and psycopg parses that text again for every new length: at 50
ops per push the two were 15-20 % of the server's push CPU (py-spy --gil, nightly syncs on
PostgreSQL). ``= ANY(:array)`` is one parameter and one statement text whatever the length,
and PostgreSQL plans it with the values like the IN list. SQLite has no arrays: ``Built``
statements give it the list as one JSON text (``json_each``), ``among`` keeps IN.

``Built`` goes one step further for the statements every push runs: the statement is built
once per dialect with the values as a named parameter (``among_bound``), so a call builds no
SQL (``column.in_(values)`` coerced each of the 50-500 values into a bind parameter, per call).

The array goes to the driver as the text of a PostgreSQL array literal (``array_literal``),
cast to the column's array type in the statement: psycopg's list dumper, in Python, took
70-120 µs for 50 ids (each element dumped and quoted on its own), and a push sends eight or
nine such lists; a string is dumped in C. PostgreSQL parses the literal as it parsed the
dumper's, which wrote the same syntax.

The array reaches PostgreSQL's planner as the value of a one-row sub-select (an InitPlan), not
as a constant. Most statements are not prepared (``db.make_engine``), so each is planned at
every call, and with a constant array the planner estimated every value on its own against the
column's statistics (a detoasted list of common values per value): planning the duplicate
guard's people look-up (three arrays of 50) cost 0.65 ms of the backend's CPU a call, the
sub-select 0.23 ms, for the same index-only scan. The planner now assumes a short list; these
are look-ups by key, for which an index probe per value is the plan whatever the length.
Such a statement's plan depends on no value, so the sync path's are prepared (``db.prepared``):
then it is not planned at every call at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import ARRAY, String, Text, any_, bindparam, cast, func, select
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause, NamedFromClause, Select
from sqlalchemy.types import TypeDecorator

from app.core.records import canonical_json

S = TypeVar("S")


class Among(Protocol):
    """``among_bound`` for one dialect, as ``Built`` hands it to a statement's builder."""

    dialect: str

    def __call__(
        self, column: ColumnElement[Any], name: str, *, probe: bool = True
    ) -> ColumnElement[bool]: ...


def array_literal(values: Iterable[str | int | None]) -> str:
    """The text of a one-dimensional PostgreSQL array of ``values`` (``{"a","b\\"c",NULL}``):
    each text element double-quoted, its backslashes and double quotes escaped, which is all
    the array syntax needs inside quotes. Integers are written as digits."""
    parts = []
    for value in values:
        if type(value) is str:
            parts.append('"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"')
        elif value is None:
            parts.append("NULL")
        elif type(value) is int:
            parts.append(str(value))
        else:
            raise TypeError(f"no array literal for {type(value).__name__}")
    return "{" + ",".join(parts) + "}"


class ArrayText(TypeDecorator[list[Any]]):
    """A list bound as its ``array_literal`` text (the statement casts it to an array)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else array_literal(value)


def among(
    conn: Connection, column: ColumnElement[Any], values: Iterable[Any]
) -> ColumnElement[bool]:
    """``column`` is one of ``values`` (an empty list matches nothing on both backends)."""
    listed = list(values)
    if conn.dialect.name == "postgresql":
        return _any(column, bindparam(None, listed, type_=ArrayText()))
    return column.in_(listed)


def among_bound(
    dialect: str, column: ColumnElement[Any], name: str, *, probe: bool = True
) -> ColumnElement[bool]:
    """``among`` whose values come at execution as the list parameter ``name``. ``probe``:
    the list drives an index probe (the planner gets it at run time, ``_any``); else it
    filters rows an index found, and PostgreSQL gets it as a constant, which it turns into a
    hash table once instead of a scan of the list for every row (the duplicate guard's names
    and pinyins against ~100 people per birth date on a city platform: 9.2 → 2.0 ms a call)."""
    if dialect == "postgresql":
        if probe:
            return _any(column, bindparam(name, type_=ArrayText()))
        # an array parameter (the driver's list dumper): a constant once bound; a text cast
        # to an array in the statement would stay an expression, parsed again for every row
        return column == any_(bindparam(name, type_=_array_of(column)))
    # SQLite: the list as one JSON text, read by ``json_each`` (same plan: an index probe per
    # value). An expanding IN rendered a placeholder and processed a parameter per value, in
    # Python, at every call: ~4 % of a push's server CPU at 1 000 ops a request (issue 17).
    each = func.json_each(bindparam(name, type_=JsonList())).table_valued("value")
    return column.in_(select(each.c.value))


def among_rows(
    among: Among, stmt: Select[Any], table: FromClause, column: ColumnElement[Any], name: str
) -> Select[Any]:
    """``stmt`` over the rows of ``table`` whose ``column`` is one of the list ``name`` (each
    value once in it): ``among`` on PostgreSQL; on SQLite the list (``json_each``) joined to
    ``table``, each value probing ``column``'s index as it is read.

    Why: SQLite answers ``column IN (SELECT value FROM json_each(...))`` by first copying the
    list into a temporary index (sorted, duplicates dropped), then probing: ~0.08-0.13 ms of
    a 500-id look-up's ~0.2-0.28 (a push's check and prefetch run several per 1 000 ops, issue
    17). A value the list holds twice gives its row twice, hence "each value once". Only for
    a table probed by ``column`` alone: with a condition on the leading column of an index
    too (``record_keys.form``), SQLite's planner put the table outside the list (a 10 000-
    resident push's key look-ups went from ~0.02 to 2.6 s)."""
    if among.dialect != "sqlite":
        return stmt.where(among(column, name))
    each = func.json_each(bindparam(name, type_=JsonList())).table_valued("value")
    return stmt.select_from(each.join(table, column == each.c.value))


def zipped(*names: str) -> NamedFromClause:
    """PostgreSQL rows of text columns ``names``, the i-th row made of the i-th value of each
    array parameter of the same name (``unnest``): what a statement joins to probe an index
    per tuple of values, the tuples as run-time lists. SQLite has no arrays: its statement
    reads one JSON list of the rows (``rows_key``, ``json_each``); ``zipped_params`` gives
    both. (SQLite reading each column from a whole list by position parsed the list again
    per row: a 1 000-op push spent seconds in it.)"""
    arrays = [cast(bindparam(n, type_=ArrayText()), ARRAY(Text())) for n in names]
    return func.unnest(*arrays).table_valued(*names).render_derived(name="wanted")


def rows_key(*names: str) -> str:
    """The parameter a SQLite statement reads ``zipped_params``' rows from."""
    return "_".join(names) + "_rows"


def zipped_params(**lists: list[Any]) -> dict[str, Any]:
    """The parameters of a statement over these lists, for either dialect: each list by its
    name (PostgreSQL's ``zipped``) and their rows (SQLite's ``json_each``); a dialect's
    statement ignores the others."""
    rows = [list(row) for row in zip(*lists.values(), strict=True)]
    return {**lists, rows_key(*lists): rows}


class _Bound:
    """``Among`` for one dialect."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect

    def __call__(
        self, column: ColumnElement[Any], name: str, *, probe: bool = True
    ) -> ColumnElement[bool]:
        return among_bound(self.dialect, column, name, probe=probe)


class JsonList(TypeDecorator[list[Any]]):
    """A list bound as its JSON text (SQLite's ``json_each`` reads it back), written by
    orjson where it writes what ``json`` would (``canonical_json``, keys kept in order): a
    push binds its id, key and people lists so, ~30 000 values a chunk."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else canonical_json(list(value), sort_keys=False)


def _array_of(column: ColumnElement[Any]) -> ARRAY[Any]:
    """Text columns compare as ``text[]`` (no length to check per element)."""
    return ARRAY(Text()) if isinstance(column.type, String) else ARRAY(column.type)


def _any(column: ColumnElement[Any], param: Any) -> ColumnElement[bool]:
    """``column = ANY(CAST((SELECT CAST(:text AS type[])) AS type[]))``: the planner sees a
    parameter filled at run time, not the values, and the driver sends the array as text
    (module doc). The text is parsed into an array inside the sub-select, once per call: cast
    outside it, PostgreSQL parsed the literal again for every row a filter tested (the
    duplicate guard's name and pinyin lists: 54 ms a call on the 1.63 M-record platform, 1.6
    with the cast inside). The outer cast to the same type only makes ``ANY`` take an
    array, not rows."""
    array = _array_of(column)
    return column == any_(cast(select(cast(param, array)).scalar_subquery(), array))


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
            found = self._built[dialect] = self._build(_Bound(dialect))
        return found
