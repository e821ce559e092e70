"""Conditions: the laws of all/any/not, what "filled" means, and structural checks."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from app.core.forms.conditions import check_condition, evaluate, fields_of

FIELDS = ["a", "b", "c", "flag"]
SCALARS = st.one_of(
    st.sampled_from(["1", "2", "3", ""]), st.booleans(), st.integers(-2, 2), st.none()
)
VALUES = st.one_of(SCALARS, st.lists(st.sampled_from(["1", "2", "3"]), max_size=3))
COND_SCALARS = st.one_of(st.sampled_from(["1", "2", "3"]), st.booleans(), st.integers(-2, 2))

leaf = st.one_of(
    st.builds(lambda f, v: {"field": f, "equals": v}, st.sampled_from(FIELDS), COND_SCALARS),
    st.builds(
        lambda f, vs: {"field": f, "in": vs},
        st.sampled_from(FIELDS),
        st.lists(COND_SCALARS, min_size=1, max_size=3),
    ),
    st.builds(lambda f, b: {"field": f, "filled": b}, st.sampled_from(FIELDS), st.booleans()),
)
conds = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.builds(lambda cs: {"all": cs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda cs: {"any": cs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda c: {"not": c}, inner),
    ),
    max_leaves=8,
)
values_st = st.dictionaries(st.sampled_from(FIELDS), VALUES)


@given(conds, values_st)
def test_not_negates(cond: dict, values: dict) -> None:
    assert evaluate({"not": cond}, values) == (not evaluate(cond, values))


@given(st.lists(conds, min_size=1, max_size=4), values_st)
def test_all_and_any_fold_their_parts(parts: list, values: dict) -> None:
    results = [evaluate(c, values) for c in parts]
    assert evaluate({"all": parts}, values) == all(results)
    assert evaluate({"any": parts}, values) == any(results)


@given(st.lists(conds, min_size=1, max_size=4), values_st)
def test_de_morgan(parts: list, values: dict) -> None:
    negated = [{"not": c} for c in parts]
    assert evaluate({"not": {"all": parts}}, values) == evaluate({"any": negated}, values)
    assert evaluate({"not": {"any": parts}}, values) == evaluate({"all": negated}, values)


@given(conds, values_st)
def test_single_item_all_and_any_are_the_item(cond: dict, values: dict) -> None:
    assert evaluate({"all": [cond]}, values) == evaluate(cond, values)
    assert evaluate({"any": [cond]}, values) == evaluate(cond, values)


@given(conds)
def test_generated_conditions_are_well_formed(cond: dict) -> None:
    assert check_condition(cond) == []


@given(conds, values_st, st.sampled_from(FIELDS), VALUES)
def test_only_the_fields_a_condition_reads_matter(
    cond: dict, values: dict, other: str, value: object
) -> None:
    """Changing a field outside fields_of(cond) never changes the result (the UI relies on it)."""
    assume(other not in fields_of(cond))
    assert evaluate(cond, {**values, other: value}) == evaluate(cond, values)


@given(values_st)
def test_none_always_holds(values: dict) -> None:
    assert evaluate(None, values) is True


@pytest.mark.parametrize(
    ("value", "filled"),
    [(None, False), ("", False), ([], False), ("x", True), (0, True), (False, True), (["1"], True)],
)
def test_filled(value: object, filled: bool) -> None:
    assert evaluate({"field": "a", "filled": True}, {"a": value}) is filled
    assert evaluate({"field": "a", "filled": False}, {"a": value}) is (not filled)


def test_missing_field_reads_as_empty() -> None:
    assert evaluate({"field": "a", "filled": False}, {})
    assert not evaluate({"field": "a", "equals": "1"}, {})
    assert not evaluate({"field": "a", "in": ["1", "2"]}, {})


def test_equals_and_in() -> None:
    assert evaluate({"field": "t", "equals": "2"}, {"t": "2"})
    assert not evaluate({"field": "t", "equals": "2"}, {"t": "02"})
    assert evaluate({"field": "t", "in": ["1", "2"]}, {"t": "1"})
    assert not evaluate({"field": "t", "in": ["1", "2"]}, {"t": "3"})
    assert evaluate({"field": "r", "equals": True}, {"r": True})
    assert not evaluate({"field": "r", "equals": True}, {"r": False})


def test_booleans_are_not_numbers() -> None:
    assert not evaluate({"field": "r", "equals": True}, {"r": 1})
    assert not evaluate({"field": "n", "equals": 1}, {"n": True})
    assert not evaluate({"field": "n", "in": [0, 1]}, {"n": False})


def test_multi_choice_values_match_any_chosen_code() -> None:
    assert evaluate({"field": "g", "equals": "03"}, {"g": ["01", "03"]})
    assert not evaluate({"field": "g", "equals": "02"}, {"g": ["01", "03"]})
    assert evaluate({"field": "g", "in": ["02", "03"]}, {"g": ["01", "03"]})
    assert not evaluate({"field": "g", "in": ["02"]}, {"g": []})


def test_fields_of() -> None:
    cond = {
        "all": [
            {"field": "a", "equals": "1"},
            {"not": {"any": [{"field": "b", "filled": True}, {"field": "a", "in": ["2"]}]}},
        ]
    }
    assert fields_of(cond) == {"a", "b"}
    assert fields_of(None) == set()


@pytest.mark.parametrize(
    ("cond", "fragment"),
    [
        ("population_type == 2", "must be a mapping"),
        ({"field": "a"}, "exactly one of equals, in, filled"),
        ({"field": "a", "equals": "1", "in": ["1"]}, "exactly one of equals, in, filled"),
        ({"field": "a", "equal": "1"}, "unknown keys ['equal']"),
        ({"field": "a", "in": []}, "non-empty list"),
        ({"field": "a", "in": "1"}, "non-empty list"),
        ({"field": "a", "equals": None}, "use filled"),
        ({"field": "a", "equals": ["1"]}, "use filled"),
        ({"field": "a", "filled": "yes"}, "true or false"),
        ({"field": 3, "equals": "1"}, "field id"),
        ({"all": []}, "non-empty list of conditions"),
        ({"any": {"field": "a", "filled": True}}, "non-empty list of conditions"),
        (
            {"all": [{"field": "a", "filled": True}], "not": {"field": "a", "filled": True}},
            "one key",
        ),
        ({"when": "a"}, "unrecognised condition"),
    ],
)
def test_malformed_conditions_are_reported(cond: object, fragment: str) -> None:
    reasons = check_condition(cond)
    assert reasons and any(fragment in r for r in reasons), reasons


def test_nested_problems_say_where() -> None:
    cond = {"all": [{"field": "a", "filled": True}, {"not": {"field": "b", "in": []}}]}
    (reason,) = check_condition(cond)
    assert reason.startswith("all[1].not: ")


def test_malformed_condition_does_not_evaluate_silently() -> None:
    with pytest.raises(ValueError):
        evaluate({"field": "a"}, {"a": "1"})
