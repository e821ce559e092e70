"""A record filter pushed down to SQL: the records' JSON read by the database, not by Python.

Why: evaluating ``RecordFilter.matches`` on each record's decoded JSON made issuing a task over
100 k of 1.63 M records take 6-7 s (PROTOCOL.md §13.1; aim <= 5 s). ``translate`` turns a filter
into two SQL conditions over ``records.data`` (SQLite ``json_*``, PostgreSQL ``jsonb``):

- ``cond``: the filter's answer, exact for every record where ``doubt`` is false;
- ``doubt``: the records whose answer SQL cannot give exactly (a number beyond 2**53, a date
  written in another ISO form, a text field holding a number, an ID number spelled otherwise
  than its key, a term the translation does not cover): the caller selects ``cond OR doubt``
  and decides those again with ``matches``.

Both are never NULL, so ``NOT`` keeps its meaning. Correctness comes from ``doubt`` being large
enough, never from guessing: a new case belongs in ``doubt`` until it is translated exactly.
The property test (tests/sync/test_task_sqlfilter.py) holds both dialects to ``matches``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import (
    Float,
    Integer,
    String,
    Text,
    and_,
    case,
    cast,
    collate,
    exists,
    false,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement, False_

from app.core.naturalkeys import id_key
from app.core.recordfilter import And, Node, Not, RecordFilter, Term, resolve_date
from app.core.search import other_generation

Cond = ColumnElement[bool]
# every character str.strip() removes: a blank text is empty (app.core.records.is_empty)
WHITESPACE = "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace())
# characters casefold changes, or produces: a ``contains`` value without any compares as is
_FOLDS = {chr(c) for c in range(sys.maxunicode + 1) if chr(c).casefold() != chr(c)}
FOLD_CHARS = frozenset(_FOLDS | {t for c in _FOLDS for t in c.casefold()})
EXACT_INT = 2**53  # beyond it a JSON number's double and Python's int part ways
_DIGIT4 = "[0-9][0-9][0-9][0-9]"
_KEY_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"  # a text of these alone is its own key


@dataclass(frozen=True)
class Pushed:
    """``cond`` is the filter's answer wherever ``doubt`` is false (see the module doc)."""

    cond: Cond
    doubt: Cond


class _Json:
    """One dialect's reading of ``data``'s top-level fields; types as SQLite names them."""

    def __init__(self, data: ColumnElement[Any]) -> None:
        self.data = data

    def type(self, field: str) -> ColumnElement[str]:
        raise NotImplementedError

    def text(self, field: str) -> ColumnElement[str]:
        raise NotImplementedError

    def number(self, field: str) -> ColumnElement[float]:
        raise NotImplementedError

    def array_length(self, field: str) -> ColumnElement[int]:
        raise NotImplementedError

    def has_string(self, field: str, value: str) -> Cond:
        raise NotImplementedError

    def has_non_string(self, field: str) -> Cond:
        raise NotImplementedError

    def trim(self, value: ColumnElement[str]) -> ColumnElement[str]:
        raise NotImplementedError

    def ordered(self, value: ColumnElement[str]) -> ColumnElement[str]:
        return value

    def is_date_shape(self, value: ColumnElement[str]) -> Cond:
        raise NotImplementedError

    def is_key_shape(self, value: ColumnElement[str]) -> Cond:
        """Whether a text is one or more ASCII digits and capitals (``normalize_key`` keeps it)."""
        raise NotImplementedError

    def contains(self, value: ColumnElement[str], part: str) -> Cond:
        raise NotImplementedError

    def is_(self, field: str, *types: str) -> Cond:
        """Whether the field's JSON type is one of ``types`` (named as SQLite names them)."""
        return self.type(field).in_(types)


class _SqliteJson(_Json):
    @staticmethod
    def path(field: str) -> str:
        return f'$."{field}"'

    def type(self, field: str) -> ColumnElement[str]:
        # text, integer, real, true, false, null, array, object; "missing" for no such key
        return func.coalesce(func.json_type(self.data, self.path(field)), "missing")

    def text(self, field: str) -> ColumnElement[str]:
        return func.json_extract(self.data, self.path(field), type_=Text)

    def number(self, field: str) -> ColumnElement[float]:
        return func.json_extract(self.data, self.path(field), type_=Float)

    def array_length(self, field: str) -> ColumnElement[int]:
        return func.json_array_length(self.data, self.path(field), type_=Integer)

    def _each(self, field: str) -> Any:
        return func.json_each(self.data, self.path(field)).table_valued("value", "type")

    def has_string(self, field: str, value: str) -> Cond:
        each = self._each(field)
        return exists(
            select(1).select_from(each).where(each.c.type == "text", each.c.value == value)
        )

    def has_non_string(self, field: str) -> Cond:
        each = self._each(field)
        return exists(select(1).select_from(each).where(each.c.type != "text"))

    def trim(self, value: ColumnElement[str]) -> ColumnElement[str]:
        return func.trim(value, WHITESPACE, type_=Text)

    def is_date_shape(self, value: ColumnElement[str]) -> Cond:
        return value.op("GLOB")(f"{_DIGIT4}-[0-9][0-9]-[0-9][0-9]")

    def is_key_shape(self, value: ColumnElement[str]) -> Cond:
        return and_(value != "", not_(value.op("GLOB", is_comparison=True)(f"*[^{_KEY_CHARS}]*")))

    def contains(self, value: ColumnElement[str], part: str) -> Cond:
        return func.instr(value, part) > 0


