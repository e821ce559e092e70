"""Search-as-you-type: names, pinyin (full and initials), ID-number tail, phone, address."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from app.core.search import fts_query, name_terms
from app.core.store import Store
from tests.factories import resident


def _titles(store: Store, text: str) -> list[str]:
    return sorted(s.title for s in store.search(text))


def test_search_by_name_pinyin_initials_tails_and_address(store: Store) -> None:
    store.save("resident", resident(seq=1, name="张三", phone="13800138000"))
    store.save(
        "resident",
        resident(seq=3, name="李四", phone="13912345678", residence_address="桂花路8号5栋101室"),
    )
    assert _titles(store, "zs") == ["张三"]
    assert _titles(store, "zhangs") == ["张三"]
    assert _titles(store, "张") == ["张三"]
    assert _titles(store, "四") == ["李四"]  # given name alone
    assert _titles(store, resident(seq=3)["id_number"][-4:]) == ["李四"]  # ID tail
    assert _titles(store, "5678") == ["李四"]  # phone tail
    assert _titles(store, "139") == ["李四"]  # phone prefix
    assert _titles(store, "桂花路 5栋") == ["李四"]
    assert _titles(store, "zs 李") == []  # every piece must match


def test_surname_readings(store: Store) -> None:
    store.save("resident", resident(name="单田芳"))
    assert _titles(store, "stf") == ["单田芳"] and _titles(store, "shantianfang") == ["单田芳"]


def test_search_ignores_deleted_and_filters_by_form(store: Store) -> None:
    rec = store.save("resident", resident(name="王五"))
    assert _titles(store, "ww") == ["王五"]
    assert store.search("ww", form="house") == []
    store.delete(rec.id)
    assert _titles(store, "ww") == []


@given(st.text(max_size=30))
def test_any_typed_text_makes_a_safe_query(text: str) -> None:
    query = fts_query(text)
    assert query is None or query.count('"') % 2 == 0


@given(st.text(alphabet="张王李赵刘陈杨黄三四五六七八九十", min_size=2, max_size=4))
def test_initials_are_a_term(name: str) -> None:
    terms = name_terms(name)
    assert any(len(t) == len(name) and t.isascii() for t in terms)
