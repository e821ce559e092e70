"""CSV formula neutralisation (OWASP): nothing written starts like a formula; exact round trip."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.tabular.formula import DANGEROUS_FIRST, neutralise, restore

# Strings that start with the characters that matter (quotes, formula starters) and go on with
# anything, so Hypothesis spends its examples on the prefixes, not on plain text.
_prefixes = st.text(alphabet=["'", *DANGEROUS_FIRST], max_size=4)
_cells = st.builds(lambda p, rest: p + rest, _prefixes, st.text(max_size=20))


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
        ("+8613800138000", "'+8613800138000"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("'=1", "''=1"),
        ("张三", "张三"),
        ("'plain", "'plain"),
        ("", ""),
        ("a=b", "a=b"),
    ],
)
def test_known_cells(value: str, written: str) -> None:
    assert neutralise(value) == written
    assert restore(written) == value


@given(_cells)
def test_round_trip(value: str) -> None:
    assert restore(neutralise(value)) == value


@given(_cells)
def test_nothing_written_starts_like_a_formula(value: str) -> None:
    assert not neutralise(value).startswith(DANGEROUS_FIRST)


@given(st.text(max_size=30))
def test_restore_of_a_safe_cell_changes_nothing(value: str) -> None:
    if neutralise(value) == value:
        assert restore(value) == value
