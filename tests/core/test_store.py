"""The local store: saves, history, outbox, keys, references, tombstones, migrations."""

from __future__ import annotations

import sqlite3

import pytest

from app.core.store import STATUS_FIELD, Store, driver
from app.core.store.schema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    UNUSED_INDEXES,
    SchemaTooNewError,
)
from tests.factories import resident, undo_record_keys_step


def test_save_writes_record_history_and_outbox_together(store: Store) -> None:
    rec = store.save("resident", resident(), author="w1")
    assert store.get(rec.id).data["name"] == "张三"
    [entry] = store.history(rec.id)
    assert (
        entry.kind == "create" and entry.author == "w1" and entry.changes["name"] == [None, "张三"]
    )
    [op] = store.pending_ops()
    assert op["kind"] == "create" and op["record_id"] == rec.id
    assert op["op_id"] == f"{store.device_id}:1" and op["fields"][STATUS_FIELD] == "draft"


def test_update_logs_only_changed_fields(store: Store) -> None:
    rec = store.save("resident", resident())
    store.save(
        "resident", resident(phone="13900139000"), record_id=rec.id, status="complete", author="w2"
    )
    last = store.history(rec.id)[-1]
    assert last.changes == {
        "phone": ["13800138000", "13900139000"],
        STATUS_FIELD: ["draft", "complete"],
    }
    assert store.pending_ops()[-1]["fields"] == {"phone": "13900139000", STATUS_FIELD: "complete"}


def test_saving_unchanged_values_writes_nothing(store: Store) -> None:
    rec = store.save("resident", resident())
    store.save("resident", resident(), record_id=rec.id)
    assert len(store.history(rec.id)) == 1 and len(store.pending_ops()) == 1


def test_empty_values_are_not_changes(store: Store) -> None:
    rec = store.save("resident", resident(former_name=""))
    store.save("resident", resident(former_name=None), record_id=rec.id)
    assert len(store.history(rec.id)) == 1


def test_history_is_append_only(store: Store) -> None:
    rec = store.save("resident", resident())
    with pytest.raises(driver.IntegrityError, match="append-only"):
        store.conn.execute("UPDATE history SET author = 'x' WHERE record_id = ?", (rec.id,))
    with pytest.raises(driver.IntegrityError, match="append-only"):
        store.conn.execute("DELETE FROM history")


def test_natural_key_lookup_is_normalised(store: Store) -> None:
    data = resident()
    rec = store.save("resident", data)
    typed = " ".join(data["id_number"].lower())  # spaces and lowercase x
    fullwidth = data["id_number"].translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789X"})
    assert store.find_by_key("resident", {"id_type": "111", "id_number": typed}) == [rec.id]
    assert store.find_by_key("resident", {"id_type": "111", "id_number": fullwidth}) == [rec.id]
    assert store.find_by_key("resident", {"id_type": "414", "id_number": data["id_number"]}) == []


def test_delete_is_a_tombstone(store: Store) -> None:
    rec = store.save("resident", resident())
    store.delete(rec.id, author="w1")
    assert store.get(rec.id).deleted
    assert store.find_by_key("resident", resident()) == []
    assert store.search("zs") == [] and store.count("resident") == 0
    assert [h.kind for h in store.history(rec.id)] == ["create", "delete"]
    assert store.pending_ops()[-1]["kind"] == "delete"


def test_references_are_indexed(store: Store) -> None:
    house = store.save("house", {"house_code": "H1", "grid": "G1"})
    person = store.save("resident", resident(house_ref=house.id))
    assert store.referrers(house.id) == [person.id]
    store.save("resident", resident(house_ref=None), record_id=person.id)
    assert store.referrers(house.id) == []


def test_failed_transaction_leaves_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.save("resident", resident())
        raise RuntimeError("boom")
    assert store.count() == 0 and store.pending_ops() == []
    assert store.conn.execute("SELECT count(*) FROM history").fetchone()[0] == 0


def test_insert_many_matches_save(store: Store) -> None:
    ids = store.insert_many(
        "resident", [(None, resident(seq=s, name=f"李{s}"), "complete") for s in (1, 3, 5)]
    )
    assert store.count("resident", status="complete") == 3
    assert [op["op_id"] for op in store.pending_ops()] == [
        f"{store.device_id}:{i}" for i in (1, 2, 3)
    ]
    assert store.find_by_key("resident", resident(seq=3)) == [ids[1]]
    assert [s.id for s in store.search("li")] == ids
    rec = store.save("resident", resident(seq=9))
    assert store.pending_ops()[-1]["op_id"] == f"{store.device_id}:4" and rec.id not in ids


