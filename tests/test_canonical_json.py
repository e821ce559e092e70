"""The one canonical JSON text (app.core.records.canonical_json): its orjson fast path gives
exactly what ``json.dumps`` gives, for every value both can write (op hashes and stored
records depend on the text), and the plain way for the rest. Reading it back
(``parse_json``) gives what ``json.loads`` gives, the texts orjson refuses included."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core import records
from app.core.records import (
    RecordStatus,
    canonical_json,
    canonical_json_all,
    canonical_json_map,
    parse_json,
)

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(1 << 70), max_value=1 << 70)
    | st.floats(allow_nan=False)
    | st.text()
    | st.sampled_from(["张三", "\x7f", "\u2028", "\x00", '"\\', "1e-05"])
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=20,
)


def plain(value: Any, sort_keys: bool) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys)


@settings(max_examples=300, deadline=None)
@given(value=VALUES, sort_keys=st.booleans())
def test_the_fast_path_writes_what_json_dumps_writes(value: Any, sort_keys: bool) -> None:
    assert canonical_json(value, sort_keys=sort_keys) == plain(value, sort_keys)


def test_values_only_json_writes_go_the_plain_way() -> None:
    for value in ({"x": 1e-05}, [RecordStatus.DRAFT], {"big": 1 << 64}, (1, "二")):
        assert canonical_json(value) == plain(value, True)


ANY_SCALARS = SCALARS | st.floats() | st.sampled_from(["\ud800", "x\udfffy"]) | st.integers()
ANY_VALUES = st.recursive(
    ANY_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=20,
)


def same_json(a: Any, b: Any) -> bool:
    """Equal values of equal types all the way down (1 is not 1.0 or True; NaN is NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and a != a:
        return b != b
    return bool(a == b)


@settings(max_examples=300, deadline=None)
@given(value=ANY_VALUES, ascii_only=st.booleans(), sort_keys=st.booleans())
def test_the_fast_reader_reads_what_json_loads_reads(
    value: Any, ascii_only: bool, sort_keys: bool
) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only, sort_keys=sort_keys)
    assert same_json(parse_json(text), json.loads(text))
    assert same_json(parse_json(text.encode("utf-8", "surrogatepass")), json.loads(text))


def test_texts_orjson_refuses_are_read_the_plain_way() -> None:
    for text in ('{"x": NaN}', "[Infinity, -Infinity]", str(1 << 70), '"\\ud800"', "1e400"):
        assert same_json(parse_json(text), json.loads(text))


# An op as a push carries it: text, None, a version number, fields of leaves (sometimes not)
OPS = st.fixed_dictionaries(
    {
        "op_id": st.text(max_size=6),
        "base_version": st.none() | st.integers(min_value=-(1 << 70), max_value=1 << 70),
        "fields": st.dictionaries(st.text(max_size=4), SCALARS | st.sampled_from(["\ud800"])),
    }
)


@settings(max_examples=300, deadline=None)
@given(values=st.lists(ANY_VALUES | OPS, max_size=5))
def test_a_column_is_written_as_each_value_is(values: list[Any]) -> None:
    """``canonical_json_all`` (one plainness pass for all values) gives ``canonical_json`` of
    each, and its bytes form their UTF-8; a value neither can write fails both alike."""
    try:
        each = [canonical_json(v).encode("utf-8") for v in values]
    except (UnicodeEncodeError, ValueError) as exc:
        with pytest.raises(type(exc)):
            canonical_json_map(values, bytes)
        return
    assert canonical_json_map(values, bytes) == each
    assert canonical_json_all(values) == [b.decode("utf-8") for b in each]
    unsorted = [canonical_json(v, sort_keys=False).encode("utf-8") for v in values]
    assert canonical_json_map(values, bytes, sort_keys=False) == unsorted


