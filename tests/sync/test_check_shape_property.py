"""The shape check of a pushed op scans all its strings at once (``checks._strings_ok``) and
checks them one by one only when that scan finds a problem: for any op, the answer (the form,
or the error with its code, op and field) is the one the one-by-one checks give."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from app.core.forms import FormSet, load_formset
from sync import protocol as p
from sync.server import checks
from sync.server.errors import ApiError

FORMSET = load_formset()
UUID = "0190a0b0-c0d0-7000-8000-000000000001"
NAMES = ["name", "phone", "grid", "id_number", "_status", "_deleted", "no_such_field"]

texts = st.one_of(
    st.sampled_from(["", "ok", "张三", "a\x00b", "\ud800", "x" * 5000, "330106001001-01"]),
    st.text(max_size=8),
)
values = st.recursive(
    st.one_of(
        texts,
        st.integers(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.booleans(),
        st.none(),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(texts, inner, max_size=3)),
    max_leaves=6,
)


@st.composite
def ops(draw: st.DrawFn) -> p.Op:
    fields = draw(st.dictionaries(st.one_of(st.sampled_from(NAMES), texts), values, max_size=5))
    return p.Op.model_construct(
        op_id=draw(st.one_of(st.just("dev:1"), texts)),
        record_id=draw(st.one_of(st.just(UUID), st.just(UUID.upper()), texts)),
        form=draw(st.sampled_from(["resident", "nope", "a\x00"])),
        kind=draw(st.sampled_from(["create", "update", "delete", "resolve"])),
        base_version=None,
        fields=fields,
        edited_at=draw(st.one_of(st.just("2026-12-01T00:00:00.000Z#0000"), texts)),
        author=draw(st.one_of(st.just("w"), texts)),
    )


def _answer(formset: FormSet, op: p.Op) -> Any:
    try:
        return checks.check_op_shape(formset, op, 3).id
    except ApiError as exc:
        return (exc.status, exc.code, exc.op_id, exc.index, exc.field)


@settings(max_examples=600, deadline=None)
@given(op=ops())
def test_the_one_scan_answers_as_the_checks_one_by_one(op: p.Op) -> None:
    fast = _answer(FORMSET, op)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(checks, "_strings_ok", lambda _op: False)
        plain = _answer(FORMSET, op)
    assert fast == plain


def test_a_usual_op_is_scanned_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A device's op with good strings asks no per-string check (one scan for the op); a
    value that is not a string is checked on its own."""
    asked: list[str] = []
    monkeypatch.setattr(checks, "_text_ok", lambda text: asked.append(text) or True)
    monkeypatch.setattr(checks, "_plain_ok", lambda value: asked.append(value) or True)
    op = p.Op(
        op_id="dev:1",
        record_id=UUID,
        form="resident",
        kind="create",
        fields={"name": "张三", "phone": "13800000000", "grid": "330106001001-01", "x": 1},
        edited_at="2026-12-01T00:00:00.000Z#0000",
        author="w",
    )
    with pytest.raises(ApiError) as caught:
        checks.check_op_shape(FORMSET, op, 0)
    assert caught.value.code == "unknown_field" and caught.value.field == "x"
    assert asked == [1]


RESIDENT = FORMSET.form("resident")
_TEXT = st.one_of(
    st.sampled_from(["draft", "complete", "", "张三", "330106001001-01", "x" * 65, "x" * 64]),
    st.text(max_size=4),
)
_ODD = st.sampled_from(
    # numbers whose text is a grid code's length (64) and one past it, either sign
    [0, 1, True, None, 1.5, ["1"], {"lon": 120.1, "lat": 30.2}, {"x": 1}]
    + [10**63, 10**64, -(10**62), -(10**63)]
)


@st.composite
def resident_ops(draw: st.DrawFn) -> p.Op:
    """Ops of the resident form as devices send them (text values of its fields), now and
    then with a grid code, a value that is not text, a status or a name it does not have."""
    names = st.sampled_from(list(RESIDENT.fields))
    fields: dict[str, Any] = draw(st.dictionaries(names, _TEXT, max_size=10))
    if draw(st.booleans()):
        fields["grid"] = draw(st.one_of(_TEXT, _ODD))  # a grid code, or a number or worse
    if draw(st.booleans()):
        fields[draw(names)] = draw(_ODD)
    odd = st.sampled_from(["_status", "_deleted", "no_such_field"])
    fields.update(draw(st.dictionaries(odd, st.one_of(_TEXT, _ODD), max_size=2)))
    return p.Op.model_construct(
        op_id="dev:1",
        record_id=UUID,
        form="resident",
        kind=draw(st.sampled_from(["create", "update", "delete", "resolve"])),
        base_version=None,
        fields=fields,
        edited_at="2026-12-01T00:00:00.000Z#0000",
        author="w",
    )


