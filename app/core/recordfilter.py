"""Record filters: the small condition language tasks (and department access) select records with.

``人口类型 = 流动人口 and 证件到期日期 < today+30d`` reads the same on a device, in the console, in
the CLI and in a stored task: ``parse_filter`` checks it against one form (fields by id or by
their Chinese/English label, code values by code or label, dates, numbers, a derived age for
forms whose roles name a birth date) and returns a ``RecordFilter`` whose ``matches`` is the one
meaning every other evaluation (the platform's SQL push-down) is tested against. Terms are typed
when parsed, so a stored filter (``to_json``) is evaluated without the form.

Semantics, kept deliberately plain: a comparison (``= < <= > >= in contains``) on an empty or
ill-typed value is false; ``!=`` is ``not =`` (an empty value differs from everything);
``contains`` is a case-insensitive substring for text and membership for multiple choice.
An ID-number field (kind ``id``) is equal (``= != in``) by its natural key
(``naturalkeys.id_key``): a 15-digit first-generation number is its 18-digit form, as the
duplicate guard and search hold; ``contains`` compares the stored text as typed (a fragment
has no generation).
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any, Literal

from app.core.forms import Form, FormSet
from app.core.naturalkeys import id_key
from app.core.records import is_empty

# ---------------------------------------------------------------------------- the model

Kind = Literal["text", "id", "number", "date", "code", "codes", "bool", "age", "any"]
COMPARE_OPS = ("=", "!=", "<", "<=", ">", ">=")
OPS = (*COMPARE_OPS, "in", "contains", "is empty", "is filled")
AGE = "age"
ORDERED_KINDS = ("number", "date", "age")
_TEXT_TYPES = ("text", "phone", "postcode", "credit_code", "reference")
KIND_OF_TYPE: dict[str, Kind] = {
    **{t: "text" for t in _TEXT_TYPES},
    "id_number": "id",
    "integer": "number",
    "decimal": "number",
    "date": "date",
    "choice": "code",
    "multi_choice": "codes",
    "boolean": "bool",
    "coordinates": "any",
    "photo": "any",
}
Scalar = str | int | float | bool


class FilterError(ValueError):
    """A filter that cannot be read: what to fix, in both languages, and where (0-based)."""

    def __init__(self, message_zh: str, message_en: str, position: int) -> None:
        self.message_zh = message_zh
        self.message_en = message_en
        self.position = position
        super().__init__(
            f"{message_zh}（第 {position + 1} 个字符）/ {message_en} (at character {position + 1})"
        )


@dataclass(frozen=True)
class Term:
    """``field op value``; ``source`` is the birth-date field an ``age`` term reads."""

    field: str
    kind: Kind
    op: str
    value: Scalar | tuple[Scalar, ...] | None = None
    source: str | None = None


@dataclass(frozen=True)
class Not:
    item: Node


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


Node = Term | Not | And | Or


@dataclass(frozen=True)
class RecordFilter:
    """A parsed filter over one form's records; equal filters compare equal."""

    form: str
    root: Node

    @property
    def text(self) -> str:
        """The canonical text: field ids, codes, ``and``/``or``/``not``; parses back to self."""
        return _render(self.root, top=True)

    @property
    def fields(self) -> frozenset[str]:
        """The field ids the filter reads (an age term reads its birth-date field)."""
        return frozenset(_fields(self.root))

    def matches(self, data: Mapping[str, Any], today: date) -> bool:
        """Whether a record's stored values satisfy the filter on ``today``."""
        return _eval(self.root, data, today)

    def to_json(self) -> dict[str, Any]:
        """A JSON-able value that ``from_json`` turns back into an equal filter."""
        return {"form": self.form, "text": self.text, "expr": _node_json(self.root)}

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> RecordFilter:
        return cls(str(value["form"]), _node_from_json(value["expr"]))


def _fields(node: Node) -> list[str]:
    if isinstance(node, Term):
        return [node.source or node.field] if node.kind == "age" else [node.field]
    if isinstance(node, Not):
        return _fields(node.item)
    return [f for item in node.items for f in _fields(item)]


# ---------------------------------------------------------------------------- evaluation


def resolve_date(spec: str, today: date) -> date:
    """``2026-05-01``, ``today``, ``today+30d`` / ``today-1y`` (d, w, m, y) as a date."""
    if not spec.startswith("today"):
        return date.fromisoformat(spec)
    rest = spec[5:]
    if not rest:
        return today
    n = int(rest[:-1])
    unit = rest[-1]
    if unit == "d":
        return date.fromordinal(today.toordinal() + n)
    if unit == "w":
        return date.fromordinal(today.toordinal() + 7 * n)
    months = n if unit == "m" else 12 * n
    year, month0 = divmod(today.year * 12 + today.month - 1 + months, 12)
    day = min(today.day, calendar.monthrange(year, month0 + 1)[1])
    return date(year, month0 + 1, day)


def age_at(birth: date, today: date) -> int:
    """Whole years from ``birth`` to ``today``."""
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def _as_date(value: object) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _as_number(value: object) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def _stored(term: Term, data: Mapping[str, Any], today: date) -> object:
    """The record's value for a term, typed for comparison; None when empty or ill-typed."""
    if term.kind == "age":
        birth = _as_date(data.get(term.source or ""))
        return age_at(birth, today) if birth is not None else None
    raw = data.get(term.field)
    if is_empty(raw):
        return None
    if term.kind == "number":
        return _as_number(raw)
    if term.kind == "date":
        return _as_date(raw)
    if term.kind == "bool":
        return raw if isinstance(raw, bool) else None
    if term.kind == "codes":
        return [str(v) for v in raw] if isinstance(raw, list) else None
    return raw if isinstance(raw, str) else str(raw)


