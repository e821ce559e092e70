"""Golden cases and properties of the field-level three-way merge (sync/merge.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync import merge as merge_module
from sync.merge import (
    DELETED,
    STATUS,
    Action,
    Stamp,
    classify,
    combine_conflicts,
    merge,
    merge_fields,
    merge_new,
    merge_new_all,
    new_data_all,
    norm,
    op_changes,
    resolve,
    same,
    unchanged,
)

BASE = {
    "name": "张三",
    "phone": "13800138000",
    "occupation": "教师",
    STATUS: "complete",
    DELETED: False,
}
EARLY, LATE = "2024-05-01T08:00:00.000Z#0000", "2024-05-01T09:00:00.000Z#0000"


def server_with(**changes: Any) -> tuple[dict[str, Any], dict[str, Stamp]]:
    """The base changed on the server by device "other" at EARLY."""
    return {**BASE, **changes}, {k: Stamp(EARLY, "other") for k in changes}


def test_different_fields_merge_without_conflict() -> None:
    server, stamps = server_with(phone="13911112222")
    m = merge(
        BASE,
        server,
        op_changes("update", {"occupation": "医生"}),
        edited_at=LATE,
        device="me",
        stamps=stamps,
    )
    assert m.values["phone"] == "13911112222"
    assert m.values["occupation"] == "医生"
    assert m.conflicts == ()
    assert m.changed == {"occupation": "医生"}
    assert m.stamps["occupation"] == Stamp(LATE, "me")
    assert m.stamps["phone"] == Stamp(EARLY, "other")


def test_same_field_same_value_is_no_conflict() -> None:
    server, stamps = server_with(phone="13911112222")
    m = merge(
        BASE,
        server,
        op_changes("update", {"phone": "13911112222"}),
        edited_at=LATE,
        device="me",
        stamps=stamps,
    )
    assert m.conflicts == ()
    assert m.changed == {}


def test_same_field_different_values_is_a_hard_conflict_with_the_later_edit_provisional() -> None:
    server, stamps = server_with(phone="13911112222")
    later = merge(
        BASE, server, {"phone": "13700137000"}, edited_at=LATE, device="me", stamps=stamps
    )
    (c,) = later.hard
    assert (c.field, c.base, c.server, c.incoming) == (
        "phone",
        "13800138000",
        "13911112222",
        "13700137000",
    )
    assert c.provisional == "13700137000" == later.values["phone"]
    earlier = merge(
        BASE,
        server,
        {"phone": "13700137000"},
        edited_at="2024-05-01T07:00:00.000Z#0000",
        device="me",
        stamps=stamps,
    )
    assert earlier.hard[0].provisional == "13911112222" == earlier.values["phone"]
    assert earlier.changed == {}


def test_update_versus_delete_is_a_conflict_and_the_record_stays_live() -> None:
    server, stamps = server_with(**{DELETED: True})
    m = merge(
        BASE,
        server,
        op_changes("update", {"phone": "13700137000"}),
        edited_at=LATE,
        device="me",
        stamps=stamps,
    )
    (c,) = m.hard
    assert (c.field, c.base, c.server, c.incoming, c.provisional) == (
        DELETED,
        False,
        True,
        False,
        False,
    )
    assert m.values[DELETED] is False
    assert m.values["phone"] == "13700137000"


def test_delete_versus_update_is_a_conflict_and_the_record_stays_live() -> None:
    server, stamps = server_with(phone="13911112222")
    m = merge(BASE, server, op_changes("delete", {}), edited_at=LATE, device="me", stamps=stamps)
    (c,) = m.hard
    assert (c.field, c.server, c.incoming, c.provisional) == (DELETED, False, True, False)
    assert m.values[DELETED] is False
    assert m.values["phone"] == "13911112222"


def test_delete_versus_delete_changes_nothing() -> None:
    server, stamps = server_with(**{DELETED: True})
    m = merge(BASE, server, op_changes("delete", {}), edited_at=LATE, device="me", stamps=stamps)
    assert m.conflicts == ()
    assert m.changed == {}
    assert m.values[DELETED] is True


def test_delete_of_an_unchanged_record_deletes_it() -> None:
    m = merge(BASE, dict(BASE), op_changes("delete", {}), edited_at=LATE, device="me")
    assert m.values[DELETED] is True
    assert m.changed == {DELETED: True}


def test_no_op_update_of_a_record_deleted_elsewhere_keeps_it_deleted() -> None:
    server, stamps = server_with(**{DELETED: True})
    m = merge(
        BASE,
        server,
        op_changes("update", {"phone": BASE["phone"]}),
        edited_at=LATE,
        device="me",
        stamps=stamps,
    )
    assert m.values[DELETED] is True
    assert m.conflicts == ()


def test_update_of_a_tombstone_the_device_saw_restores_it() -> None:
    base = {**BASE, DELETED: True}
    m = merge(
        base,
        dict(base),
        op_changes("update", {"phone": "13700137000"}),
        edited_at=LATE,
        device="me",
    )
    assert m.values[DELETED] is False
    assert m.conflicts == ()


def test_reordered_ops_of_one_device_are_not_a_conflict() -> None:
    """An older op of the same device arriving late never overwrites its newer edit."""
    server = {**BASE, "phone": "13911112222"}
    stamps = {"phone": Stamp(LATE, "me")}
    m = merge(BASE, server, {"phone": "13700137000"}, edited_at=EARLY, device="me", stamps=stamps)
    assert m.conflicts == ()
    assert m.values["phone"] == "13911112222"


def test_soft_conflict_for_spellings_of_one_value() -> None:
    server, stamps = server_with(name="ＡＢＣ")
    m = merge(BASE, server, {"name": "abc"}, edited_at=LATE, device="me", stamps=stamps)
    (c,) = m.conflicts
    assert c.kind == "soft"
    assert m.hard == ()
    assert m.values["name"] == "abc"


def test_status_conflicts_are_soft() -> None:
    server, stamps = server_with(**{STATUS: "draft"})
    m = merge(
        BASE,
        server,
        {STATUS: "complete", "phone": BASE["phone"]},
        edited_at=LATE,
        device="me",
        stamps=stamps,
    )
    assert m.hard == ()
    base_draft = {**BASE, STATUS: "draft"}
    server2 = {**BASE, STATUS: "complete"}
    m2 = merge(
        {**base_draft, STATUS: None},
        server2,
        {STATUS: "draft"},
        edited_at=LATE,
        device="me",
        stamps={STATUS: Stamp(EARLY, "other")},
    )
    assert [c.kind for c in m2.conflicts] == ["soft"]


def test_cleared_and_missing_values_are_equal() -> None:
    server = {k: v for k, v in BASE.items() if k != "occupation"}
    m = merge(BASE, server, {"occupation": ""}, edited_at=LATE, device="me")
    assert m.conflicts == ()
    assert "occupation" not in m.values


def test_empty_base_create_merge_keeps_disjoint_fields_and_flags_differences() -> None:
    """A create merged by natural key into an existing record: nothing is known in common."""
    server = {"name": "张三", "phone": "13800138000", STATUS: "complete", DELETED: False}
    incoming = op_changes("create", {"name": "张三", "phone": "13911112222", "occupation": "教师"})
    m = merge({}, server, incoming, edited_at=LATE, device="me")
    assert m.values["occupation"] == "教师"
    assert [c.field for c in m.hard] == ["phone"]


def test_booleans_and_numbers_are_compared_by_type() -> None:
    assert classify(None, 1, True, sent=True, same_device=False) is Action.HARD
    assert classify(None, 1, 1.0, sent=True, same_device=False) is Action.SOFT


def test_resolve_writes_the_choice_and_closes_only_named_conflicts() -> None:
    conflicts = [
        {
            "field": "phone",
            "kind": "hard",
            "base": "1",
            "server": "2",
            "incoming": "3",
            "provisional": "3",
        },
        {
            "field": "name",
            "kind": "hard",
            "base": "a",
            "server": "b",
            "incoming": "c",
            "provisional": "c",
        },
    ]
    server = {**BASE, "phone": "13700137000"}
    r = resolve(server, conflicts, {"phone": "13911112222"}, edited_at=LATE, device="me")
    assert r.values["phone"] == "13911112222"
    assert [c["field"] for c in r.remaining] == ["name"]
    r2 = resolve(server, conflicts, {DELETED: True, "name": "张三"}, edited_at=LATE, device="me")
    assert r2.values[DELETED] is True
    assert [c["field"] for c in r2.remaining] == ["phone"]


def test_combined_conflicts_keep_the_original_base() -> None:
    first = merge(BASE, {**BASE, "phone": "2"}, {"phone": "3"}, edited_at=LATE, device="me").hard
    opened = combine_conflicts([], first)
    second = merge(
        {**BASE, "phone": "3"}, {**BASE, "phone": "3x"}, {"phone": "4"}, edited_at=LATE, device="me"
    ).hard
    again = combine_conflicts(opened, second)
    assert len(again) == 1
    assert again[0]["base"] == BASE["phone"]
    assert again[0]["incoming"] == "4"


# -- properties -----------------------------------------------------------------------------

values = st.one_of(st.none(), st.sampled_from(["a", "b", "c", ""]), st.integers(0, 2))
states = st.fixed_dictionaries({}, optional={f: values for f in ("f1", "f2", "f3")})


@given(base=states, server=states, incoming=states)
def test_no_value_is_lost(
    base: dict[str, Any], server: dict[str, Any], incoming: dict[str, Any]
) -> None:
    """Every field ends with the server's or the incoming value; a discarded change is in a
    conflict entry; fields nobody changed keep the base value."""
    m = merge(base, server, incoming, edited_at=LATE, device="me")
    by_field = {c.field: c for c in m.conflicts}
    for f in ("f1", "f2", "f3"):
        got = m.values.get(f)
        b, s, i = norm(base.get(f)), norm(server.get(f)), norm(incoming.get(f))
        assert got in (s, i)
        if f not in incoming:
            assert got == s
        if f in incoming and i != b and got != i:
            assert f in by_field and by_field[f].incoming == i  # the incoming change is kept
        if s != b and got != s:
            assert f in by_field and by_field[f].server == s  # the server change is kept


@given(base=states, server=states)
def test_merging_nothing_changes_nothing(base: dict[str, Any], server: dict[str, Any]) -> None:
    m = merge(base, server, {}, edited_at=LATE, device="me")
    assert m.changed == {} and m.conflicts == ()


@given(base=states, incoming=states)
def test_unchanged_server_takes_every_incoming_change(
    base: dict[str, Any], incoming: dict[str, Any]
) -> None:
    m = merge(base, dict(base), incoming, edited_at=LATE, device="me")
    assert m.conflicts == ()
    for f, v in incoming.items():
        assert m.values.get(f) == norm(v)


@given(base=states, server=states, incoming=states)
def test_merge_is_idempotent(
    base: dict[str, Any], server: dict[str, Any], incoming: dict[str, Any]
) -> None:
    """Applying the same change again to the merged state changes nothing."""
    m = merge(base, server, incoming, edited_at=LATE, device="me")
    again = merge(base, m.values, incoming, edited_at=LATE, device="me", stamps=m.stamps)
    assert again.changed == {}


VALUES = st.one_of(
    st.none(),
    st.sampled_from(["", " ", "张三", "张三 ", "0"]),
    st.text(max_size=3),
    st.integers(-1, 1),
    st.floats(allow_nan=False, min_value=-1, max_value=1),
    st.booleans(),
    st.lists(st.sampled_from(["a", "b", ""]), max_size=2),
    st.dictionaries(st.sampled_from(["lon", "lat"]), st.integers(0, 1), max_size=2),
)


@given(VALUES, VALUES)
def test_same_is_equality_of_normalised_values(a: Any, b: Any) -> None:
    """``same`` takes short cuts for text and None; it must agree with its definition."""
    na, nb = norm(a), norm(b)
    if na is None or nb is None:
        expected = na is nb
    else:
        # a number is equal to its equal (0.0 and -0.0 are one stored value), the rest by JSON
        scalar = isinstance(na, str | int | float | bool)
        expected = type(na) is type(nb) and (
            na == nb if scalar else json.dumps(na, sort_keys=True) == json.dumps(nb, sort_keys=True)
        )
    assert same(a, b) is expected
    assert same(b, a) is expected


def test_a_field_changed_back_by_the_same_device_takes_its_later_edit() -> None:
    """A -> B -> A on one device: the second op's value equals its base, but the server value
    is the device's own earlier edit, so the later edit wins (row 4), without a conflict."""
    server = {**BASE, "phone": "13911112222"}
    stamps = {"phone": Stamp(EARLY, "me")}
    m = merge(BASE, server, {"phone": BASE["phone"]}, edited_at=LATE, device="me", stamps=stamps)
    assert m.values["phone"] == BASE["phone"] and m.conflicts == ()
    other = merge(
        BASE, server, {"phone": BASE["phone"]}, edited_at=LATE, device="you", stamps=stamps
    )
    assert other.values["phone"] == "13911112222"  # another device's unchanged field: row 1


