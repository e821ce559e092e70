"""Record values as the store keeps them, and what a save changed.

Values are canonical JSON: empty strings, None and empty lists are dropped, so "cleared a
field" and "never filled it" compare equal and do not create phantom changes.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

try:
    import orjson as _orjson
except ImportError:  # an optional speed-up: the plain json module gives the same text
    _orjson = None  # type: ignore[assignment]


class RecordStatus(StrEnum):
    """Where a record stands for its worker; stored and sent as the plain strings."""

    DRAFT = "draft"  # saved as is: required fields may be missing
    COMPLETE = "complete"  # every rule passed when it was saved


def is_empty(value: object) -> bool:
    """None, blank text and empty lists/dicts count as not filled."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, list | dict) and not value


def clean(data: Mapping[str, Any]) -> dict[str, Any]:
    """Drop empty values; keep key order stable (sorted) for byte-stable JSON."""
    out = {}
    for key in sorted(data):
        value = data[key]
        if type(value) is str:  # most values: is_empty without the call
            if value.strip():
                out[key] = value
        elif not is_empty(value):
            out[key] = value
    return out


def dumps(data: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None) -> str:
    """Compact, deterministic JSON with Chinese kept readable."""
    return canonical_json(data)


_INT_RANGE = 1 << 63
_LEAVES = frozenset({str, bool, type(None)})  # written alike by orjson and json, without a call


def _orjson_plain(value: Any, depth: int = 0) -> bool:
    """Whether orjson writes ``value`` byte for byte as ``json.dumps`` does, or refuses it:
    only text, integers within 64 bits, booleans, None, lists and dicts (floats are written
    differently, e.g. 1e-05 and 1e-5; subclasses such as enums go the plain way). Text, None
    and booleans, most leaves, are passed without a call. Dict keys are not looked at:
    orjson refuses every key that is not exactly ``str`` (``TypeError``, as for a lone
    surrogate), and each caller then writes the plain way (tests/test_canonical_json.py)."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return -_INT_RANGE <= value < _INT_RANGE
    if depth > 64 or (kind is not dict and kind is not list and kind is not tuple):
        return False
    if kind is dict:
        value = value.values()
    if _LEAVES.issuperset(map(type, value)):  # a record's data: all text (one C-level pass)
        return True
    for item in value:
        leaf = type(item)
        if (
            leaf is not str
            and item is not None
            and leaf is not bool
            and not _orjson_plain(item, depth + 1)
        ):
            return False
    return True


def canonical_json(value: Any, *, sort_keys: bool = True) -> str:
    """``json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=...)``, through
    orjson when that gives the same text (~10x faster: the server writes four JSON texts per
    pushed record). One implementation: tests/test_canonical_json.py checks both agree."""
    if _orjson is not None and _orjson_plain(value):
        try:
            option = _orjson.OPT_SORT_KEYS if sort_keys else 0
            return _orjson.dumps(value, option=option).decode("utf-8")
        except TypeError:  # e.g. a lone surrogate: the plain way says what is wrong
            pass
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys)


T = TypeVar("T")
_LEVEL_TYPES = frozenset({str, bool, type(None), int, dict, list})


def _plain_all(values: Sequence[Any]) -> bool:
    """Every value is ``_orjson_plain``, decided level by level over all of them at once: the
    types of every value at one depth in one pass, the integers' range by their least and
    greatest. As deep as ``_orjson_plain`` goes; False when unsure, and the caller asks value
    by value. No pass over the dicts' keys: orjson refuses those that are not text (a pass
    of its own was a third of the check of a column of records' data, issue 17)."""
    level: list[Any] = list(values)
    for _depth in range(66):
        kinds = {*map(type, level)}
        if kinds <= _LEAVES:
            return True
        if not kinds <= _LEVEL_TYPES:
            return False
        if int in kinds:
            ints = [v for v in level if type(v) is int]
            if min(ints) < -_INT_RANGE or max(ints) >= _INT_RANGE:
                return False
        dicts = _of_kind(level, kinds, dict)
        lists = _of_kind(level, kinds, list)
        level = [
            *itertools.chain.from_iterable(map(dict.values, dicts)),
            *itertools.chain.from_iterable(lists),
        ]
    return not level


def _of_kind(level: list[Any], kinds: set[type], kind: type) -> list[Any]:
    """The values of ``level`` of type ``kind``: the level itself when it holds no other
    kind (a column of records' data or answers: dicts only), without a test per value."""
    if kind not in kinds:
        return []
    return level if len(kinds) == 1 else [v for v in level if type(v) is kind]


def orjson_writes(value: Any) -> bool:
    """Whether ``orjson.dumps(value)`` is ``json.dumps(value, ensure_ascii=False,
    separators=(",", ":"))`` byte for byte or raises ``TypeError`` (``_plain_all``): a web
    answer written by orjson where that holds (``sync.server.wire``)."""
    return _orjson is not None and _plain_all([value])


def canonical_json_all(values: Sequence[Any], *, plain: bool = False) -> list[str]:
    """``canonical_json`` of each value (keys sorted), as a column: when one pass over all of
    them (``_plain_all``) finds every one plain, orjson writes each without its own check.
    Why: a push writes three JSON texts per new record (its data, stamps and answer) and
    hashes each op; the check per value was a Python walk of every value, ~40 % of each
    text's cost. tests/test_canonical_json.py holds it against ``canonical_json``.
    ``plain``: see ``canonical_json_map``."""
    return canonical_json_map(values, _utf8, plain=plain)


