"""Natural keys name their record by ``records.rid`` (``schema.RECORD_KEYS_BY_RID``): the rows
hold exactly the live records' keys, an older store is upgraded in place with the same keys
and the same "already registered" answers, and no key outlives its record's row."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from app.core.forms import FormSet
from app.core.store import Store, driver
from app.core.store.schema import MIGRATIONS, RECORD_KEYS_BY_RID, SCHEMA_VERSION, migrate
from tests.factories import resident, undo_record_keys_step


def held_keys(store: Store) -> list[tuple[str, str, str | None]]:
    """(form, key, record id) of every key row; a row whose rid names no record shows None."""
    return store.conn.execute(
        "SELECT k.form, k.key, r.id FROM record_keys k LEFT JOIN records r ON r.rid = k.rid "
        "ORDER BY 1, 2, 3"
    ).fetchall()


def expected_keys(store: Store) -> list[tuple[str, str, str | None]]:
    """What ``held_keys`` must be: each live record's natural keys, derived from its values."""
    out: set[tuple[str, str, str | None]] = set()
    for (record_id,) in store.conn.execute("SELECT id FROM records WHERE deleted = 0").fetchall():
        record = store.get(record_id)
        assert record is not None
        derived = store.derive(store.formset.form(record.form), record.data)
        out |= {(record.form, key, record_id) for key in derived.keys}
    return sorted(out)


def _columns(store: Store, table: str) -> list[str]:
    return [row[1] for row in store.conn.execute(f"PRAGMA table_info({table})")]


def _indexes(store: Store, table: str) -> set[str]:
    return {row[1] for row in store.conn.execute(f"PRAGMA index_list({table})")}


def test_an_older_store_keeps_every_live_records_keys_and_answers_alike(
    tmp_path: Path, formset: FormSet
) -> None:
    path = tmp_path / "old.sqlite"
    old = Store(path, formset)
    kept = [old.save("resident", resident(seq=1 + 2 * n)) for n in range(6)]
    old.save("resident", resident(seq=99, name="李四"), record_id=kept[0].id)  # a new key
    gone = old.delete(kept[1].id)  # a tombstone holds no keys
    twin = old.save("resident", resident(seq=3))  # a second holder of kept[1]'s key
    asked: list[dict[str, Any]] = [r.data for r in kept] + [resident(seq=777)]
    before = held_keys(old)
    answers = [old.find_by_key("resident", data) for data in asked]
    assert before == expected_keys(old) and before
    assert answers[1] == [twin.id] and gone.deleted and answers[-1] == []
    undo_record_keys_step(old.conn)
    old.conn.execute(  # a key whose record row is gone (no device writes one: dropped)
        "INSERT INTO record_keys (form, key, record_id) VALUES ('resident', 'x', 'nobody')"
    )
    assert _columns(old, "record_keys") == ["form", "key", "record_id"]
    old.conn.execute(f"PRAGMA user_version = {MIGRATIONS.index(RECORD_KEYS_BY_RID)}")
    old.close()
    again = Store(path, formset)
    try:
        assert again.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert _columns(again, "record_keys") == ["form", "key", "rid"]
        assert "record_keys_rid" in _indexes(again, "record_keys")
        assert "record_keys_record" not in _indexes(again, "record_keys")
        assert held_keys(again) == before
        assert [again.find_by_key("resident", data) for data in asked] == answers
    finally:
        again.close()


def test_a_new_store_keys_by_rid_and_lookups_stay_on_the_indexes(store: Store) -> None:
    assert _columns(store, "record_keys") == ["form", "key", "rid"]
    plans = {
        "SELECT r.id FROM record_keys k CROSS JOIN records r ON r.rid = k.rid "
        "WHERE k.form = ? AND k.key IN (?, ?) ORDER BY k.key, r.id": ("resident", "a", "b"),
        "DELETE FROM record_keys WHERE rid = ?": (1,),
    }
    for sql, args in plans.items():
        plan = " | ".join(r[3] for r in store.conn.execute("EXPLAIN QUERY PLAN " + sql, args))
        assert "SCAN" not in plan, plan


def test_lookups_put_the_lowest_id_under_the_lowest_key_first(store: Store) -> None:
    """``find_by_key`` answers in key then id order (``transfer._Known.first`` relies on it),
    whatever order the rids are in; ``records_by_keys`` lists each key's ids ascending."""
    saved = [store.save("resident", resident(seq=5)).id for _ in range(4)]
    made = [f"0000-{n}" for n in (3, 1, 4, 2)]  # ids out of their rids' order
    with store.transaction():
        for old, new in zip(saved, made, strict=True):
            store.replica.rename_record(store.reads.rid(old), old, new)
    other = store.save("resident", resident(seq=7)).id
    data = resident(seq=5)
    assert store.find_by_key("resident", data) == sorted(made)
    keys = store.derive(store.formset.form("resident"), data).keys
    assert store.records_by_keys("resident", keys) == {k: sorted(made) for k in keys}
    assert other not in store.find_by_key("resident", data)


