"""Record filters: parsing (labels, codes by label, dates, age), canonical text round trips,
JSON round trips, clear errors, and ``matches`` against a plain reference evaluation."""

from __future__ import annotations

import datetime as dt
from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.forms import FormSet
from app.core.recordfilter import (
    And,
    FilterError,
    Not,
    Or,
    RecordFilter,
    Term,
    parse_filter,
)
from tests.factories import id_number, id_number_15

TODAY = date(2026, 6, 15)


@pytest.fixture(scope="module")
def fs() -> FormSet:
    from app.core.forms import load_formset

    return load_formset()


def test_labels_codes_and_keywords_in_both_languages(fs: FormSet) -> None:
    form = fs.form("resident")
    zh = parse_filter("人口类型 = 流动人口 且 (联系方式 为空 或 非 年龄 ≥ 60)", form, fs)
    en = parse_filter("Population type = 2 AND (phone is empty OR NOT age >= 60)", form, fs)
    assert zh == en
    assert zh.text == "population_type = 2 and (phone is empty or not age >= 60)"
    assert zh.fields == {"population_type", "phone", "birth_date"}


def test_english_label_that_holds_an_operator_word(fs: FormSet) -> None:
    f = parse_filter("House lived in is filled", fs.form("resident"), fs)
    assert f.text == "house_ref is filled"


def test_dates_relative_and_age(fs: FormSet) -> None:
    form = fs.form("resident")
    expiring = parse_filter("id_valid_until <= 今天+1m", form, fs)
    assert expiring.text == "id_valid_until <= today+1m"
    assert expiring.matches({"id_valid_until": "2026-07-15"}, TODAY)
    assert not expiring.matches({"id_valid_until": "2026-07-16"}, TODAY)
    assert not expiring.matches({}, TODAY)  # empty: a comparison is false
    old = parse_filter("年龄 >= 60", form, fs)
    assert old.matches({"birth_date": "1966-06-15"}, TODAY)
    assert not old.matches({"birth_date": "1966-06-16"}, TODAY)
    assert not old.matches({"birth_date": "bad"}, TODAY)


def test_not_equal_is_true_for_empty_and_multi_choice_membership(fs: FormSet) -> None:
    form = fs.form("resident")
    group = next(f for f in form.fields.values() if f.type == "multi_choice")
    table = fs.table(group.codes or "")
    code = next(iter(table.codes))
    f = parse_filter(f"{group.id} contains {table.codes[code].zh}", form, fs)
    assert f.matches({group.id: [code, "zz"]}, TODAY)
    assert not f.matches({group.id: ["zz"]}, TODAY)
    ne = parse_filter("name != 张三", form, fs)
    assert ne.matches({}, TODAY) and ne.matches({"name": "李四"}, TODAY)
    assert not ne.matches({"name": "张三"}, TODAY)


def test_id_numbers_and_phones_compare_in_their_stored_form(fs: FormSet) -> None:
    form = fs.form("resident")
    f = parse_filter("id_number = 11010519491231002x", form, fs)
    assert f.matches({"id_number": "11010519491231002X"}, TODAY)
    p = parse_filter("phone = '+86 138 0013 8000'", form, fs)
    assert p.matches({"phone": "13800138000"}, TODAY)


def test_an_id_number_field_finds_either_generation(fs: FormSet) -> None:
    """``证件号码 = <15 digits>`` selects the record holding the 18-digit form and the reverse,
    ``in (...)`` too, and ``!=`` is its negation: an ID number's identity is its natural key
    (``naturalkeys``), whatever generation was typed or stored. By the field's type: another
    ID-number field (the household head's) compares the same way."""
    form = fs.form("resident")
    born = dt.date(1949, 12, 31)
    n18, n15 = id_number(born, 2, "110105"), id_number_15(born, 2, "110105")
    other = id_number(dt.date(1985, 6, 15), 3)
    for field in ("证件号码", "head_id_number"):
        fid = "id_number" if field == "证件号码" else field
        old, new, nobody = {fid: n15}, {fid: n18}, {fid: other}
        for typed in (n15, n18, n18.lower(), f"'{n15[:6]} {n15[6:]}'"):
            eq = parse_filter(f"{field} = {typed}", form, fs)
            assert [eq.matches(d, TODAY) for d in (old, new, nobody, {})] == [
                True,
                True,
                False,
                False,
            ], typed
            ne = parse_filter(f"{field} != {typed}", form, fs)
            assert [ne.matches(d, TODAY) for d in (old, new, nobody, {})] == [
                False,
                False,
                True,
                True,
            ], typed
            among = parse_filter(f"{field} in ({other}, {typed})", form, fs)
            assert [among.matches(d, TODAY) for d in (old, new, nobody, {})] == [
                True,
                True,
                True,
                False,
            ], typed


