"""GB 11643 citizen ID numbers: known cases and Hypothesis properties."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.idnumber import (
    IdInfo,
    IdNumberError,
    check_char,
    is_valid_id_number,
    known_area_codes,
    parse_id_number,
    upgrade_15,
)
from app.core.messages import codes

TODAY = datetime.date(2024, 6, 1)
WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
AREAS = sorted(known_area_codes())


def spec_check_char(first17: str) -> str:
    """The check character exactly as the standard states it (independent of the code)."""
    total = sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True))
    return "10X98765432"[total % 11]


def make(area: str, born: str, seq: str) -> str:
    first17 = area + born + seq
    return first17 + spec_check_char(first17)


def error_code(s: str, today: datetime.date = TODAY) -> str:
    with pytest.raises(IdNumberError) as info:
        parse_id_number(s, today)
    assert info.value.code in codes()
    return info.value.code


# --- known cases -----------------------------------------------------------------------------


def test_standard_example_is_valid() -> None:
    info = parse_id_number("11010519491231002X", TODAY)
    assert info.number == "11010519491231002X"
    assert info.area_code == "110105"
    assert info.birth_date == datetime.date(1949, 12, 31)
    assert info.gender == "2"  # sequence 002 is even
    assert info.upgraded is False


@pytest.mark.parametrize(
    "typed",
    [
        "11010519491231002x",
        " 110105 19491231 002X ",
        "１１０１０５１９４９１２３１００２Ｘ",
        "110105\u300019491231\u3000002ｘ",
    ],
)
def test_lowercase_spaces_and_full_width_are_normalised(typed: str) -> None:
    assert parse_id_number(typed, TODAY).number == "11010519491231002X"


def test_male_sequence_gives_gender_1() -> None:
    assert parse_id_number(make("430102", "19800101", "011"), TODAY).gender == "1"


def test_legacy_15_digit_number_is_upgraded() -> None:
    assert upgrade_15("110105491231002") == "11010519491231002X"
    info = parse_id_number("110105491231002", TODAY)
    assert info.number == "11010519491231002X"
    assert info.upgraded is True
    assert info.birth_date == datetime.date(1949, 12, 31)


def test_legacy_15_digit_number_with_bad_date_is_refused() -> None:
    assert error_code("110105490230002") == "id.birth_date"


def test_bad_check_digit() -> None:
    assert error_code("110105194912310021") == "id.check_digit"


def test_30_february_is_not_a_date() -> None:
    assert error_code(make("110105", "20000230", "001")) == "id.birth_date"


def test_future_birth_date() -> None:
    number = make("110105", "20240602", "001")
    assert error_code(number, TODAY) == "id.future"
    assert parse_id_number(number, datetime.date(2024, 6, 2)).birth_date == datetime.date(
        2024, 6, 2
    )


def test_future_birth_date_against_the_real_today() -> None:
    with pytest.raises(IdNumberError) as info:
        parse_id_number(make("110105", "20990101", "001"))
    assert info.value.code == "id.future"


def test_born_before_1900() -> None:
    assert error_code(make("110105", "18991231", "001")) == "id.too_old"


@pytest.mark.parametrize("area", ["999999", "000000", "110199"])
def test_unknown_area(area: str) -> None:
    assert error_code(make(area, "19900101", "001")) == "id.area"


@pytest.mark.parametrize(
    "area",
    [
        "110105",  # 朝阳区, current
        "110103",  # 崇文区, merged into 东城区 in 2010
        "110223",  # 通县, became 通州区 in 1997
        "310103",  # 卢湾区, merged into 黄浦区 in 2011
        "440301",  # 深圳市市辖区, a prefecture-level code seen on real cards
        "810000",  # 香港 (港澳居民居住证)
        "830000",  # 台湾居民居住证
    ],
)
def test_current_and_historical_areas_are_known(area: str) -> None:
    assert area in known_area_codes()
    assert parse_id_number(make(area, "19700101", "001"), TODAY).area_code == area


def test_old_code_accepted_even_for_birth_years_after_it_was_abolished() -> None:
    # stdnum's validate would refuse this (崇文区 ended in 2010); people keep issued numbers.
    assert is_valid_id_number(make("110103", "20120101", "002"), TODAY)


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("", "id.empty"),
        ("   ", "id.empty"),
        ("1101051949123100", "id.length"),
        ("11010519491231002X1", "id.length"),
        ("11010519491231X02X", "id.chars"),
        ("X10105194912310021", "id.chars"),
        ("11010549123100X", "id.chars"),
        ("11010519491231002Y", "id.chars"),
        ("١١٠١٠٥١٩٤٩١٢٣١٠٠٢X", "id.chars"),  # Arabic-Indic digits are not accepted
        ("3.30106E+17", "id.spreadsheet_number"),  # as Excel shows it (and saves it as CSV)
        ("3.30106198506151e+17", "id.spreadsheet_number"),  # as openpyxl reads the .xlsx
        ("3.30106E17", "id.spreadsheet_number"),
    ],
)
def test_form_errors(typed: str, code: str) -> None:
    assert error_code(typed) == code


def test_chars_error_gives_the_position() -> None:
    with pytest.raises(IdNumberError) as info:
        parse_id_number("1101051949123A002X", TODAY)
    assert info.value.params == {"position": 14}


def test_length_error_gives_the_length() -> None:
    with pytest.raises(IdNumberError) as info:
        parse_id_number("1234567", TODAY)
    assert info.value.params == {"length": 7}


@pytest.mark.parametrize(
    "typed",
    ["110105194912310021", make("110105", "20000230", "001"), make("999999", "19900101", "001")],
)
def test_errors_never_carry_the_number(typed: str) -> None:
    with pytest.raises(IdNumberError) as info:
        parse_id_number(typed, TODAY)
    err = info.value
    for text in (str(err), repr(err), str(err.params)):
        assert typed not in text
        assert typed[6:14] not in text  # not even the birth date part


def test_info_repr_hides_number_and_birth_date() -> None:
    info = parse_id_number("11010519491231002X", TODAY)
    assert "11010519491231002X" not in repr(info)
    assert "1949" not in repr(info)
    assert isinstance(info, IdInfo)


def test_check_char_refuses_bad_input() -> None:
    with pytest.raises(IdNumberError):
        check_char("1234")
    with pytest.raises(IdNumberError):
        check_char("1101051949123100X")


def test_is_valid_id_number() -> None:
    assert is_valid_id_number("11010519491231002X")
    assert not is_valid_id_number("110105194912310021")
    assert not is_valid_id_number("")


# --- properties ------------------------------------------------------------------------------

digits17 = st.text(alphabet="0123456789", min_size=17, max_size=17)
birth_dates = st.dates(min_value=datetime.date(1900, 1, 1), max_value=TODAY)
sequences = st.integers(min_value=0, max_value=999).map(lambda n: f"{n:03d}")


@st.composite
def valid_numbers(draw: st.DrawFn) -> str:
    area = draw(st.sampled_from(AREAS))
    born = draw(birth_dates).strftime("%Y%m%d")
    return make(area, born, draw(sequences))


@given(digits17)
def test_check_char_matches_the_standard_formula(first17: str) -> None:
    assert check_char(first17) == spec_check_char(first17)


@given(st.sampled_from(AREAS), birth_dates, sequences)
def test_valid_prefix_plus_check_char_parses(area: str, born: datetime.date, seq: str) -> None:
    first17 = area + born.strftime("%Y%m%d") + seq
    info = parse_id_number(first17 + check_char(first17), TODAY)
    assert info.area_code == area
    assert info.birth_date == born
    assert info.gender == ("1" if int(seq) % 2 else "2")
    assert not info.upgraded


@given(valid_numbers(), st.integers(min_value=0, max_value=17), st.data())
def test_any_single_substitution_is_detected(number: str, pos: int, data: st.DataObject) -> None:
    choices = "0123456789X" if pos == 17 else "0123456789"
    new = data.draw(st.sampled_from([c for c in choices if c != number[pos]]))
    changed = number[:pos] + new + number[pos + 1 :]
    assert not is_valid_id_number(changed, TODAY)
    if pos < 17:
        assert check_char(changed[:17]) != number[17]


@given(valid_numbers(), st.integers(min_value=0, max_value=15))
def test_any_adjacent_transposition_is_detected(number: str, pos: int) -> None:
    if number[pos] == number[pos + 1]:
        return
    swapped = number[:pos] + number[pos + 1] + number[pos] + number[pos + 2 :]
    assert check_char(swapped[:17]) != number[17]


@given(
    st.sampled_from(AREAS),
    st.dates(min_value=datetime.date(1900, 1, 1), max_value=datetime.date(1999, 12, 31)),
    sequences,
)
def test_upgraded_15_digit_numbers_parse_to_the_same_person(
    area: str, born: datetime.date, seq: str
) -> None:
    legacy = area + born.strftime("%y%m%d") + seq
    info = parse_id_number(legacy, TODAY)
    assert info.upgraded
    assert info.number == upgrade_15(legacy)
    assert info.birth_date == born
    assert parse_id_number(info.number, TODAY).upgraded is False