def test_a_deleted_record_holds_no_keys(store: Store) -> None:
    first = store.save("resident", resident(seq=1))
    second = store.save("resident", resident(seq=3))
    store.delete(first.id)
    assert held_keys(store) == expected_keys(store)
    assert {k[2] for k in held_keys(store)} == {second.id}
    assert store.find_by_key("resident", first.data) == []


def test_a_removed_rows_rid_taken_again_inherits_none_of_its_keys(store: Store) -> None:
    """Without AUTOINCREMENT SQLite numbers a new row max(rid) + 1: a key left behind by a
    removed row (a folded copy) would make the next record look registered under it."""
    kept = store.save("resident", resident(seq=1))
    last = store.save("resident", resident(seq=3))
    rid = store.reads.rid(last.id)
    with store.transaction():
        store.replica.remove_record(rid, last.id, "resident")
    assert held_keys(store) == expected_keys(store)
    newcomer = store.save("resident", resident(seq=5))
    assert store.reads.rid(newcomer.id) == rid  # the same number again
    assert store.find_by_key("resident", last.data) == []
    assert store.find_by_key("resident", kept.data) == [kept.id]
    assert held_keys(store) == expected_keys(store)


def _older_store(path: Path, formset: FormSet) -> list[tuple[str, str, str | None]]:
    """A store as the app before the keys-by-rid step left it; returns its key rows."""
    old = Store(path, formset)
    for n in range(3):
        old.save("resident", resident(seq=1 + 2 * n))
    before = held_keys(old)
    undo_record_keys_step(old.conn)
    old.conn.execute(f"PRAGMA user_version = {MIGRATIONS.index(RECORD_KEYS_BY_RID)}")
    old.close()
    return before


def test_a_step_that_fails_midway_leaves_the_older_store_to_upgrade_later(
    tmp_path: Path, formset: FormSet
) -> None:
    """The step runs in one transaction: a failure after the old table is dropped (a crash,
    a full disk) leaves the older store as it was, and the next open upgrades it."""
    path = tmp_path / "old.sqlite"
    before = _older_store(path, formset)
    at = MIGRATIONS.index(RECORD_KEYS_BY_RID)
    broken = [*RECORD_KEYS_BY_RID[:3], "SELECT no_such_function()"]  # after DROP TABLE
    MIGRATIONS[at] = broken
    try:
        with pytest.raises(Exception, match="no_such_function"):
            Store(path, formset)
    finally:
        MIGRATIONS[at] = RECORD_KEYS_BY_RID
    conn = driver.connect(path, None)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == at
        columns = [row[1] for row in conn.execute("PRAGMA table_info(record_keys)")]
        assert columns == ["form", "key", "record_id"]
    finally:
        conn.close()
    again = Store(path, formset)
    try:
        assert held_keys(again) == before == expected_keys(again)
    finally:
        again.close()


def test_two_openers_of_an_older_store_upgrade_it_once(tmp_path: Path, formset: FormSet) -> None:
    """The app and a scheduled sync open an older store at once: the second read the version
    before the first took the write lock, and once it has the lock it must not run the step
    again (it read ``record_keys.record_id``, which the first run dropped: "no such column",
    and the second opener failed)."""
    path = tmp_path / "old.sqlite"
    before = _older_store(path, formset)
    first, second = driver.connect(path, None), driver.connect(path, None)
    second.execute("PRAGMA busy_timeout = 10000")
    waiting = threading.Event()
    second.set_trace_callback(lambda sql: waiting.set() if sql.startswith("BEGIN") else None)
    failed: list[BaseException] = []

    def open_second() -> None:
        try:
            migrate(second)
        except BaseException as exc:
            failed.append(exc)

    try:
        first.execute("BEGIN IMMEDIATE")  # the first opener is upgrading
        worker = threading.Thread(target=open_second)
        worker.start()
        assert waiting.wait(10)  # the second read the older version and waits for the lock
        for statement in RECORD_KEYS_BY_RID:
            first.execute(statement)
        first.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        first.execute("COMMIT")
        worker.join(20)
        assert failed == []
        assert second.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        first.close()
        second.close()
    again = Store(path, formset)
    try:
        assert held_keys(again) == before == expected_keys(again)
    finally:
        again.close()