def test_conflict_kinds_and_rules_are_typed_but_travel_as_the_same_words() -> None:
    """Typed vocabularies (issue 11): the wire keeps "hard"/"soft", a stray word fails early."""
    from sync.merge import RULES, Conflict, ConflictKind, Take

    entry = Conflict("phone", "hard", "1", "2", "3", "3").as_dict()
    assert type(entry["kind"]) is str and json.dumps(entry["kind"]) == '"hard"'
    assert [(RULES[a].take.value, RULES[a].conflict) for a in (Action.SOFT, Action.HARD)] == [
        ("later", "soft"),
        ("later", "hard"),
    ]
    assert {k.value for k in ConflictKind} == {"hard", "soft"}
    assert {t.value for t in Take} == {"server", "incoming", "later"}
    with pytest.raises(ValueError):
        Conflict("phone", "medium", "1", "2", "3", "3")


richer = st.one_of(
    values,
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.sampled_from(["  ", " a ", "张三"]),
    st.lists(st.sampled_from(["x", "y", ""]), max_size=3),
    st.dictionaries(st.sampled_from(["lon", "lat"]), st.integers(0, 3), max_size=2),
)


@given(
    incoming=st.dictionaries(
        st.sampled_from(["f1", "f2", "f3", STATUS, DELETED]), richer, max_size=5
    ),
    edited_at=st.sampled_from([EARLY, LATE, ""]),
    device=st.sampled_from(["me", ""]),
)
def test_merging_into_nothing_fast_is_the_general_merge(
    incoming: dict[str, Any], edited_at: str, device: str
) -> None:
    if DELETED in incoming:
        incoming[DELETED] = bool(incoming[DELETED])
    fast = merge_new(incoming, edited_at=edited_at, device=device)
    slow = merge({}, {}, incoming, edited_at=edited_at, device=device)
    assert fast == slow
    assert list(fast.values) == list(slow.values)  # the same key order: stored JSON is the same