def _wanted(term: Term, value: Scalar, today: date) -> object:
    return resolve_date(str(value), today) if term.kind == "date" else value


# a filter's few values are keyed once, not once per record it is evaluated on
_wanted_id = lru_cache(maxsize=4096)(id_key)


def _equal(term: Term, have: object, value: Scalar, today: date) -> bool:
    if term.kind == "codes":
        return isinstance(have, list) and value in have
    if term.kind == "id":
        return id_key(str(have)) == _wanted_id(str(value))
    return have == _wanted(term, value, today)


def _compare(op: str, have: Any, want: Any) -> bool:
    if op == "<":
        return bool(have < want)
    if op == "<=":
        return bool(have <= want)
    if op == ">":
        return bool(have > want)
    return bool(have >= want)


def _eval_term(term: Term, data: Mapping[str, Any], today: date) -> bool:
    have = _stored(term, data, today)
    op = term.op
    if op == "is empty":
        return have is None if term.kind == "age" else is_empty(data.get(term.field))
    if op == "is filled":
        return have is not None if term.kind == "age" else not is_empty(data.get(term.field))
    if op == "!=":
        return not (have is not None and _equal(term, have, _scalar(term.value), today))
    if have is None:
        return False
    if op == "=":
        return _equal(term, have, _scalar(term.value), today)
    if op == "in":
        values = term.value if isinstance(term.value, tuple) else ()
        return any(_equal(term, have, v, today) for v in values)
    if op == "contains":
        if term.kind == "codes":
            return isinstance(have, list) and term.value in have
        return str(term.value).casefold() in str(have).casefold()
    return _compare(op, have, _wanted(term, _scalar(term.value), today))


def _scalar(value: object) -> Scalar:
    assert isinstance(value, str | int | float | bool)
    return value


def _eval(node: Node, data: Mapping[str, Any], today: date) -> bool:
    if isinstance(node, Term):
        return _eval_term(node, data, today)
    if isinstance(node, Not):
        return not _eval(node.item, data, today)
    if isinstance(node, And):
        return all(_eval(item, data, today) for item in node.items)
    return any(_eval(item, data, today) for item in node.items)


# ---------------------------------------------------------------------------- JSON


def _node_json(node: Node) -> dict[str, Any]:
    if isinstance(node, Term):
        out: dict[str, Any] = {"field": node.field, "kind": node.kind, "op": node.op}
        if isinstance(node.value, tuple):
            out["value"] = list(node.value)
        elif node.value is not None:
            out["value"] = node.value
        if node.source is not None:
            out["source"] = node.source
        return out
    if isinstance(node, Not):
        return {"not": _node_json(node.item)}
    key = "and" if isinstance(node, And) else "or"
    return {key: [_node_json(item) for item in node.items]}


def _node_from_json(value: Mapping[str, Any]) -> Node:
    if "not" in value:
        return Not(_node_from_json(value["not"]))
    if "and" in value:
        return And(tuple(_node_from_json(v) for v in value["and"]))
    if "or" in value:
        return Or(tuple(_node_from_json(v) for v in value["or"]))
    raw = value.get("value")
    typed = tuple(raw) if isinstance(raw, list) else raw
    return Term(value["field"], value["kind"], value["op"], typed, value.get("source"))


# ---------------------------------------------------------------------------- canonical text

STOP_CHARS = set("()（）,，、\"'“‘=＝<>＜＞!！≠≤≥") | {" ", "\t", "\n", "\r", "\u3000"}
_KEYWORDS = frozenset(
    {"and", "or", "not", "in", "contains", "is", "empty", "filled", "且", "或", "非"}
    | {"为空", "非空", "包含", "今天", "true", "false", "是", "否"}
)


def _is_bare(value: str) -> bool:
    return bool(value) and not any(c in STOP_CHARS or c.isspace() for c in value)


def _quote(value: Scalar, kind: Kind) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if kind in ("number", "age", "date", "bool") or (
        _is_bare(value) and value.lower() not in _KEYWORDS
    ):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _render_term(term: Term) -> str:
    if term.op in ("is empty", "is filled"):
        return f"{term.field} {term.op}"
    if term.op == "in":
        values = term.value if isinstance(term.value, tuple) else ()
        return f"{term.field} in ({', '.join(_quote(v, term.kind) for v in values)})"
    return f"{term.field} {term.op} {_quote(_scalar(term.value), term.kind)}"


def _render(node: Node, top: bool = False) -> str:
    if isinstance(node, Term):
        return _render_term(node)
    if isinstance(node, Not):
        return f"not {_render(node.item)}"
    word = " and " if isinstance(node, And) else " or "
    body = word.join(_render(item) for item in node.items)
    return body if top else f"({body})"


def parse_filter(text: str, form: Form, formset: FormSet | None = None) -> RecordFilter:
    """Read a filter over ``form``'s records; ``formset`` lets code values be given by label.

    Raises ``FilterError`` saying what to fix and where (the grammar is in ``filterparse``).
    """
    from app.core.filterparse import parse_root  # the parser imports this module's model

    return RecordFilter(form.id, parse_root(text, form, formset))