def test_an_id_number_is_not_another_generation_it_is_not(fs: FormSet) -> None:
    """Only a number's own other generation is equal: an 18-digit number whose check
    character is wrong is not the 15-digit one (that upgrades to the right character), one
    born in the 2000s has no 15-digit form, and a text field holding digits is not an ID
    number. ``contains`` compares fragments as typed (a fragment has no generation)."""
    form = fs.form("resident")
    born = dt.date(1949, 12, 31)
    n18, n15 = id_number(born, 2, "110105"), id_number_15(born, 2, "110105")
    wrong = n18[:17] + ("1" if n18[17] != "1" else "2")
    assert not parse_filter(f"id_number = {wrong}", form, fs).matches({"id_number": n15}, TODAY)
    assert not parse_filter(f"id_number = {n15}", form, fs).matches({"id_number": wrong}, TODAY)
    young = id_number(dt.date(2001, 12, 31), 2, "110105")
    young15 = young[:6] + young[8:17]
    assert not parse_filter(f"id_number = {young15}", form, fs).matches({"id_number": young}, TODAY)
    assert not parse_filter(f"name = {n15}", form, fs).matches({"name": n18}, TODAY)
    part = parse_filter(f"id_number contains {n15[4:8]}", form, fs)  # "0549": across "19"
    assert part.matches({"id_number": n15}, TODAY)
    assert not part.matches({"id_number": n18}, TODAY)


@pytest.mark.parametrize(
    ("text", "position", "hint"),
    [
        ("人口类型 = 外星人", 7, "不是字段 population_type 的代码或名称"),
        ("foo = 1", 0, "没有字段"),
        ("联系方式 < 3", 5, "只能用于数字、日期和年龄"),
        ("(name = a", 9, "右括号"),
        ("name = a b", 9, "and/or"),
        ("出生日期 > 明天", 7, "YYYY-MM-DD"),
        ("name = 'abc", 7, "引号"),
        ("", 0, "条件为空"),
        ("name", 4, "比较符"),
        ("is_focus = 也许", 11, "是 或 否"),
    ],
)
def test_errors_say_what_to_fix_and_where(fs: FormSet, text: str, position: int, hint: str) -> None:
    with pytest.raises(FilterError) as caught:
        parse_filter(text, fs.form("resident"), fs)
    assert hint in caught.value.message_zh
    assert caught.value.message_en
    assert caught.value.position == position


def test_unknown_field_hint_names_the_closest_label(fs: FormSet) -> None:
    with pytest.raises(FilterError) as caught:
        parse_filter("人口类别 = 1", fs.form("resident"), fs)
    assert "人口类型" in caught.value.message_zh


# ---------------------------------------------------------------------------- properties

TEXTS = ["张三", "李", "a b", 'x"y', "and", "back\\slash", "、", "(", "today"]
DATES = ["2020-01-01", "2026-06-15", "today", "today+30d", "today-1y", "today+2m"]
CODES = ["1", "2", "3", "4"]


def _term(form_id: str) -> st.SearchStrategy[Term]:
    if form_id == "house":
        numbers = st.sampled_from(["rooms", "floor_area"])
        return st.one_of(
            st.builds(
                Term,
                numbers,
                st.just("number"),
                st.sampled_from(["=", "!=", "<", "<=", ">", ">="]),
                st.sampled_from([0, 1, 3, 2.5, -1]),
            ),
            st.builds(Term, numbers, st.just("number"), st.sampled_from(["is empty", "is filled"])),
            st.builds(Term, st.just("is_rental"), st.just("bool"), st.just("="), st.booleans()),
        )
    return st.one_of(
        st.builds(
            Term,
            st.just("name"),
            st.just("text"),
            st.sampled_from(["=", "!=", "contains"]),
            st.sampled_from(TEXTS),
        ),
        st.builds(
            Term,
            st.just("name"),
            st.just("text"),
            st.just("in"),
            st.lists(st.sampled_from(TEXTS), min_size=1, max_size=3).map(tuple),
        ),
        st.builds(
            Term,
            st.just("population_type"),
            st.just("code"),
            st.sampled_from(["=", "!="]),
            st.sampled_from(CODES),
        ),
        st.builds(
            Term,
            st.just("id_valid_until"),
            st.just("date"),
            st.sampled_from(["=", "!=", "<", "<=", ">", ">="]),
            st.sampled_from(DATES),
        ),
        st.builds(
            Term,
            st.just("age"),
            st.just("age"),
            st.sampled_from(["<", ">=", "="]),
            st.integers(0, 100),
            st.just("birth_date"),
        ),
        st.builds(
            Term, st.just("phone"), st.just("text"), st.sampled_from(["is empty", "is filled"])
        ),
    )


