"""The address index's pieces without a screen: words, initials, queries, the distinguishing
end of an address, and the index itself on plain sqlite3 and on sqlcipher3 (the store may be
encrypted: both bundle FTS5's trigram tokenizer)."""

from __future__ import annotations

import sqlite3

import pytest

from app.core import search
from app.core.listing import address_end
from app.core.store import Store, browse, places
from app.core.store.schema import migrate

ADDRESS = "浙江省杭州市西湖区清溪街道云溪社区文澜街18号听涛雅苑1栋1单元201室"


def test_address_words_cut_after_region_street_number_building_unit_room() -> None:
    assert search.address_words(ADDRESS) == (
        "浙江省", "杭州市", "西湖区", "清溪街道", "云溪社区", "文澜街", "18", "号",
        "听涛雅苑", "1", "栋", "1", "单元", "201", "室",
    )  # fmt: skip


def test_initials_keep_digits_and_readings_allow_a_started_syllable() -> None:
    assert search.address_initials("听涛雅苑1栋") == "ttyy1d"
    assert search.initials_readings("ttya") == ["ttya", "tty"]  # t t ya(苑)


def test_queries_choose_the_column_by_what_was_typed() -> None:
    query = search.address_query("听涛雅苑 201")
    assert query == search.AddressQuery(
        "address", 'address : ("听涛雅" AND "涛雅苑" AND "201")', ("听涛雅苑",), ("听涛雅苑", "201")
    )
    assert search.address_query("TTYA") == search.AddressQuery(
        "initials", 'initials : (("ttya" OR "tty"))'
    )
    assert search.covering_trigrams("晓岚新村10栋2") == ["晓岚新", "村10", "0栋2"]
    assert search.address_query("听涛") is None
    assert search.short_address_run("听涛") == 'starts : "听涛§"'
    assert search.short_address_run("zs") is None  # two letters: a name's initials, not here


@pytest.mark.parametrize(
    ("address", "end"),
    [
        (ADDRESS, "听涛雅苑1栋1单元201室"),
        ("浙江省杭州市西湖区秋实路18号晓岚新村10栋", "晓岚新村10栋"),
        ("浙江省杭州市西湖区文三路1号", "文三路1号"),
        ("幸福路8号1栋101室", "1栋101室"),
    ],
)
def test_the_end_of_an_address_tells_neighbours_apart(address: str, end: str) -> None:
    assert address_end(address) == end


def _connect(module: str) -> sqlite3.Connection:
    if module == "sqlcipher3":
        cipher = pytest.importorskip("sqlcipher3")
        return cipher.connect(":memory:", isolation_level=None)  # type: ignore[no-any-return]
    return sqlite3.connect(":memory:", isolation_level=None)


@pytest.mark.parametrize("module", ["sqlite3", "sqlcipher3"])
def test_the_index_matches_runs_initials_and_word_starts(module: str) -> None:
    conn = _connect(module)
    migrate(conn)
    for rid, room in ((1, "201"), (2, "1201")):
        conn.execute(
            "INSERT INTO records (rid, id, form, form_version, data, created_at, updated_at) "
            "VALUES (?, ?, 'house', 1, '{}', '', '')",
            (rid, f"h{room}"),
        )
        places.write(conn, [(rid, search.address_text([ADDRESS.replace("201室", f"{room}室")]))])

    def found(text: str) -> list[str]:
        near = places.matches(conn, text, "r.id", "r.deleted = 0", [])
        assert near is not None
        return [row[0] for row in near.rows]

    assert found("雅苑1栋1单元201") == ["h201"]
    assert found("201室") == ["h201", "h1201"]  # the shorter address first
    assert found("ttya") == ["h201", "h1201"]
    assert found("文澜") == ["h201", "h1201"]  # a word's start
    assert found("澜街") == []  # two characters inside a word: not a word's start
    assert places.matches(conn, "张", "r.id", "1 = 1", []) is None  # no address run at all


def _estate_house(store: Store, room: str, estate: str = "听涛雅苑") -> str:
    address = ADDRESS.replace("听涛雅苑", estate).replace("201室", f"{room}室")
    data = {"house_code": f"H{estate}{room}", "address_text": address, "grid": "330106001001"}
    return store.save("house", data).id


def test_typing_on_narrows_the_last_matches_without_reading_the_index(store: Store) -> None:
    """The previous keystroke's complete set of matches answers the next keystroke when the
    text only grew; a save here or a commit elsewhere makes the index be read again."""
    for room in ("201", "202", "1201", "2201", "2010"):
        _estate_house(store, room)
    _estate_house(store, "201", estate="望湖花园")
    typed = "听涛雅苑1栋1单元201"
    prefixes = [typed[:i] for i in range(3, len(typed) + 1)]

    def ids(text: str, on: Store = store) -> list[str]:
        return [s.id for s in browse.search(on, text, "house")]

    fresh = {}
    for text in prefixes:  # each on a connection of its own: no previous keystroke
        alone = Store(store.path, store.formset)
        fresh[text] = ids(text, alone)
        alone.close()
    statements: list[str] = []
    store.conn.set_trace_callback(statements.append)
    try:
        for text in prefixes:
            statements.clear()
            assert ids(text) == fresh[text], text
            if text.startswith("听涛雅苑"):  # typing on: the last keystroke's set narrowed
                assert not [q for q in statements if "address_search MATCH" in q], text
    finally:
        store.conn.set_trace_callback(None)
    # a save between two keystrokes is seen, and so is a commit from another connection
    ids("听涛雅苑1栋1单元20")
    new = _estate_house(store, "2011")
    assert new in ids("听涛雅苑1栋1单元201")
    other = Store(store.path, store.formset)
    try:
        elsewhere = _estate_house(other, "2012")
    finally:
        other.close()
    assert elsewhere in ids("听涛雅苑1栋1单元201")


def test_a_common_run_reads_the_index_once_per_keystroke(store: Store) -> None:
    """A run in more addresses than are ranked comes in index order; when the matches read to
    decide that already hold a page, the page is made from them (no second read)."""
    rows = [
        (None, {"house_code": f"H{i}", "address_text": ADDRESS.replace("201室", f"{i}室")}, "draft")
        for i in range(places.RANKED_AT_MOST + 100)
    ]
    inserted = store.insert_many("house", rows)
    statements: list[str] = []
    store.conn.set_trace_callback(statements.append)
    try:
        got = browse.search(store, "听涛雅苑", "house", limit=50)
        more = browse.search(store, "听涛雅苑", "house", offset=50, limit=50)
    finally:
        store.conn.set_trace_callback(None)
    assert [s.id for s in got + more] == inserted[:100]  # index order
    assert len([q for q in statements if "address_search MATCH" in q]) == 2  # one each