class _PgJson(_Json):
    NAMES = {"text": "string", "integer": "number", "real": "number"}  # SQLite's -> jsonb's

    def __init__(self, data: ColumnElement[Any]) -> None:
        super().__init__(data if isinstance(data.type, JSONB) else cast(data, JSONB))

    def elem(self, field: str) -> ColumnElement[Any]:
        return self.data[field]

    def type(self, field: str) -> ColumnElement[str]:
        return func.coalesce(func.jsonb_typeof(self.elem(field)), "missing")

    def is_(self, field: str, *types: str) -> Cond:
        """One ``jsonb_typeof`` test (true and false are both ``boolean`` there)."""
        kind = self.type(field)
        bools = [t for t in types if t in ("true", "false")]
        plain = {self.NAMES.get(t, t) for t in types} - {"true", "false"}
        if len(bools) == 2:
            plain.add("boolean")
        tests: list[Cond] = [kind.in_(sorted(plain))] if plain else []
        if len(bools) == 1:
            tests.append(and_(kind == "boolean", self.text(field) == bools[0]))
        return or_(false(), *tests)

    def text(self, field: str) -> ColumnElement[str]:
        return self.data[field].astext

    def number(self, field: str) -> ColumnElement[float]:
        # float8in rounds as Python's float() does; EXACT_INT guards the integers
        number = func.jsonb_typeof(self.elem(field)) == "number"
        return case((number, cast(self.text(field), Float(precision=53))), else_=None)

    def array_length(self, field: str) -> ColumnElement[int]:
        array = func.jsonb_typeof(self.elem(field)) == "array"
        return case((array, func.jsonb_array_length(self.elem(field))), else_=None)

    def has_string(self, field: str, value: str) -> Cond:
        wanted = func.jsonb_build_array(cast(literal(value, String), Text))
        return self.elem(field).op("@>")(wanted)

    def has_non_string(self, field: str) -> Cond:
        return func.jsonb_path_exists(
            self.elem(field), literal_column("""'$[*] ? (@.type() != "string")'""")
        )

    def trim(self, value: ColumnElement[str]) -> ColumnElement[str]:
        return func.btrim(value, WHITESPACE, type_=Text)

    def ordered(self, value: ColumnElement[str]) -> ColumnElement[str]:
        return collate(value, "C")

    def is_date_shape(self, value: ColumnElement[str]) -> Cond:
        return value.op("~")(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")

    def is_key_shape(self, value: ColumnElement[str]) -> Cond:
        return value.op("~", is_comparison=True)(f"^[{_KEY_CHARS}]+$")

    def contains(self, value: ColumnElement[str], part: str) -> Cond:
        return func.strpos(value, part) > 0


def translate(flt: RecordFilter, data: ColumnElement[Any], dialect: str, today: date) -> Pushed:
    """The filter as SQL over ``data`` (a records.data column) for ``dialect``."""
    if dialect == "postgresql":  # a NUL fails the JSONB cast: the caller decides in Python
        return _node(flt.root, _PgJson(data), today)
    pushed = _node(flt.root, _SqliteJson(data), today)
    # SQLite's text functions end a text at a NUL (``"\u0000"`` in the stored JSON), so "\x00"
    # would read as blank: a record holding one is left to ``matches``
    return Pushed(pushed.cond, or_(pushed.doubt, func.instr(data, "\\u0000") > 0))


IN_PYTHON = Pushed(false(), true())  # every record decided by ``matches``
_UNKNOWN = IN_PYTHON


def _node(node: Node, json: _Json, today: date) -> Pushed:
    if isinstance(node, Term):
        return _term(node, json, today)
    if isinstance(node, Not):
        inner = _node(node.item, json, today)
        return Pushed(not_(inner.cond), inner.doubt)
    kids = [_node(item, json, today) for item in node.items]
    if all(isinstance(k.doubt, False_) for k in kids):  # SQL decides each part: no doubt
        combine = and_ if isinstance(node, And) else or_
        return Pushed(combine(*(k.cond for k in kids)), false())
    doubt = or_(false(), *(k.doubt for k in kids))
    if isinstance(node, And):
        # certain when any part is certainly false
        settled = or_(false(), *(and_(not_(k.cond), not_(k.doubt)) for k in kids))
        return Pushed(and_(true(), *(k.cond for k in kids)), and_(doubt, not_(settled)))
    settled = or_(false(), *(and_(k.cond, not_(k.doubt)) for k in kids))
    return Pushed(or_(false(), *(k.cond for k in kids)), and_(doubt, not_(settled)))


def _term(term: Term, json: _Json, today: date) -> Pushed:
    if '"' in term.field or "\\" in term.field or (term.source and '"' in term.source):
        return _UNKNOWN
    if term.op in ("is empty", "is filled") and term.kind != "age":
        empty = _empty(json, term.field)
        return Pushed(empty if term.op == "is empty" else not_(empty), false())
    reader = _READERS.get(term.kind, _text)
    return reader(term, json, today)


def _empty(json: _Json, field: str) -> Cond:
    """``is_empty(data.get(field))``: missing, null, blank text, [] or {}."""
    return or_(
        json.is_(field, "missing", "null"),
        and_(json.is_(field, "text"), json.trim(json.text(field)) == ""),
        and_(json.is_(field, "array"), json.array_length(field) == 0),
        and_(json.is_(field, "object"), json.text(field) == "{}"),
    )


def _compare(op: str, have: Any, value: Any, present: Cond) -> Cond | None:
    """``have op value`` for a present value (``!=`` is ``not =``); None: not an op we know."""
    if op == "in":
        values = value if isinstance(value, tuple) else ()
        return and_(present, or_(false(), *(have == v for v in values)))
    tests = {
        "=": have == value,
        "!=": have == value,
        "<": have < value,
        "<=": have <= value,
        ">": have > value,
        ">=": have >= value,
    }
    if op not in tests:
        return None
    cond = and_(present, tests[op])
    return not_(cond) if op == "!=" else cond


def _text(term: Term, json: _Json, today: date) -> Pushed:
    """Text, code and any: the stored string (a non-string value is left to Python)."""
    value = json.text(term.field)
    present = and_(json.is_(term.field, "text"), json.trim(value) != "")
    doubt = json.is_(term.field, "integer", "real", "true", "false", "array", "object")
    if term.op == "contains":
        part = str(term.value)
        if any(c in FOLD_CHARS for c in part):
            return _UNKNOWN
        return Pushed(and_(present, json.contains(value, part)), doubt)
    if term.op not in ("=", "!=", "in"):
        return _UNKNOWN
    values = term.value if term.op == "in" else (term.value,)
    if not isinstance(values, tuple):
        return _UNKNOWN
    strings = tuple(v for v in values if isinstance(v, str))  # a number never equals a string
    want: Any = strings if term.op == "in" else (strings[0] if strings else None)
    if want is None:
        return Pushed(true() if term.op == "!=" else false(), doubt)
    cond = _compare(term.op, value, want, present)
    return _UNKNOWN if cond is None else Pushed(cond, doubt)


def _id(term: Term, json: _Json, today: date) -> Pushed:
    """An ID number: ``= != in`` by its key (``naturalkeys.id_key``), anything else as text.

    A stored text in its key's spelling (ASCII digits and capitals) is compared with the
    spellings of the wanted keys: each key and, for an 18-digit key born in the 1900s, the 15
    digits that upgrade to it. So the term stays an equality on the stored value (what an
    index on it would serve) instead of a key computed per record; any other spelling (a
    lower-case x, spaces, full width) is a doubt ``matches`` decides."""
    if term.op not in ("=", "!=", "in"):
        return _text(term, json, today)
    values = term.value if term.op == "in" else (term.value,)
    if not isinstance(values, tuple):
        return _UNKNOWN
    spellings = tuple(dict.fromkeys(s for v in values for s in _spellings(str(v))))
    value = json.text(term.field)
    is_text = json.is_(term.field, "text")
    member = and_(is_text, json.is_key_shape(value), or_(false(), *(value == s for s in spellings)))
    doubt = or_(
        json.is_(term.field, "integer", "real", "true", "false", "array", "object"),
        and_(is_text, json.trim(value) != "", not_(json.is_key_shape(value))),
    )
    return Pushed(not_(member) if term.op == "!=" else member, doubt)


def _spellings(value: str) -> tuple[str, ...]:
    """The stored texts in key spelling whose key is ``value``'s: the key itself and its other
    generation when that upgrades back to it (an 18-digit number whose check character is
    wrong is not its 15 digits' key)."""
    key = id_key(value)
    return (key, *(other for other in other_generation(key) if id_key(other) == key))


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and abs(value) < 1e300


def _number(term: Term, json: _Json, today: date) -> Pushed:
    values = term.value if isinstance(term.value, tuple) else (term.value,)
    if term.op == "contains" or not all(_is_number(v) for v in values):
        return _UNKNOWN
    present = json.is_(term.field, "integer", "real")
    have = json.number(term.field)
    doubt = and_(present, or_(have >= EXACT_INT, have <= -EXACT_INT))
    cond = _compare(term.op, have, term.value, present)
    return _UNKNOWN if cond is None else Pushed(cond, doubt)


def _dates(json: _Json, field: str) -> tuple[Cond, Cond, ColumnElement[str]]:
    """(a date SQL reads exactly, a text Python might read as a date otherwise, the text).

    Exactly: YYYY-MM-DD naming a real day from year 0001; the other ISO forms Python reads
    (20260501, 2026-W01-1) are doubts."""
    value = json.text(field)
    is_text = json.is_(field, "text")
    year = cast(func.substr(value, 1, 4), Integer)
    month, day = func.substr(value, 6, 2), func.substr(value, 9, 2)
    leap = and_(year % 4 == 0, or_(year % 100 != 0, year % 400 == 0))
    real_day = or_(
        day.between("01", "28"),
        and_(day.in_(("29", "30")), month != "02"),
        and_(day == "31", month.in_(("01", "03", "05", "07", "08", "10", "12"))),
        and_(day == "29", month == "02", leap),
    )
    exact = and_(
        is_text,
        json.is_date_shape(value),
        func.substr(value, 1, 4) != "0000",
        month.between("01", "12"),
        real_day,
    )
    doubt = and_(is_text, not_(exact), func.length(value).between(7, 10))
    return exact, doubt, json.ordered(value)


def _date(term: Term, json: _Json, today: date) -> Pushed:
    values = term.value if isinstance(term.value, tuple) else (term.value,)
    try:
        wanted = tuple(resolve_date(str(v), today).isoformat() for v in values)
    except (ValueError, TypeError):
        return _UNKNOWN
    if term.op == "contains" or not all(isinstance(v, str) for v in values):
        return _UNKNOWN
    exact, doubt, value = _dates(json, term.field)
    cond = _compare(term.op, value, wanted if term.op == "in" else wanted[0], exact)
    return _UNKNOWN if cond is None else Pushed(cond, doubt)


def _age(term: Term, json: _Json, today: date) -> Pushed:
    exact, doubt, value = _dates(json, term.source or "")
    if term.op in ("is empty", "is filled"):
        return Pushed(not_(exact) if term.op == "is empty" else exact, doubt)
    values = term.value if isinstance(term.value, tuple) else (term.value,)
    if term.op == "contains" or not all(_is_number(v) for v in values):
        return _UNKNOWN
    born = cast(func.substr(value, 1, 4), Integer)
    later = case((func.substr(value, 6, 5) > f"{today.month:02d}-{today.day:02d}", 1), else_=0)
    age = today.year - born - later
    cond = _compare(term.op, age, term.value, exact)
    return _UNKNOWN if cond is None else Pushed(cond, doubt)


def _bool(term: Term, json: _Json, today: date) -> Pushed:
    values = term.value if isinstance(term.value, tuple) else (term.value,)
    if term.op not in ("=", "!=", "in") or not all(isinstance(v, bool) for v in values):
        return _UNKNOWN
    names = tuple("true" if v else "false" for v in values)
    cond = json.is_(term.field, *names)
    return Pushed(not_(cond) if term.op == "!=" else cond, false())


def _codes(term: Term, json: _Json, today: date) -> Pushed:
    """Multiple choice: membership of a code among the list's strings (a list holding
    anything else is left to Python, which compares ``str()`` of each)."""
    if term.op not in ("=", "!=", "in", "contains"):
        return _UNKNOWN
    values = term.value if isinstance(term.value, tuple) else (term.value,)
    present = and_(json.is_(term.field, "array"), json.array_length(term.field) > 0)
    doubt = and_(present, json.has_non_string(term.field))
    member = or_(false(), *(json.has_string(term.field, v) for v in values if isinstance(v, str)))
    cond = and_(present, member)
    return Pushed(not_(cond) if term.op == "!=" else cond, doubt)


_READERS = {
    "text": _text,
    "id": _id,
    "code": _text,
    "any": _text,
    "number": _number,
    "date": _date,
    "age": _age,
    "bool": _bool,
    "codes": _codes,
}