def test_filters_and_stats(store: Store) -> None:
    a = store.save("resident", resident(seq=1), status="complete")
    store.save("resident", resident(seq=3, grid="G2"))
    assert [s.id for s in store.summaries("resident", status="complete")] == [a.id]
    assert store.count("resident", grid="G2") == 1 and store.count("resident", dirty=True) == 2
    assert sorted(store.stats()) == sorted(
        [("resident", "complete", "330106001001-01", 1), ("resident", "draft", "G2", 1)]
    )


def test_autosave_round_trip(store: Store) -> None:
    store.autosave_put("new-1", "resident", None, {"name": "王五"})
    [(slot, form, rid, data, _)] = store.autosaves()
    assert (slot, form, rid, data) == ("new-1", "resident", None, {"name": "王五"})
    store.autosave_clear("new-1")
    assert store.autosaves() == []


def test_autosaves_are_named_rows(store: Store) -> None:
    """A row of ``autosaves()`` names its parts (and still unpacks as before)."""
    house = store.save("house", {"address": "1栋101室"})
    store.autosave_put("edit-1", "house", house.id, {"address": "1栋102室"})
    [row] = store.autosaves()
    assert (row.slot, row.form, row.record_id, row.data) == (
        "edit-1",
        "house",
        house.id,
        {"address": "1栋102室"},
    )
    assert row.saved_at and tuple(row)[:3] == ("edit-1", "house", house.id)


def test_device_id_and_schema_survive_reopen(tmp_path, formset) -> None:
    path = tmp_path / "s.sqlite"
    first = Store(path, formset)
    device = first.device_id
    first.save("resident", resident())
    first.close()
    again = Store(path, formset)
    assert again.device_id == device and again.count() == 1
    assert again.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert again.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again.close()


def test_store_from_a_newer_app_is_refused(tmp_path, formset) -> None:
    path = tmp_path / "s.sqlite"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(SchemaTooNewError, match="升级"):
        Store(path, formset)


def test_hlc_never_goes_backwards(store: Store) -> None:
    stamps = [store.hlc() for _ in range(50)]
    assert stamps == sorted(stamps) and len(set(stamps)) == 50


def _indexes(store: Store) -> set[str]:
    rows = store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
    return {name for (name,) in rows}


def _plan(store: Store, sql: str, args: tuple[str, ...]) -> str:
    return " | ".join(r[3] for r in store.conn.execute("EXPLAIN QUERY PLAN " + sql, args))


def test_the_unused_pinyin_index_is_gone_and_an_older_store_drops_it_in_place(
    tmp_path, formset
) -> None:  # type: ignore[no-untyped-def]
    """No query reads people by pinyin (the duplicate guard reads by birth date or house and
    compares pinyin in Python): the index only cost every insert. A new store has none; an
    older one drops it in place, keeps its people, and the guard's lookups keep their indexes."""
    fresh = Store(tmp_path / "new.sqlite", formset)
    assert "people_pinyin" not in _indexes(fresh)
    fresh.close()
    old = Store(tmp_path / "old.sqlite", formset)
    saved = old.save("resident", resident(), status="complete")
    old.conn.execute("CREATE INDEX people_pinyin ON people (form, pinyin)")
    undo_record_keys_step(old.conn)  # a later step
    old.conn.execute(f"PRAGMA user_version = {MIGRATIONS.index(UNUSED_INDEXES)}")  # before it
    old.close()
    again = Store(tmp_path / "old.sqlite", formset)
    assert "people_pinyin" not in _indexes(again)
    assert {"people_birth", "people_house"} <= _indexes(again)
    assert again.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    birth = saved.data["birth_date"]
    assert [row[0] for row in again.reads.people_by_birth("resident", birth)] == [saved.id]
    assert "people_birth" in _plan(
        again, "SELECT rid FROM people WHERE form = ? AND birth = ?", ("resident", birth)
    )
    again.close()


def test_grids_without_boundaries_are_the_same_grids_with_none(store: Store) -> None:
    """``grids(boundaries=False)``, what lists grids by name: the same grids in the same order,
    every field but the polygon the same."""
    from dataclasses import replace

    from app.core.store import Grid

    square = [(120.0, 30.0), (120.01, 30.0), (120.01, 30.01), (120.0, 30.01)]
    store.put_grid(Grid("G2", "二", "C2", "乙社区", polygon=square))
    store.put_grid(Grid("G1", "一", "C1", "甲社区", level="2"))
    store.put_grid(Grid("G3", "三", "C1", "甲社区", polygon=square))
    full = store.grids()
    assert [g.code for g in full] == ["G1", "G3", "G2"] and full[1].polygon == square
    assert store.grids(boundaries=False) == [replace(g, polygon=[]) for g in full]
    assert [store.grid_boundary(c) for c in ("G3", "G1", "nope")] == [square, [], []]