def _tree(form_id: str) -> st.SearchStrategy[Any]:
    return st.recursive(
        _term(form_id),
        lambda kids: st.one_of(
            st.builds(Not, kids),
            st.lists(kids, min_size=2, max_size=3).map(lambda xs: And(tuple(xs))),
            st.lists(kids, min_size=2, max_size=3).map(lambda xs: Or(tuple(xs))),
        ),
        max_leaves=6,
    )


def _normal(node: Any) -> Any:
    """What parsing gives for a tree: nested and/or of the same kind merged."""
    if isinstance(node, Not):
        return Not(_normal(node.item))
    if isinstance(node, And | Or):
        out: list[Any] = []
        for item in (_normal(i) for i in node.items):
            out.extend(item.items if type(item) is type(node) else (item,))
        return type(node)(tuple(out))
    return node


def _ref_date(spec: str) -> date:
    table = {
        "today": TODAY,
        "today+30d": date(2026, 7, 15),
        "today-1y": date(2025, 6, 15),
        "today+2m": date(2026, 8, 15),
    }
    return table.get(spec) or date.fromisoformat(spec)


def _reference(node: Any, data: dict[str, Any]) -> bool:
    """A plain evaluation written apart from the module's."""
    if isinstance(node, Not):
        return not _reference(node.item, data)
    if isinstance(node, And):
        return all(_reference(i, data) for i in node.items)
    if isinstance(node, Or):
        return any(_reference(i, data) for i in node.items)
    t: Term = node
    if t.kind == "age":
        b = data.get("birth_date")
        have: Any = None
        if isinstance(b, str) and len(b) == 10 and b[4] == "-":
            bd = date.fromisoformat(b)
            have = TODAY.year - bd.year - ((TODAY.month, TODAY.day) < (bd.month, bd.day))
    else:
        have = data.get(t.field)
        if have in (None, "", []):
            have = None
    if t.op == "is empty":
        return have is None
    if t.op == "is filled":
        return have is not None
    want: Any = t.value
    if t.kind == "date":
        have = date.fromisoformat(have) if isinstance(have, str) and have[:1].isdigit() else None
        want = _ref_date(str(t.value))
    if t.kind == "number" and (isinstance(have, bool) or not isinstance(have, int | float)):
        have = None
    if t.kind == "bool" and not isinstance(have, bool):
        have = None
    if t.op == "!=":
        return have is None or have != want
    if have is None:
        return False
    ops = {
        "=": lambda: have == want,
        "in": lambda: have in want,
        "contains": lambda: str(want).lower() in str(have).lower(),
        "<": lambda: have < want,
        "<=": lambda: have <= want,
        ">": lambda: have > want,
        ">=": lambda: have >= want,
    }
    return bool(ops[t.op]())


RESIDENTS = st.fixed_dictionaries(
    {},
    optional={
        "name": st.sampled_from([*TEXTS, "张三丰", "A B", ""]),
        "population_type": st.sampled_from(CODES),
        "id_valid_until": st.sampled_from(
            ["2020-01-01", "2026-06-15", "2026-07-15", "2026-07-16", "2025-06-14", "bad"]
        ),
        "birth_date": st.sampled_from(["1966-06-15", "1966-06-16", "2026-06-15", "x"]),
        "phone": st.sampled_from(["13800138000", ""]),
    },
)
HOUSES = st.fixed_dictionaries(
    {},
    optional={
        "rooms": st.sampled_from([0, 1, 3, 4, "many", True]),
        "floor_area": st.sampled_from([2.5, 80.0, -1, 0]),
        "is_rental": st.sampled_from([True, False, "maybe"]),
    },
)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["resident", "house"]), st.data())
def test_canonical_text_parses_back_to_the_same_filter(fs: FormSet, form_id: str, data) -> None:
    tree = _normal(data.draw(_tree(form_id)))
    f = RecordFilter(form_id, tree)
    again = parse_filter(f.text, fs.form(form_id), fs)
    assert again == f
    assert RecordFilter.from_json(f.to_json()) == f


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["resident", "house"]), st.data())
def test_matches_agrees_with_a_reference_evaluation(fs: FormSet, form_id: str, data) -> None:
    tree = data.draw(_tree(form_id))
    record = data.draw(RESIDENTS if form_id == "resident" else HOUSES)
    f = parse_filter(RecordFilter(form_id, _normal(tree)).text, fs.form(form_id), fs)
    assert f.matches(record, TODAY) == _reference(tree, record)