pseudo_states = st.fixed_dictionaries(
    {},
    optional={
        **{f: richer for f in ("f1", "f2", "f3")},
        STATUS: st.sampled_from(["draft", "complete", "", None]),
        DELETED: st.booleans(),
    },
)
stamp_maps = st.dictionaries(
    st.sampled_from(["f1", "f2", "f3", STATUS, DELETED]),
    st.builds(Stamp, st.sampled_from([EARLY, LATE, ""]), st.sampled_from(["me", "other", ""])),
    max_size=5,
)


@given(
    base=pseudo_states,
    server=pseudo_states,
    incoming=pseudo_states,
    echo=st.lists(st.sampled_from(["f1", "f2", "f3", STATUS]), max_size=4),
    stamps=stamp_maps,
    edited_at=st.sampled_from([EARLY, LATE, ""]),
    device=st.sampled_from(["me", "other", ""]),
)
def test_changes_that_change_nothing_fast_are_the_general_merge(
    base: dict[str, Any],
    server: dict[str, Any],
    incoming: dict[str, Any],
    echo: list[str],
    stamps: dict[str, Stamp],
    edited_at: str,
    device: str,
) -> None:
    """``merge`` (which answers echoes of the server's values by ``unchanged``) equals the
    field-by-field merge for any mix; ``echo`` copies server values into the incoming side,
    so echoes of the whole record (the fast path) come up as often as real changes."""
    incoming = {**incoming, **{f: server.get(f) for f in echo}}
    for changes in (incoming, op_changes("create", incoming), op_changes("delete", incoming)):
        args = (base, server, changes)
        fast = merge(*args, edited_at=edited_at, device=device, stamps=stamps)
        slow = merge_fields(*args, edited_at=edited_at, device=device, stamps=stamps)
        assert fast == slow
        assert list(fast.values) == list(slow.values)  # the same key order: the same JSON


