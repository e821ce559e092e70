"""normalize_key: full-width, whitespace and case never make two keys differ."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.textnorm import normalize_key


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("", ""),
        ("abc", "ABC"),
        (" a b\tc\n", "ABC"),
        ("１２３ｘ", "123X"),
        ("１１０\u3000１０５", "110105"),
        ("\u200b91350100\ufeffm000100y43\u00a0", "91350100M000100Y43"),
        ("张 三", "张三"),
        ("Ａｂｃ－１", "ABC-1"),
    ],
)
def test_examples(typed: str, key: str) -> None:
    assert normalize_key(typed) == key


@given(st.text())
def test_idempotent(s: str) -> None:
    once = normalize_key(s)
    assert normalize_key(once) == once


@given(st.text())
def test_no_whitespace_left(s: str) -> None:
    assert not any(ch.isspace() for ch in normalize_key(s))


@given(st.text(alphabet="0123456789ABCDEFXYZabcxyz", max_size=30))
def test_full_width_and_half_width_give_the_same_key(s: str) -> None:
    full = "".join(chr(ord(ch) + 0xFEE0) for ch in s)  # the full-width forms block
    assert normalize_key(full) == normalize_key(s)


@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_an_ascii_key_is_its_text_without_whitespace_upper_cased(s: str) -> None:
    """The ASCII paths (an alphanumeric text without the split and join) agree with the
    definition: whitespace dropped (\\x1c-\\x1f count for ``split``), upper-cased."""
    assert normalize_key(s) == "".join(s.split()).upper()