def _utf8(text: bytes) -> str:
    return text.decode("utf-8")


def canonical_json_map(
    values: Sequence[Any],
    then: Callable[[bytes], T],
    *,
    sort_keys: bool = True,
    plain: bool = False,
) -> list[T]:
    """``then`` of each value's ``canonical_json`` as UTF-8 bytes (a hash reads them without
    the text between), called as each is written: orjson's bytes are let go at once (kept,
    each cost ~4x its writing here). ``sort_keys=False``: keys in their order (a request
    body, ``sync.client``). ``plain``: the caller built every value of text, booleans, None,
    integers within 64 bits, lists and dicts with text keys only, so ``_plain_all`` is not
    asked (a text orjson refuses still goes the plain way). Why: a push of new residents
    writes three such columns per request (``sync.server.fresh.write``: ~1.3 ms of checks of
    what it had just built, issue 17)."""
    if _orjson is not None and (plain or _plain_all(values)):
        try:
            dumps, option = _orjson.dumps, _orjson.OPT_SORT_KEYS if sort_keys else 0
            return [then(dumps(value, option=option)) for value in values]
        except TypeError:  # e.g. a lone surrogate: the plain way says what is wrong
            pass
    return [then(canonical_json(value, sort_keys=sort_keys).encode("utf-8")) for value in values]


_LONG_DIGITS = re.compile(r"[0-9]{19}")
_LONG_DIGITS_B = re.compile(rb"[0-9]{19}")


def parse_json(text: str | bytes) -> Any:
    """``json.loads(text)``, through orjson where it reads the text (2-3x faster: a push of
    records the platform already holds reads each one's data, stamps and conflicts). The
    texts orjson refuses and ``json`` reads (NaN, lone surrogates) go the plain way, and so
    do texts with a run of 19 or more digits that orjson read with a float in them: orjson
    reads an integer past 64 bits as a float, ``json`` as that integer. Read without a float
    (a record's data: text), nothing was misread, and the text is not searched for digits
    (the search cost ~8 µs of a resident's ~11: its ID number and phone are digit runs).
    One implementation: tests/test_canonical_json.py checks both agree."""
    if _orjson is None:
        return json.loads(text)
    try:
        value = _orjson.loads(text)
    except _orjson.JSONDecodeError:
        return json.loads(text)
    if _floatless(value):
        return value
    long_run = _LONG_DIGITS_B if isinstance(text, bytes) else _LONG_DIGITS
    return value if long_run.search(text) is None else json.loads(text)  # type: ignore[arg-type]


_NO_FLOAT = frozenset({str, bool, int, type(None)})


def _floatless(value: Any) -> bool:
    """No float anywhere in a value orjson read (a flat record is one C-level pass)."""
    kind = type(value)
    if kind is dict:
        value = value.values()
    elif kind is not list:
        return kind is not float
    kinds = set(map(type, value))
    if kinds <= _NO_FLOAT:
        return True
    return float not in kinds and all(_floatless(v) for v in value if type(v) in (dict, list))


STATUS_KEY = "_status"  # the pseudo-fields a record's state (and its base) holds besides fields
DELETED_KEY = "_deleted"


def state_of(data: Mapping[str, Any], status: str, deleted: bool) -> dict[str, Any]:
    """Fields plus the pseudo-fields: the shape sync's merge rules and ``records.base`` use."""
    out = dict(data)
    out[STATUS_KEY] = status
    if deleted:
        out[DELETED_KEY] = True
    return out


def stored_base(
    base: str | None,
    data: Mapping[str, Any],
    status: str,
    deleted: bool,
    server_version: int | None,
    dirty: bool,
) -> dict[str, Any] | None:
    """A record's base (the server state its local copy started from) from its row.

    A clean synced record stores none: its base is its own state. Storing a second copy of
    every pulled record made a first pull of 100 000 about 15 % slower and the file a third
    bigger; the ``records_keep_base`` trigger (``schema``) keeps the old state as the base the
    moment a local change makes such a record dirty.
    """
    if base:
        stored: dict[str, Any] = json.loads(base)
        return stored
    if server_version is not None and not dirty:
        return state_of(data, status, deleted)
    return None


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Field -> [old, new] for every field whose value differs (missing counts as None)."""
    changes: dict[str, list[Any]] = {}
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key), new.get(key)
        if before != after:
            changes[key] = [before, after]
    return changes


@dataclass
class Record:
    """One record as the store holds it."""

    id: str
    form: str
    form_version: int
    data: dict[str, Any]
    status: str = "draft"
    grid: str | None = None
    title: str = ""
    deleted: bool = False
    server_version: int | None = None
    dirty: bool = True
    base: dict[str, Any] | None = None
    conflict: list[dict[str, Any]] | None = None
    dup_state: str | None = None
    created_at: str = ""
    created_by: str = ""
    updated_at: str = ""
    updated_by: str = ""


@dataclass(frozen=True)
class Summary:
    """What a list row needs, without the record's JSON."""

    id: str
    form: str
    title: str
    grid: str | None
    status: str
    dirty: bool
    has_conflict: bool
    dup_state: str | None
    updated_at: str
    sort_key: str = ""  # where the row stands in its list (``app.core.sortkey``): keyset paging


@dataclass(frozen=True)
class HistoryEntry:
    """One save of one record: who, when, what changed (field -> [old, new])."""

    seq: int
    record_id: str
    at: str
    author: str
    kind: str
    changes: dict[str, list[Any]] = field(default_factory=dict)