def test_an_echo_of_the_server_state_is_decided_without_the_field_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The create of a record the platform holds with the same values (another device typed
    the same person) changes nothing, and no field is classified three ways to find that out;
    a real change still goes through the table."""
    import sync.merge as m

    calls: list[str] = []

    def counted(*args: Any, **kwargs: Any) -> Action:
        calls.append("classify")
        return classify(*args, **kwargs)

    monkeypatch.setattr(m, "classify", counted)
    server, stamps = server_with(phone="13911112222")
    echo = op_changes("create", {k: v for k, v in server.items() if k != DELETED})
    got = merge({}, server, echo, edited_at=LATE, device="new", stamps=stamps)
    assert got.changed == {} and got.conflicts == () and got.stamps == stamps
    assert unchanged(server, echo, stamps) == got
    assert calls == []
    changed = merge({}, server, {**echo, "phone": "1"}, edited_at=LATE, device="new")
    assert changed.changed == {"phone": "1"} and calls


@given(
    incoming=st.dictionaries(
        st.sampled_from(["f1", "f2", "f3", STATUS, DELETED]),
        st.sampled_from(["", "  ", " a ", "张三", "draft", "x"]),
        max_size=5,
    ),
    edited_at=st.sampled_from([EARLY, LATE, ""]),
)
def test_fields_all_text_merge_into_nothing_as_the_loop_merges_them(
    incoming: dict[str, Any], edited_at: str
) -> None:
    """``merge_new``'s one comprehension for text-only fields (a device's create) gives what
    its value-by-value loop gives, a text under ``_deleted`` included."""
    fast = merge_new(incoming, edited_at=edited_at, device="me")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(merge_module, "TEXT_ONLY", frozenset())
        slow = merge_new(incoming, edited_at=edited_at, device="me")
    assert fast == slow
    assert list(fast.values) == list(slow.values)


_text_changes = st.dictionaries(
    st.sampled_from(["f1", "f2", "f3", "f4", STATUS]),
    st.sampled_from(["a", " b ", "张三", "draft", "complete"]),
    max_size=5,
)


@st.composite
def _change_columns(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Changes of new records as a push sends them: mostly filled text with the names in
    a few orders (sorted, as a device's outbox sends them, or not), sometimes a blank, a
    ``_deleted`` or a value of another type (the column then goes record by record)."""
    out = []
    for _ in range(draw(st.integers(0, 6))):
        change: dict[str, Any] = draw(_text_changes)
        if draw(st.booleans()):
            change = dict(sorted(change.items()))
        out.append(change)
    odd = draw(st.sampled_from([None, "blank", "deleted", "number", "list"]))
    if odd is not None and out:
        change = out[draw(st.integers(0, len(out) - 1))]
        change["f9"] = {"blank": " ", "deleted": "x", "number": 7, "list": ["y"]}[odd]
        if odd == "deleted":
            change[DELETED] = change.pop("f9")
    return out


