"""The list order (issue 16 item 4): names by pinyin, addresses by room order, stored as
``records.sort_key`` and walked by the list indexes."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from pypinyin import Style, lazy_pinyin

from app.core.forms import FormSet
from app.core.sortkey import sort_key
from app.core.store import Grid, Store, browse
from app.core.store.browse import Scope
from app.core.store.schema import MIGRATIONS, SCHEMA_VERSION, SORT_KEY
from tests.factories import resident, undo_record_keys_step, undo_sort_key_step

GRID, GRID2 = "330106001001", "330106001002"
STREET = "浙江省杭州市西湖区清溪街道云溪社区秋实路18号听涛雅苑"


def _ordered(titles: list[str]) -> list[str]:
    return sorted(titles, key=sort_key)


def test_names_sort_by_pinyin_not_code_point() -> None:
    names = ["张三", "李四", "王五", "赵六", "阿明", "李", "林", "吕布", "卢"]
    assert _ordered(names) == ["阿明", "李", "李四", "林", "卢", "吕布", "王五", "张三", "赵六"]
    assert sorted(names) != _ordered(names)  # code point order puts 张 before 李


def test_addresses_sort_by_room_order() -> None:
    rooms = ["1栋1单元1001", "1栋1单元201", "10栋1单元101", "2栋1单元101", "1栋2单元101"]
    assert _ordered([STREET + r for r in rooms]) == [
        STREET + r
        for r in ("1栋1单元201", "1栋1单元1001", "1栋2单元101", "2栋1单元101", "10栋1单元101")
    ]


def test_mixed_and_empty_titles() -> None:
    assert sort_key("") == "" and sort_key("   ") == ""
    assert _ordered(["B座", "a座", "3号", "", "03号", "Smith", "史密斯"]) == [
        "", "03号", "3号", "a座", "B座", "史密斯", "Smith"
    ]  # fmt: skip
    assert sort_key("Ｓｍｉｔｈ") == sort_key("Smith")  # full-width letters as typed on a phone


numbers = st.integers(min_value=0, max_value=10**12)


@given(st.lists(st.tuples(numbers, numbers, numbers), min_size=2, max_size=12))
def test_numbers_in_an_address_compare_by_value(rooms: list[tuple[int, int, int]]) -> None:
    titles = {f"{STREET}{b}栋{u}单元{r}室": (b, u, r) for b, u, r in rooms}
    by_key = sorted(titles, key=sort_key)
    assert [titles[t] for t in by_key] == sorted(titles.values())


HAN = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5)


@given(st.lists(st.text(HAN, min_size=1, max_size=4), min_size=2, max_size=10, unique=True))
def test_chinese_names_compare_syllable_by_syllable(names: list[str]) -> None:
    def syllables(name: str) -> list[str]:
        return [
            s or c for s, c in zip(lazy_pinyin(list(name), style=Style.NORMAL), name, strict=True)
        ]

    by_key = sorted(names, key=sort_key)
    assert [syllables(n) for n in by_key] == sorted(syllables(n) for n in names)


def _house(store: Store, address: str, grid: str = GRID) -> str:
    data = {"house_code": f"H{address[-12:]}", "address_text": address, "grid": grid}
    return store.save("house", {**data, "owner_name": "业主"}).id


def test_pages_follow_the_key_across_pages_grids_and_renames(store: Store) -> None:
    store.put_grid(Grid(GRID, "一", "330106001", "云溪社区"))
    store.put_grid(Grid(GRID2, "二", "330106001", "云溪社区"))
    names = ["张三", "李四", "王五", "赵六", "阿明", "钱七", "孙八", "周九"]
    for i, name in enumerate(names):
        store.save("resident", resident(name=name, seq=i + 1, grid=(GRID, GRID2)[i % 2]))
    for scope in (Scope(), Scope(grids=(GRID, GRID2))):
        shown: list[str] = []
        while got := browse.page(
            store, "resident", scope, after=(shown[-1][1], shown[-1][2]) if shown else None, limit=3
        ):
            shown.extend((s.title, s.sort_key, s.id) for s in got)
        assert [t for t, _k, _i in shown] == _ordered(names)
    rec = store.search("阿明", form="resident")[0]
    store.save("resident", {**store.get(rec.id).data, "name": "祝明"}, record_id=rec.id)
    assert browse.page(store, "resident", limit=10)[-1].title == "祝明"  # the key follows


def test_an_older_store_is_keyed_and_reindexed_on_first_open(
    tmp_path: Path, formset: FormSet
) -> None:
    path = tmp_path / "old.sqlite"
    old = Store(path, formset)
    ids = {room: _house(old, f"{STREET}1栋1单元{room}室") for room in ("1001", "201", "1201")}
    old.save("resident", resident(name="张三", seq=1))
    old.save("resident", resident(name="李四", seq=3))
    undo_sort_key_step(old.conn)
    undo_record_keys_step(old.conn)
    step = MIGRATIONS.index(SORT_KEY)
    old.conn.execute(f"PRAGMA user_version = {step}")  # later steps run again: idempotent
    old.close()
    store = Store(path, formset)
    assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert [s.id for s in browse.page(store, "house")] == [ids["201"], ids["1001"], ids["1201"]]
    assert [s.title for s in browse.page(store, "resident")] == ["李四", "张三"]
    indexes = {
        r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
    }
    assert {"records_live_sort", "records_grid_sort"} <= indexes
    assert not {"records_live_title", "records_form_grid"} & indexes
    plan = store.conn.execute(
        "EXPLAIN QUERY PLAN SELECT id FROM records r WHERE r.deleted = 0 AND r.form = 'house' "
        "ORDER BY r.sort_key, r.id LIMIT 5"
    ).fetchall()
    assert "records_live_sort" in str(plan) and "TEMP B-TREE FOR ORDER BY" not in str(plan)
    store.close()


def test_people_sort_by_their_surname_reading() -> None:
    names = ["曾小明", "陈大", "张三", "单田芳", "丁一", "解放", "尉迟恭", "王五"]
    by_name = sorted(names, key=lambda t: sort_key(t, surname=True))
    # 曾 zeng (not ceng), 单 shan (not dan), 解 xie (not jie), 尉迟 yu chi (not wei chi)
    assert by_name == ["陈大", "丁一", "单田芳", "王五", "解放", "尉迟恭", "曾小明", "张三"]
    # a title that is not a person's name keeps the characters' usual readings
    assert sort_key("单元楼") == sort_key("单元楼", surname=False)
    assert sort_key("单元楼").startswith("dan yuan lou")


def test_a_store_lists_residents_by_surname_reading(store: Store) -> None:
    store.put_grid(Grid(GRID, "一", "330106001", "云溪社区"))
    for seq, name in enumerate(["张三", "曾小明", "陈大"], 1):
        store.save("resident", resident(name=name, seq=seq))
    assert [s.title for s in browse.page(store, "resident")] == ["陈大", "曾小明", "张三"]


def test_an_older_store_rekeys_surnames_on_open(tmp_path: Path, formset: FormSet) -> None:
    from app.core.store.schema import SURNAME_ORDER

    path = tmp_path / "old.sqlite"
    old = Store(path, formset)
    old.put_grid(Grid(GRID, "一", "330106001", "云溪社区"))
    for seq, name in enumerate(["张三", "曾小明", "陈大", "曾"], 1):
        old.save("resident", resident(name=name, seq=seq))
    house = _house(old, f"{STREET}曾家巷1号")
    # as an older GridCollect keyed them: every character by its usual reading
    for rid, title in old.conn.execute("SELECT id, title FROM records").fetchall():
        old.conn.execute("UPDATE records SET sort_key = ? WHERE id = ?", (sort_key(title), rid))
    undo_record_keys_step(old.conn)
    old.conn.execute(f"PRAGMA user_version = {MIGRATIONS.index(SURNAME_ORDER)}")
    old.close()
    store = Store(path, formset)
    assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert [s.title for s in browse.page(store, "resident")] == ["陈大", "曾", "曾小明", "张三"]
    (kept,) = store.conn.execute("SELECT sort_key FROM records WHERE id = ?", (house,)).fetchone()
    assert kept == sort_key(f"{STREET}曾家巷1号")  # a house's address: not a person's name
    assert store.conn.execute(
        "SELECT count(*) FROM meta WHERE key = 'sort_key_surnames_pending'"
    ).fetchone() == (0,)
    store.close()
