"""Tasks on the device: pulled tasks and items, progress, offline results and their outbox."""

from __future__ import annotations

import datetime as dt

import pytest

from app.core.store import Store, TaskError
from app.core.store.schema import MIGRATIONS, SCHEMA_VERSION
from tests.factories import (
    resident,
    task,
    task_item,
    undo_record_keys_step,
    undo_sort_key_step,
)


def _house(store: Store, building: str, room: str) -> str:
    data = {
        "house_code": f"H{building}{room}",
        "address_text": f"幸福路12号{building}{room}室",
        "grid": "330106001001-01",
        "building": building,
        "room": room,
    }
    return store.save("house", data).id


def _people(store: Store, n: int, **extra: object) -> list[str]:
    return [
        store.save("resident", resident(seq=100 + i, population_type="2", **extra)).id
        for i in range(n)
    ]


def test_views_order_by_due_and_count_items_by_state(store: Store) -> None:
    a, b, c = _people(store, 3, phone=None)
    store.tasks.put_tasks(
        [
            task(id="late", due="2099-06-01", title="晚"),
            task(id="early", due="2026-01-02", title="早"),
            task(id="none", due=None, title="无期限"),
            task(id="gone", state="cancelled", title="撤销"),
        ]
    )
    store.tasks.put_items(
        [
            task_item(a, id="i1", task_id="early"),
            task_item(b, id="i2", task_id="early", state="done"),
            task_item(c, id="i3", task_id="early", state="unable", reason="已迁出"),
            task_item(a, id="i4", task_id="gone"),
        ]
    )
    views = store.tasks.views(dt.date(2026, 3, 1))
    assert [v.task.id for v in views] == ["early", "late", "none"]  # cancelled hidden
    early = views[0]
    assert (early.total, early.done, early.unable, early.open) == (3, 1, 1, 1)
    assert early.overdue and not views[1].overdue and not views[2].overdue
    assert store.tasks.open_item_count() == 1  # the cancelled task's item does not count


def test_unable_needs_a_reason_and_changes_nothing_without_one(store: Store) -> None:
    [rid] = _people(store, 1)
    store.tasks.put_tasks([task()])
    store.tasks.put_items([task_item(rid)])
    for bad in ("", "   ", None, "长" * 201):
        with pytest.raises(TaskError) as caught:
            store.tasks.mark_unable(f"item-{rid}", bad)
        assert caught.value.message_zh and caught.value.message_en
    assert store.tasks.item(f"item-{rid}").state == "open"
    assert store.tasks.pending() == []


def test_unable_shows_at_once_and_queues_one_result(store: Store) -> None:
    [rid] = _people(store, 1, phone=None)
    store.tasks.put_tasks([task()])
    store.tasks.put_items([task_item(rid)])
    item = store.tasks.mark_unable(f"item-{rid}", "查无此人", author="王五")
    assert (item.state, item.reason) == ("unable", "查无此人")
    [view] = store.tasks.views()
    assert (view.unable, view.open) == (1, 0)
    [pending] = store.tasks.pending()
    assert pending.wire["op_id"].startswith(f"{store.device_id}:t")
    assert pending.wire | {"op_id": "", "edited_at": ""} == {
        "op_id": "",
        "item_id": f"item-{rid}",
        "state": "unable",
        "reason": "查无此人",
        "edited_at": "",
        "author": "王五",
    }
    assert store.tasks.items("task-1")[0].pending


def test_a_save_with_every_named_field_filled_marks_the_item_done(store: Store) -> None:
    [rid] = _people(store, 1, phone=None)
    store.tasks.put_tasks([task(fields=("phone", "residence_address"))])
    store.tasks.put_items([task_item(rid)])
    store.save("resident", resident(seq=100, population_type="2", phone=None), record_id=rid)
    assert store.tasks.item(f"item-{rid}").state == "open"  # phone still empty
    store.save("resident", resident(seq=100, population_type="2"), record_id=rid, author="w1")
    assert store.tasks.item(f"item-{rid}").state == "done"
    [pending] = store.tasks.pending()
    assert pending.wire["state"] == "done" and pending.wire["author"] == "w1"
    store.save("resident", resident(seq=100, population_type="2", name="李四"), record_id=rid)
    assert len(store.tasks.pending()) == 1  # done already: no second result


def test_a_save_confirming_unchanged_values_counts(store: Store) -> None:
    [rid] = _people(store, 1)
    store.tasks.put_tasks([task()])
    store.tasks.put_items([task_item(rid)])
    before = len(store.pending_ops())
    store.save("resident", resident(seq=100, population_type="2"), record_id=rid)
    assert len(store.pending_ops()) == before  # nothing changed: no record op
    assert store.tasks.item(f"item-{rid}").state == "done"
    assert [p.wire["state"] for p in store.tasks.pending()] == ["done"]


def test_a_cancelled_task_takes_no_result(store: Store) -> None:
    [rid] = _people(store, 1)
    store.tasks.put_tasks([task(state="cancelled")])
    store.tasks.put_items([task_item(rid)])
    with pytest.raises(TaskError):
        store.tasks.mark_unable(f"item-{rid}", "拒绝配合")
    store.save("resident", resident(seq=100, population_type="2", name="李四"), record_id=rid)
    assert store.tasks.item(f"item-{rid}").state == "open" and store.tasks.pending() == []