@given(changes=_change_columns())
def test_the_data_of_new_records_is_that_of_their_merge(changes: list[dict[str, Any]]) -> None:
    """``new_data_all`` gives the data ``merge_new`` gives each change (its values without
    the pseudo-fields, in the same key order) when ``merge_new_all`` takes them as a column;
    None when some value is not filled text or one sends ``_deleted``."""
    found = new_data_all(changes)
    merged = [merge_new(c, edited_at=EARLY, device="me").values for c in changes]
    plain = [{k: v for k, v in m.items() if k not in (STATUS, DELETED)} for m in merged]
    texts = [v for c in changes for v in c.values()]
    column = all(type(v) is str and v.strip() for v in texts) and not any(
        DELETED in c for c in changes
    )
    if not column:
        assert found is None
        return
    assert found == plain
    assert [list(d) for d in found] == [list(d) for d in plain]
    assert merge_new_all(changes, [EARLY] * len(changes), "me", texts=True) == [
        merge_new(c, edited_at=EARLY, device="me") for c in changes
    ]


@given(changes=_change_columns(), data=st.data())
def test_changes_merged_into_nothing_as_a_column_are_merged_one_by_one(
    changes: list[dict[str, Any]], data: st.DataObject
) -> None:
    """``merge_new_all`` gives what ``merge_new`` gives each change: values, changes and
    stamps, in the same key order (stored JSON is the same), whatever the names' order."""
    clocks = [data.draw(st.sampled_from([EARLY, LATE, ""])) for _ in changes]
    column = merge_new_all(changes, clocks, "me")
    pairs = zip(changes, clocks, strict=True)
    one_by_one = [merge_new(c, edited_at=at, device="me") for c, at in pairs]
    assert column == one_by_one
    for fast, slow in zip(column, one_by_one, strict=True):
        assert list(fast.values) == list(slow.values)
        assert list(fast.changed) == list(slow.changed)
        assert list(fast.stamps) == list(slow.stamps)
