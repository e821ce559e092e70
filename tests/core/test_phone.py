"""Phone numbers (phonenumbers, region CN) and postcodes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.messages import codes
from app.core.phone import (
    PhoneError,
    PostcodeError,
    is_valid_phone,
    parse_phone,
    parse_postcode,
)

VALID = [
    ("13812345678", "13812345678"),
    ("138 1234 5678", "13812345678"),
    ("138-1234-5678", "13812345678"),
    ("+86 138 1234 5678", "13812345678"),
    ("+8613812345678", "13812345678"),
    ("0086 13812345678", "13812345678"),
    ("１３８１２３４５６７８", "13812345678"),
    ("19912345678", "19912345678"),
    ("0731-84567890", "0731-84567890"),
    ("0731 8456 7890", "0731-84567890"),
    ("(0731)84567890", "0731-84567890"),
    ("（０７３１）８４５６７８９０", "0731-84567890"),
    ("073184567890", "0731-84567890"),
    ("010-12345678", "010-12345678"),
    ("01012345678", "010-12345678"),
    ("+86 10 1234 5678", "010-12345678"),
    ("0755-88888888", "0755-88888888"),
    ("0731-84567890转8001", "0731-84567890转8001"),
    ("0731-84567890 转 8001", "0731-84567890转8001"),
    ("0731-84567890分机8001", "0731-84567890转8001"),
    ("0731-84567890 ext. 8001", "0731-84567890转8001"),
    ("0731-84567890 x8001", "0731-84567890转8001"),
    ("0731-84567890#8001", "0731-84567890转8001"),
    ("4001234567", "400-123-4567"),
    ("400-123-4567", "400-123-4567"),
    ("800-810-1234", "800-810-1234"),
    ("+852 9123 4567", "+85291234567"),
]


@pytest.mark.parametrize(("typed", "stored"), VALID)
def test_valid_numbers_are_normalised(typed: str, stored: str) -> None:
    assert parse_phone(typed) == stored


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "   ",
        "abc",
        "1381234567",  # 10 digits
        "138123456789",  # 12 digits
        "12345678",  # landline without area code
        "0755-1234567",  # Shenzhen numbers have 8 digits
        "0731-84567890-8001",  # ambiguous: extension or typo?
        "138 1234 ABCD",  # letters are not read as vanity digits
        "13812345678转8001",  # mobiles take no extension
        "0731-84567890转",  # empty extension
        "10086",  # short service number
        "+852 9123 4567 ext 1",
    ],
)
def test_invalid_numbers(typed: str) -> None:
    with pytest.raises(PhoneError) as info:
        parse_phone(typed)
    assert info.value.code == "phone.invalid"
    assert info.value.code in codes()
    assert typed.strip() == "" or typed not in str(info.value)


def test_is_valid_phone() -> None:
    assert is_valid_phone("0731-84567890")
    assert not is_valid_phone("0731-8456789")


mobile_prefixes = st.sampled_from(["130", "135", "139", "150", "158", "186", "189"])
subscribers = st.text(alphabet="0123456789", min_size=8, max_size=8)
separators = st.sampled_from(["", " ", "-", "\u3000"])
country = st.sampled_from(["", "+86", "+86 ", "0086", "86 "])


@given(mobile_prefixes, subscribers, separators, country)
def test_any_formatting_of_a_mobile_gives_its_11_digits(
    prefix: str, sub: str, sep: str, cc: str
) -> None:
    typed = cc + sep.join([prefix, sub[:4], sub[4:]])
    assert parse_phone(typed) == prefix + sub


@pytest.mark.parametrize("stored", sorted({stored for _, stored in VALID}))
def test_stored_form_parses_to_itself(stored: str) -> None:
    assert parse_phone(stored) == stored


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("010000", "010000"),
        ("410000", "410000"),
        (" 410 000 ", "410000"),
        ("４１０００５", "410005"),
    ],
)
def test_postcodes(typed: str, stored: str) -> None:
    assert parse_postcode(typed) == stored


@pytest.mark.parametrize("typed", ["", "41000", "4100000", "41000A", "41 00 0", "-41000"])
def test_bad_postcodes(typed: str) -> None:
    with pytest.raises(PostcodeError) as info:
        parse_postcode(typed)
    assert info.value.code == "postcode.invalid"


@given(st.text(alphabet="0123456789", min_size=6, max_size=6))
def test_every_six_digit_string_is_a_postcode(code: str) -> None:
    assert parse_postcode(code) == code