def test_pulled_state_merges_with_unanswered_results(store: Store) -> None:
    a, b, c = _people(store, 3, phone=None)
    store.tasks.put_tasks([task()])
    store.tasks.put_items([task_item(r) for r in (a, b, c)])
    store.tasks.mark_unable(f"item-{a}", "拒绝配合")
    store.tasks.mark_done(f"item-{b}")
    store.tasks.mark_unable(f"item-{c}", "已迁出")
    # A pull brings the platform's states before the platform has these results.
    store.tasks.put_items(
        [
            task_item(a),  # still open there: the device's unable stays
            task_item(b, state="unable", reason="查无此人"),  # done here wins
            task_item(c, state="done"),  # done there wins over unable here
        ]
    )
    states = {i.record_id: (i.state, i.reason) for i in store.tasks.items("task-1")}
    assert states == {a: ("unable", "拒绝配合"), b: ("done", None), c: ("done", None)}


def test_an_answer_empties_the_outbox_and_takes_the_platforms_state(store: Store) -> None:
    a, b = _people(store, 2, phone=None)
    store.tasks.put_tasks([task()])
    store.tasks.put_items([task_item(a), task_item(b)])
    store.tasks.mark_unable(f"item-{a}", "拒绝配合")
    store.tasks.mark_unable(f"item-{b}", "查无此人")
    first, second = store.tasks.pending()
    # Another worker's done reached the platform first: the answer says done.
    store.tasks.answered([(first.op_id, "done")])
    assert [p.op_id for p in store.tasks.pending()] == [second.op_id]
    assert store.tasks.item(f"item-{a}").state == "done"
    store.tasks.set_aside(second.op_id, "unknown_item", "没有这个条目", "unknown item")
    assert store.tasks.pending() == [] and store.tasks.pending_count() == 0
    [(op_id, item_id, _reason)] = store.tasks.set_aside_results()
    assert (op_id, item_id) == (second.op_id, f"item-{b}")


def test_items_are_listed_door_to_door_by_building_then_room(store: Store) -> None:
    houses = {
        ("10栋", "101"): None,
        ("3栋", "1201"): None,
        ("3栋", "501"): None,
    }
    for building, room in houses:
        houses[(building, room)] = _house(store, building, room)
    people = {
        key: store.save("resident", resident(seq=200 + n, house_ref=hid, population_type="2")).id
        for n, (key, hid) in enumerate(houses.items())
    }
    store.tasks.put_tasks([task()])
    store.tasks.put_items([task_item(rid) for rid in people.values()])
    items = store.tasks.items("task-1")
    assert [(i.building, i.house) for i in items] == [
        ("3栋", "幸福路12号3栋501室"),
        ("3栋", "幸福路12号3栋1201室"),
        ("10栋", "幸福路12号10栋101室"),
    ]


def test_collect_progress_counts_new_records_of_the_form_in_the_grids(store: Store) -> None:
    store.tasks.put_tasks(
        [task(id="c", kind="collect", fields=(), target=5, issued_at="2000-01-01T00:00:00Z")]
    )
    _people(store, 2)
    store.save("resident", resident(seq=300, grid="330106001001-02"))  # another grid
    [view] = store.tasks.views()
    assert (view.total, view.done) == (5, 2)


def test_the_tasks_migration_upgrades_an_existing_store(tmp_path, formset) -> None:  # type: ignore[no-untyped-def]
    s = Store(tmp_path / "old.sqlite", formset)
    rid = s.save("resident", resident()).id
    s.conn.execute("DROP TABLE task_results")
    s.conn.execute("DROP TABLE task_items")
    s.conn.execute("DROP TABLE tasks")
    s.conn.execute("DROP TABLE address_search")  # later steps, run again after this one
    undo_sort_key_step(s.conn)
    undo_record_keys_step(s.conn)
    step = next(i for i, sql in enumerate(MIGRATIONS) if any("TABLE tasks" in q for q in sql))
    s.conn.execute(f"PRAGMA user_version = {step}")  # the store before the tasks step
    s.close()
    again = Store(tmp_path / "old.sqlite", formset)
    assert again.get(rid) is not None and again.tasks.views() == []
    assert again.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    again.close()


def test_a_result_set_aside_leaves_the_item_as_the_platform_has_it(store: Store) -> None:
    a, b = _people(store, 2, phone=None)
    store.tasks.put_tasks([task()])
    store.tasks.put_items([task_item(a, state="unable", reason="查无此人"), task_item(b)])
    store.tasks.mark_done(f"item-{a}")
    store.tasks.mark_unable(f"item-{b}", "拒绝配合")
    store.tasks.mark_done(f"item-{b}")
    # a pull while they wait: another device's unable reached the platform for b
    store.tasks.put_items([task_item(b, state="unable", reason="已迁出")])
    first, second, third = store.tasks.pending()
    store.tasks.set_aside(first.op_id, "out_of_scope", "不在范围", "out of scope")
    assert store.tasks.item(f"item-{a}").state == "unable"
    assert store.tasks.item(f"item-{a}").reason == "查无此人"
    store.tasks.set_aside(third.op_id, "out_of_scope", "不在范围", "out of scope")
    assert (store.tasks.item(f"item-{b}").state, store.tasks.item(f"item-{b}").reason) == (
        "unable",
        "拒绝配合",  # its own unable still waits, and is the later one
    )
    store.tasks.answered([(second.op_id, "unable")])
    assert store.tasks.item(f"item-{b}").state == "unable"
    assert store.conn.execute("SELECT count(*) FROM task_platform_states").fetchone()[0] == 0