PLAIN_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1)
    | st.text()
    | st.sampled_from(["张三", "\x7f", "\u2028", "\x00", '"\\', "1e-05"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=20,
)  # what a caller may build and call plain: text keys, no float, integers within 64 bits


@settings(max_examples=300, deadline=None)
@given(values=st.lists(PLAIN_VALUES, max_size=5), sort_keys=st.booleans())
def test_a_column_its_caller_made_plain_is_written_as_each_value_is(
    values: list[Any], sort_keys: bool
) -> None:
    """``plain=True`` (the caller built the values of plain JSON types only: no pass asks
    ``_plain_all``) writes what ``canonical_json`` writes of each, lone surrogates (which
    orjson refuses) failing as they fail it."""
    try:
        each = [canonical_json(v, sort_keys=sort_keys).encode("utf-8") for v in values]
    except UnicodeEncodeError:
        with pytest.raises(UnicodeEncodeError):
            canonical_json_map(values, bytes, sort_keys=sort_keys, plain=True)
        return
    assert canonical_json_map(values, bytes, sort_keys=sort_keys, plain=True) == each
    if sort_keys:
        assert canonical_json_all(values, plain=True) == [b.decode("utf-8") for b in each]


def test_a_column_made_plain_is_not_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """``plain=True``: no plainness pass over the column (``_plain_all``)."""
    passes: list[Any] = []
    check = records._plain_all
    monkeypatch.setattr(records, "_plain_all", lambda v: passes.append(v) or check(v))
    column = [{"op_id": f"d:{n}", "version": 1, "conflicts": []} for n in range(100)]
    assert canonical_json_all(column, plain=True) == [plain(v, True) for v in column]
    assert passes == []
    assert canonical_json_all(column) == [plain(v, True) for v in column]
    assert passes == [column]


def test_a_plain_column_is_not_checked_value_by_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """1 000 ops of text fields: no ``_orjson_plain`` walk per value (there was one each)."""
    walked: list[Any] = []
    plain_check = records._orjson_plain
    monkeypatch.setattr(
        records, "_orjson_plain", lambda v, d=0: walked.append(v) or plain_check(v, d)
    )
    ops = [
        {"op_id": f"d:{n}", "base_version": None, "fields": {"name": "张三", "n": str(n)}}
        for n in range(1000)
    ]
    assert canonical_json_all(ops) == [plain(op, True) for op in ops]
    assert walked == []


class _Counted:
    """A stand-in for the digit-run pattern that counts its searches."""

    def __init__(self, pattern: Any) -> None:
        self.pattern, self.calls = pattern, 0

    def search(self, text: Any) -> Any:
        self.calls += 1
        return self.pattern.search(text)


def test_a_text_read_without_a_float_is_not_searched_for_long_digit_runs(
    monkeypatch: Any,
) -> None:
    """A resident's data (its ID number and phone are digit runs) is read by orjson alone;
    a text orjson read with a float in it is searched, and one with an integer past 64 bits
    is read the plain way."""
    from app.core import records

    counted = _Counted(records._LONG_DIGITS)
    monkeypatch.setattr(records, "_LONG_DIGITS", counted)
    data = '{"id_number":"330106198506154018","phone":"13800138000","n":12,"tags":["a"]}'
    assert parse_json(data) == json.loads(data)
    assert counted.calls == 0
    assert parse_json('{"x":[1.5]}') == {"x": [1.5]}
    assert counted.calls == 1
    big = f'{{"x":{1 << 70}}}'
    assert same_json(parse_json(big), json.loads(big))
    assert counted.calls == 2


class _Key(str):
    """A key that is text, but not exactly ``str``."""


ODD_KEYS = st.one_of(
    st.text(max_size=4), st.sampled_from([1, 0, None, True, 2.5, _Key("k"), RecordStatus.DRAFT])
)
KEYED_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ODD_KEYS, inner, max_size=3),
    max_leaves=12,
)


def _written(write: Any, value: Any) -> tuple[str, Any]:
    """What ``write`` gives for ``value``, or the type of what it raises."""
    try:
        return "text", write(value)
    except (TypeError, ValueError) as exc:
        return "raised", type(exc)


@settings(max_examples=300, deadline=None)
@given(values=st.lists(KEYED_VALUES, max_size=4), sort_keys=st.booleans())
def test_keys_that_are_not_text_are_written_as_json_dumps_writes_them(
    values: list[Any], sort_keys: bool
) -> None:
    """Dicts keyed by numbers, None, booleans or text subclasses, at any depth: written (or
    refused) as ``json.dumps`` does, one by one and as a column."""
    for value in values:
        got = _written(lambda v: canonical_json(v, sort_keys=sort_keys), value)
        assert got == _written(lambda v: plain(v, sort_keys), value)
    each = [_written(canonical_json, v) for v in values]
    if all(kind == "text" for kind, _text in each):
        assert canonical_json_all(values) == [text for _kind, text in each]
    else:
        assert _written(canonical_json_all, values)[0] == "raised"


def test_a_columns_keys_are_left_to_orjson_to_refuse() -> None:
    """The plainness pass reads no dict key (orjson refuses those that are not text, and the
    column is then written the plain way): a key of another type does not make it unsure."""
    column = [{"name": "张三"}, {1: "x"}, {"a": {None: "y"}, "b": [{_Key("k"): "z"}]}]
    assert records._plain_all(column)
    assert canonical_json_all(column) == [plain(v, True) for v in column]
    assert canonical_json({2: "二"}) == plain({2: "二"}, True)
