"""The duplicate guard: exact natural keys and fuzzy "possibly the same person"."""

from __future__ import annotations

import datetime as dt

from app.core import dedup
from app.core.store import Store
from tests.factories import resident


def test_exact_match_by_id_number_in_any_typing(store: Store) -> None:
    rec = store.save("resident", resident())
    typed = {"id_type": "111", "id_number": resident()["id_number"].lower()}
    [hit] = dedup.check(store, "resident", typed)
    assert hit.exact and hit.record_id == rec.id and hit.title == "张三"
    assert dedup.check(store, "resident", typed, exclude_id=rec.id) == []


def test_same_pinyin_and_birth_date_is_suspected(store: Store) -> None:
    rec = store.save("resident", resident(name="张三"))
    [hit] = dedup.check(store, "resident", {"name": "章三", "birth_date": "1985-06-15"})
    assert hit.record_id == rec.id and hit.reason == "same_pinyin_birth" and not hit.exact
    assert dedup.check(store, "resident", {"name": "章三", "birth_date": "1985-06-16"}) == []


def test_same_name_and_birth_ranks_above_similar(store: Store) -> None:
    same = store.save("resident", resident(seq=1, name="王小明"))
    similar = store.save("resident", resident(seq=3, name="王晓明"))
    hits = dedup.check(store, "resident", {"name": "王小明", "birth_date": "1985-06-15"})
    assert [h.record_id for h in hits][:1] == [same.id]
    assert similar.id in [h.record_id for h in hits]


def test_similar_name_in_same_house(store: Store) -> None:
    house = store.save("house", {"house_code": "H1"})
    rec = store.save("resident", resident(name="欧阳小华", house_ref=house.id))
    hits = dedup.check(
        store,
        "resident",
        {"name": "欧阳晓华", "house_ref": house.id, "birth_date": dt.date(1990, 1, 1).isoformat()},
    )
    assert [(h.record_id, h.reason) for h in hits] == [(rec.id, "similar_name_house")]
    assert hits[0].reason_text("zh") and hits[0].reason_text("en")


def test_decisions_are_recorded(store: Store) -> None:
    a = store.save("resident", resident(seq=1))
    b = store.save("resident", resident(seq=3, name="章三"))
    store.decide_duplicate(b.id, a.id, "different", author="w1")
    assert store.decisions(b.id)[0][:3] == (a.id, "different", "w1")


def test_duplicate_decisions_are_stored_as_the_words_the_table_allows(store: Store) -> None:
    """Typed vocabulary (issue 11): every ``DuplicateDecision`` is a value the table's CHECK
    accepts, stored and read back as the plain word."""
    from app.core.dedup import DuplicateDecision

    a = store.save("resident", resident(seq=1), author="li").id
    b = store.save("resident", resident(seq=2), author="li").id
    for decision in DuplicateDecision:
        store.decide_duplicate(a, b, decision, "li")
    stored = [d[1] for d in store.decisions(a)]
    assert stored == ["same", "different", "open_existing"]
    assert all(type(d) is str for d in stored)