@settings(max_examples=600, deadline=None)
@given(op=st.one_of(ops(), resident_ops()))
def test_the_fields_checked_at_once_answer_as_the_field_loop(op: p.Op) -> None:
    """``checks._fields_ok`` passes an op only when the field-by-field loop would: the same
    answer (the form, or the first bad field's error) whether it decides or the loop does."""
    fast = _answer(FORMSET, op)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(checks, "_fields_ok", lambda _form, _fields: False)
        plain = _answer(FORMSET, op)
    assert fast == plain


def test_a_usual_op_has_its_fields_checked_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A device's create of a resident (text values of the form's fields and its status)
    checks no field on its own (the loop checked each field's shape, ~15 per resident)."""
    shaped: list[str] = []
    plain_shape = checks._shape_ok

    def counted(kind: str, value: Any) -> bool:
        shaped.append(kind)
        return plain_shape(kind, value)

    monkeypatch.setattr(checks, "_shape_ok", counted)
    op = p.Op(
        op_id="dev:1",
        record_id=UUID,
        form="resident",
        kind="create",
        fields={
            "name": "张三",
            "phone": "13800000000",
            "grid": "330106001001-01",
            "_status": "draft",
        },
        edited_at="2026-12-01T00:00:00.000Z#0000",
        author="w",
    )
    assert checks.check_op_shape(FORMSET, op, 0).id == "resident"
    assert shaped == []


@settings(max_examples=300, deadline=None)
@given(batch=st.lists(ops(), max_size=6))
def test_one_scan_of_a_request_answers_as_a_scan_per_op(batch: list[p.Op]) -> None:
    """``strings_ok_all`` of a request's ops is ``_strings_ok`` of each, all passing; and the
    shapes of the request (the forms, or the first op's error) are the ones the per-op scans
    give."""
    assert checks.strings_ok_all(batch) == all(checks._strings_ok(op) for op in batch)

    def shapes() -> Any:
        forms, error = checks._shapes(FORMSET, batch)
        found = error and (error.status, error.code, error.op_id, error.index, error.field)
        return [f.id for f in forms], found

    fast = shapes()
    with pytest.MonkeyPatch.context() as m:
        m.setattr(checks, "strings_ok_all", lambda _ops: False)
        assert fast == shapes()
    with pytest.MonkeyPatch.context() as m:
        m.setattr(checks, "fields_ok_all", lambda _formset, _ops: False)
        assert fast == shapes()


def _grid_op(grid: Any) -> p.Op:
    return p.Op.model_construct(
        op_id="dev:1",
        record_id=UUID,
        form="resident",
        kind="create",
        base_version=None,
        fields={"name": "张三", "grid": grid},
        edited_at="2026-12-01T00:00:00.000Z#0000",
        author="w",
    )


@settings(max_examples=400, deadline=None)
@given(batch=st.lists(st.one_of(ops(), resident_ops()), max_size=6))
@example(batch=[_grid_op(10**63), _grid_op(10**64)])  # a number as long as a grid code, longer
@example(batch=[_grid_op(-(10**62)), _grid_op(-(10**63))])
def test_the_fields_of_a_request_as_columns_pass_as_each_op_passes(batch: list[p.Op]) -> None:
    """``fields_ok_all`` passes a request exactly when every op but the deletes has a form
    and passes ``_fields_ok``."""
    forms = FORMSET.forms
    each = all(
        op.form in forms and checks._fields_ok(forms[op.form], op.fields)
        for op in batch
        if op.kind != "delete"
    )
    assert checks.fields_ok_all(FORMSET, batch) == each


def test_a_request_has_its_fields_checked_as_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shapes of 50 residents' creates ask ``_fields_ok`` of no op (there were 50: the
    request's fields are checked as columns)."""
    asked: list[Any] = []
    monkeypatch.setattr(checks, "_fields_ok", lambda form, fields: asked.append(fields) or True)
    batch = [
        p.Op(
            op_id=f"dev:{n}",
            record_id=UUID,
            form="resident",
            kind="create",
            fields={"name": "张三", "grid": "330106001001-01", "_status": "draft"},
            edited_at="2026-12-01T00:00:00.000Z#0000",
            author="w",
        )
        for n in range(50)
    ]
    forms, error = checks._shapes(FORMSET, batch)
    assert error is None and len(forms) == 50
    assert asked == []


def test_a_request_is_scanned_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shapes of 50 good ops: one scan of all their strings (their field names once),
    none per op (there were 50: one per op)."""
    scans: list[int] = []
    plain = checks.cells_ok
    monkeypatch.setattr(checks, "cells_ok", lambda cells: scans.append(len(cells)) or plain(cells))
    batch = [
        p.Op(
            op_id=f"dev:{n}",
            record_id=UUID,
            form="resident",
            kind="create",
            fields={"name": "张三", "phone": "13800000000", "grid": "330106001001-01"},
            edited_at="2026-12-01T00:00:00.000Z#0000",
            author="w",
        )
        for n in range(50)
    ]
    forms, error = checks._shapes(FORMSET, batch)
    assert error is None and len(forms) == 50
    assert scans == [50 * 5 + 3 + 50 * 3]  # five ids and three values each, three names once
