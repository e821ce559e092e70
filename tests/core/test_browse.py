"""Read-only queries behind the lists, tree and household view (app.core.store.browse)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.sortkey import sort_key
from app.core.store import Grid, Store, browse
from app.core.store.browse import Filters, Scope
from app.core.store.order import INDEXES
from tests.factories import resident

G1, G2, G3 = "330106001001", "330106001002", "330106002001"


@pytest.fixture
def filled(store: Store) -> Store:
    store.put_grid(Grid(G1, "一", "330106001", "幸福社区"))
    store.put_grid(Grid(G2, "二", "330106001", "幸福社区"))
    store.put_grid(Grid(G3, "三", "330106002", "桂花社区"))
    rows = [
        (None, {"name": f"{s}{i}", "grid": (G1, G2, G3)[i % 3]}, "draft" if i % 4 else "complete")
        for i, s in enumerate("张王李赵刘陈杨黄吴周" * 6)
    ]
    store.insert_many("resident", rows)
    for i, building in enumerate(("1栋", "2栋", "10栋", "")):
        store.save(
            "house",
            {
                "house_code": f"H{i}",
                "address_text": f"路{i}号{building}101室",
                "grid": G1,
                "building": building,
            },
        )
    return store


def test_communities_group_grids(filled: Store) -> None:
    assert [(c.code, [g for g, _ in c.grids]) for c in browse.communities(filled)] == [
        ("330106001", [G1, G2]),
        ("330106002", [G3]),
    ]


def test_several_grids_are_merged_in_list_order(filled: Store) -> None:
    merged = browse.page(filled, "resident", Scope(grids=(G1, G2)), limit=1000)
    assert [s.title for s in merged] == sorted((s.title for s in merged), key=sort_key)
    assert merged[0].title.startswith("陈")  # chen: pinyin order, not code point order
    assert {s.grid for s in merged} == {G1, G2}
    assert len(merged) == browse.count(filled, "resident", Scope(grids=(G1, G2))) == 40
    first = browse.page(filled, "resident", Scope(grids=(G1, G2)), limit=7)
    after = browse.page(
        filled,
        "resident",
        Scope(grids=(G1, G2)),
        after=(first[-1].sort_key, first[-1].id),
        limit=1000,
    )
    assert [s.id for s in first + after] == [s.id for s in merged]


def test_count_forms_agrees_with_count_with_or_without_the_list_index(filled: Store) -> None:
    filled.conn.execute("UPDATE records SET deleted = 1 WHERE rid % 7 = 0")  # some tombstones
    forms = ("resident", "house", "unit")
    for filters in (Filters(), Filters(status="draft")):
        expected = {f: browse.count(filled, f, Scope(), filters) for f in forms}
        assert browse.count_forms(filled, forms, Scope(), filters) == expected
        filled.conn.execute("DROP INDEX records_live_sort")
        assert browse.count_forms(filled, forms, Scope(), filters) == expected
        filled.conn.execute(INDEXES["records_live_sort"])


def test_rare_filters_give_the_same_rows_with_the_table_scan(filled: Store) -> None:
    ids = [s.id for s in browse.page(filled, "resident", limit=5)]
    filled.conn.execute("UPDATE records SET conflict = '[]' WHERE id IN (?, ?)", ids[:2])
    filled.decide_duplicate(ids[3], ids[4], "same")
    assert [s.id for s in browse.page(filled, "resident", filters=Filters(conflict=True))] == ids[
        :2
    ]
    assert [s.id for s in browse.page(filled, "resident", filters=Filters(dup=True))] == [ids[3]]
    assert browse.conflict_count(filled) == 2


def test_buildings_and_houses_of_a_grid(filled: Store) -> None:
    assert [(b.name, b.houses) for b in browse.buildings(filled, G1)] == [
        ("1栋", 1),
        ("2栋", 1),
        ("10栋", 1),
        ("", 1),
    ]
    houses = browse.houses(filled, G1, "10栋")
    assert [h.title for h in houses] == ["路2号10栋101室"]
    assert browse.houses(filled, G1, "") and not browse.houses(filled, G2, "1栋")


def test_a_query_over_its_budget_stops(filled: Store) -> None:
    with pytest.raises(browse.TooSlow), browse.time_budget(filled, 0.0):
        filled.conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
            "WHERE i < 10000000) SELECT count(*) FROM n"
        ).fetchone()
    with browse.time_budget(filled, 5.0):  # the handler is gone afterwards; quick queries pass
        assert browse.page(filled, "resident", limit=3)
    assert filled.conn.execute("SELECT count(*) FROM records").fetchone()[0] > 0


def test_search_is_scoped_and_filtered(filled: Store) -> None:
    found = browse.search(filled, "zhang", "resident", Scope(grids=(G1,)))
    assert found and all(s.grid == G1 and s.title.startswith("张") for s in found)
    drafts = browse.search(filled, "zhang", "resident", filters=Filters(status="complete"))
    assert drafts and all(s.status == "complete" for s in drafts)


def test_household_lists_current_members_and_units(store: Store) -> None:
    house = store.save("house", {"house_code": "H1", "address_text": "路1号", "grid": G1}).id
    head = store.save(
        "resident", resident(seq=1, name="甲", house_ref=house, household_relation="02")
    ).id
    gone = store.save(
        "resident", resident(seq=3, name="乙", house_ref=house, moved_out_on="2024-01-01")
    ).id
    unit = store.save("unit", {"name": "小店", "grid": G1, "house_ref": house}).id
    hh = browse.household(store, house)
    assert [m.id for m in hh.members] == [head] and [m.id for m in hh.heads] == [head]
    assert [u.id for u in hh.units] == [unit]
    everyone = browse.household(store, house, include_moved_out=True)
    assert {m.id for m in everyone.members} == {head, gone}
    with pytest.raises(KeyError):
        browse.household(store, "no-such-house")


@given(
    st.lists(st.integers(min_value=0, max_value=10**6), unique=True, max_size=12),
    st.sampled_from(["", "幸福苑"]),
)
def test_natural_key_orders_embedded_numbers_by_value(numbers: list[int], prefix: str) -> None:
    names = [f"{prefix}{n}栋2单元{n % 7}01室" for n in numbers]
    expected = [f"{prefix}{n}栋2单元{n % 7}01室" for n in sorted(numbers)]
    assert sorted(reversed(names), key=browse.natural_key) == expected


def test_the_dirty_filter_gives_the_same_rows_by_either_route(
    filled: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    everyone = browse.page(filled, "resident", limit=1000)
    waiting = {s.id for s in everyone[::9]}
    filled.conn.execute("UPDATE records SET dirty = 0")  # as after a sync
    filled.conn.executemany("UPDATE records SET dirty = 1 WHERE id = ?", [(i,) for i in waiting])
    expected = [s.id for s in everyone if s.id in waiting]
    assert browse.lists._table_hint(filled, Filters(dirty=True)) == "INDEXED BY records_dirty"
    assert [s.id for s in browse.page(filled, "resident", filters=Filters(dirty=True))] == expected
    assert browse.count_forms(filled, ("resident",), filters=Filters(dirty=True)) == {
        "resident": len(expected)
    }
    monkeypatch.setattr(browse.lists, "FEW_DIRTY", 0)  # many waiting: walk the title index instead
    assert browse.lists._table_hint(filled, Filters(dirty=True)) == ""
    assert [s.id for s in browse.page(filled, "resident", filters=Filters(dirty=True))] == expected
    assert browse.count(filled, "resident", filters=Filters(dirty=True)) == len(expected)
