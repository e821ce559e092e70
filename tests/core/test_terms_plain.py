"""The per-record text work of a pull (``name_terms``, ``sort_key``, ``record_terms``) was made
cheaper for issue 17 (the device's CPU limits a 10 k pull): the gap pattern compiled once, the
rest's spelling and initials joined once, the sort key's tokens in one comprehension. Against
the code of 37610e2 (``plain_name_terms`` and ``plain_sort_key`` below, the plain path), they
give the same terms and keys for any name or title."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.search import (
    _is_cjk,
    _readings,
    address_terms,
    char_pinyin,
    name_terms,
    record_terms,
    tail_terms,
)
from app.core.sortkey import SEPARATOR, _token, sort_key
from app.core.surnames import surname_readings


def plain_name_terms(name: str) -> tuple[str, ...]:
    """``name_terms`` as 37610e2 wrote it (uncached)."""
    name = unicodedata.normalize("NFKC", name).strip()
    if not name:
        return ()
    compact = re.sub(r"[\s·•.]", "", name)
    terms: list[str] = [compact.lower()]
    if compact.isascii():
        return tuple(dict.fromkeys([compact.lower(), *name.lower().split()]))
    if len(compact) > 1 and _is_cjk(compact[0]):
        terms.append(compact[1:])
    syllables = [r for r in (char_pinyin(c) for c in compact) if r]
    if syllables:
        surnames = _readings(compact[0]) if _is_cjk(compact[0]) else [syllables[0]]
        rest = syllables[1:]
        for first in surnames:
            terms.append(first + "".join(rest))
            terms.append(first[0] + "".join(s[0] for s in rest if s))
        terms.extend(s for s in rest if s)
    return tuple(dict.fromkeys(t for t in terms if t))


_TOKEN = re.compile(r"[0-9]+|[a-z]+|[\u3400-\u9fff\uf900-\ufaff]")


def plain_sort_key(title: str, surname: bool = False) -> str:
    """``sort_key`` as 37610e2 wrote it (uncached)."""
    text = unicodedata.normalize("NFKC", title).strip()
    if not text:
        return ""
    lead = surname_readings(text) if surname else None
    rest = text[lead[0] :] if lead else text
    tokens = [*(lead[1] if lead else ()), *(_token(t) for t in _TOKEN.findall(rest.lower()))]
    return f"{' '.join(tokens)}{SEPARATOR}{text}"


def plain_record_terms(
    names: Iterable[str], ids: Iterable[str], phones: Iterable[str], addresses: Iterable[str]
) -> str:
    """``record_terms`` over ``plain_name_terms``."""
    terms: list[str] = []
    for name in names:
        terms.extend(plain_name_terms(name))
    for value in (*ids, *phones):
        terms.extend(tail_terms(value))
    for address in addresses:
        terms.extend(address_terms(address))
    return " ".join(dict.fromkeys(terms))


# surnames with several readings (单 曾 解 区), compound surnames (欧阳 司马), common and rare
# characters, the gaps names are typed with (spaces, middle dots, full stops, ideographic
# spaces), full-width and plain Latin letters and digits
CHARS = "张三李四单雄信曾解区欧阳司马修文娜涛䶮龘 ·•.\u3000ＡＢａｂ１２ABab12-"
NAMES = st.text(alphabet=CHARS, max_size=8)


@settings(max_examples=400, deadline=None)
@given(name=NAMES)
def test_name_terms_are_those_of_the_plain_path(name: str) -> None:
    assert name_terms.__wrapped__(name) == plain_name_terms(name)
    assert name_terms(name) == plain_name_terms(name)


@settings(max_examples=400, deadline=None)
@given(title=NAMES, surname=st.booleans())
def test_sort_keys_are_those_of_the_plain_path(title: str, surname: bool) -> None:
    assert sort_key.__wrapped__(title, surname) == plain_sort_key(title, surname)
    assert sort_key(title, surname=surname) == plain_sort_key(title, surname)


@settings(max_examples=200, deadline=None)
@given(
    names=st.lists(NAMES, max_size=3),
    ids=st.lists(st.text(alphabet="0123456789Xx ", max_size=18), max_size=2),
    addresses=st.lists(st.text(alphabet="幸福路12号3栋单元 ", max_size=12), max_size=2),
)
def test_term_bags_are_those_of_the_plain_path(
    names: list[str], ids: list[str], addresses: list[str]
) -> None:
    assert record_terms(names, ids, ids[:1], addresses) == plain_record_terms(
        names, ids, ids[:1], addresses
    )
