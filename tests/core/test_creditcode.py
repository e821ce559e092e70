"""GB 32100 unified social credit codes: known cases and Hypothesis properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum.cn import uscc

from app.core.creditcode import (
    ALPHABET,
    DEPARTMENTS,
    CreditCodeError,
    category_name,
    check_char,
    department_name,
    is_valid_credit_code,
    parse_credit_code,
)
from app.core.messages import codes

SPEC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]


def spec_check_char(first17: str) -> str:
    """The check character as the standard states it (independent of the code under test)."""
    total = sum(ALPHABET.index(c) * w for c, w in zip(first17, SPEC_WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def make(first17: str) -> str:
    return first17 + spec_check_char(first17)


def error_code(s: str) -> str:
    with pytest.raises(CreditCodeError) as info:
        parse_credit_code(s)
    assert info.value.code in codes()
    return info.value.code


# --- known cases -----------------------------------------------------------------------------

# Published codes of well-known organisations (public registers).
REAL_CODES = [
    "914403001922038216",  # enterprise, Shenzhen
    "9144030071526726XG",  # enterprise, Shenzhen, check character G
    "91330100716105852F",  # enterprise, Hangzhou
    "91110108551385082Q",  # enterprise, Beijing Haidian
    "12100000400002259P",  # 事业单位 registered nationally (area 100000)
    "91350100M000100Y43",  # 主体标识码 with letters, Fuzhou
]


@pytest.mark.parametrize("code", REAL_CODES)
def test_real_codes_are_valid(code: str) -> None:
    info = parse_credit_code(code)
    assert info.code == code
    assert (info.department, info.category, info.area_code) == (code[0], code[1], code[2:8])


def test_lowercase_spaces_and_full_width_are_normalised() -> None:
    assert parse_credit_code(" 9144 0300 7152 6726xg ").code == "9144030071526726XG"
    assert parse_credit_code("９１３３０１００７１６１０５８５２Ｆ").code == "91330100716105852F"


@pytest.mark.parametrize(
    "first17",
    [
        "A1110000MA0000001",  # 军队事业单位
        "A9440300MA5D12345",
        "N1430102MA4L00001",  # 组级集体经济组织
        "N2430102MA4L00002",  # 村级集体经济组织
        "N3430102MA4L00003",
        "N9430102MA4L00004",
        "Y1110105MA01ABCDE",
    ],
)
def test_letter_departments_are_accepted(first17: str) -> None:
    code = make(first17)
    assert check_char(first17) == uscc.calc_check_digit(code)
    info = parse_credit_code(code)
    assert info.department == first17[0]
    assert info.category == first17[1]


def test_bad_check_character() -> None:
    code = REAL_CODES[0]
    wrong = ALPHABET[(ALPHABET.index(code[17]) + 1) % 31]
    assert error_code(code[:17] + wrong) == "credit.check_digit"


@pytest.mark.parametrize("letter", list("IOZSV"))
def test_forbidden_letters(letter: str) -> None:
    code = "91350100M000100Y4" + letter
    assert error_code(code) == "credit.chars"
    assert error_code("9135010" + letter + "M000100Y43") == "credit.chars"


def test_chars_error_gives_the_position() -> None:
    with pytest.raises(CreditCodeError) as info:
        parse_credit_code("91350100MO00100Y43")
    assert info.value.params == {"position": 10}


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("", "credit.empty"),
        ("\u3000", "credit.empty"),
        ("91350100M000100Y4", "credit.length"),
        ("91350100M000100Y431", "credit.length"),
        ("91350100M000100Y4-", "credit.chars"),
        (make("B1110000MA0000001"), "credit.department"),
        (make("0110000000MA00000"), "credit.department"),
        (make("94350100M000100Y4"), "credit.category"),  # 工商 has only 1, 2, 3
        (make("97350100M000100Y4"), "credit.category"),
        (make("5A110000MA0000001"), "credit.category"),
        (make("Y2110105MA01ABCDE"), "credit.category"),
        (make("N4430102MA4L00001"), "credit.category"),
        (make("913501A0M000100Y4"), "credit.area"),
    ],
)
def test_rule_errors(typed: str, code: str) -> None:
    assert error_code(typed) == code


def test_departments_without_a_sure_category_table_accept_any_symbol() -> None:
    # 司法行政 (3) and 宗教 (7) have sub-codes that may grow: only the check character counts.
    assert is_valid_credit_code(make("3H110000MA0000001"))
    assert is_valid_credit_code(make("7Q110000MA0000001"))


def test_names() -> None:
    assert department_name("N") == "农业"
    assert department_name("Z") is None
    assert category_name("9", "2") == "个体工商户"
    assert category_name("5", "3") == "基金会"
    assert category_name("9", "9") is None


def test_check_char_refuses_bad_input() -> None:
    with pytest.raises(CreditCodeError):
        check_char("123")
    with pytest.raises(CreditCodeError):
        check_char("91350100M0001O0Y4")


# --- properties ------------------------------------------------------------------------------

symbols = st.sampled_from(ALPHABET)


@st.composite
def valid_first17(draw: st.DrawFn) -> str:
    department = draw(st.sampled_from(sorted(DEPARTMENTS)))
    category = draw(st.sampled_from("1239") if department != "9" else st.sampled_from("123"))
    if department == "Y":
        category = "1"
    area = draw(st.text(alphabet="0123456789", min_size=6, max_size=6))
    body = draw(st.text(alphabet=ALPHABET, min_size=9, max_size=9))
    return department + category + area + body


@given(st.text(alphabet=ALPHABET, min_size=17, max_size=17))
def test_check_char_matches_the_standard_and_stdnum(first17: str) -> None:
    expected = spec_check_char(first17)
    assert check_char(first17) == expected
    assert uscc.calc_check_digit(first17 + "0") == expected


@given(valid_first17())
def test_generated_codes_parse(first17: str) -> None:
    info = parse_credit_code(first17 + check_char(first17))
    assert info.code[:17] == first17
    assert department_name(info.department) is not None


@given(valid_first17(), st.integers(min_value=0, max_value=17), st.data())
def test_any_single_substitution_is_detected(first17: str, pos: int, data: st.DataObject) -> None:
    code = first17 + check_char(first17)
    new = data.draw(st.sampled_from([c for c in ALPHABET if c != code[pos]]))
    changed = code[:pos] + new + code[pos + 1 :]
    assert not is_valid_credit_code(changed)
    if pos < 17:
        assert check_char(changed[:17]) != code[17]
