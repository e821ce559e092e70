"""sync.replica with tasks on a local Store alone: pulled tasks and items land in the pull's
transaction with the records and the cursor, aliases rename items' records, and the platform's
answers settle the results outbox."""

from __future__ import annotations

from typing import Any

import pytest

from app.core import ids
from app.core.store import Store
from sync import replica
from sync.protocol import Alias, PulledRecord, PulledTask, PulledTaskItem, PullResponse
from sync.protocol import TaskResultOutcome as Outcome
from tests.factories import resident

GRID = "330106001001-01"
SCOPE = "http://server|wang"


def _record(record_id: str, **data: Any) -> PulledRecord:
    return PulledRecord(
        id=record_id,
        form="resident",
        form_version=1,
        version=1,
        data=resident(population_type="2", **data),
        status="draft",
        deleted=False,
        updated_at=ids.now_iso(),
        updated_by="li",
    )


def _task(**kw: Any) -> PulledTask:
    values: dict[str, Any] = {
        "id": "t1",
        "kind": "verify",
        "title": "核实流动人口电话",
        "form": "resident",
        "fields": ["phone"],
        "due": "2099-12-31",
        "state": "open",
        "grids": [GRID],
        "issued_at": "2026-01-01T00:00:00Z",
        "issued_by": "chen",
        "updated_at": "2026-01-01T00:00:00Z",
    }
    return PulledTask(**{**values, **kw})


def _item(record_id: str, **kw: Any) -> PulledTaskItem:
    values: dict[str, Any] = {
        "id": f"i-{record_id}",
        "task_id": "t1",
        "record_id": record_id,
        "grid": GRID,
        "state": "open",
        "updated_at": "2026-01-01T00:00:00Z",
    }
    return PulledTaskItem(**{**values, **kw})


def _page(cursor: int, **kw: Any) -> PullResponse:
    return PullResponse(
        records=kw.pop("records", []),
        aliases=kw.pop("aliases", []),
        removed=[],
        cursor=cursor,
        more=False,
        **kw,
    )


def test_tasks_and_items_arrive_with_their_records_and_the_cursor(store: Store) -> None:
    r1 = ids.uuid7()
    tally = replica.apply_pull(
        store,
        _page(3, records=[_record(r1, phone=None)], tasks=[_task()], task_items=[_item(r1)]),
        SCOPE,
    )
    assert tally.tasks == 2 and replica.read_cursor(store, SCOPE) == 3
    [view] = store.tasks.views()
    assert (view.task.title, view.total, view.open) == ("核实流动人口电话", 1, 1)
    assert store.tasks.open_item_count() == 1


def test_a_chunk_that_fails_keeps_neither_tasks_nor_cursor(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    r1 = ids.uuid7()

    def broken(_items: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(store.tasks, "put_item_rows", broken)
    with pytest.raises(OSError):
        replica.apply_pull(
            store, _page(5, records=[_record(r1)], tasks=[_task()], task_items=[_item(r1)]), SCOPE
        )
    assert store.tasks.views() == [] and store.get(r1) is None
    assert replica.read_cursor(store, SCOPE) == 0


def test_a_cancelled_task_stays_but_is_hidden_with_its_items(store: Store) -> None:
    r1 = ids.uuid7()
    replica.apply_pull(
        store, _page(1, records=[_record(r1)], tasks=[_task()], task_items=[_item(r1)]), SCOPE
    )
    replica.apply_pull(store, _page(2, tasks=[_task(state="cancelled")]), SCOPE)
    assert store.tasks.views() == [] and store.tasks.open_item_count() == 0
    assert store.tasks.get("t1").state == "cancelled" and store.tasks.item(f"i-{r1}") is not None


def test_an_alias_renames_the_items_record(store: Store) -> None:
    old, canonical = ids.uuid7(), ids.uuid7()
    replica.apply_pull(
        store,
        _page(
            1,
            records=[_record(old), _record(canonical, seq=5)],
            tasks=[_task()],
            task_items=[_item(old)],
        ),
        SCOPE,
    )
    replica.apply_pull(store, _page(2, aliases=[Alias(old=old, canonical=canonical)]), SCOPE)
    assert store.tasks.item(f"i-{old}").record_id == canonical


def test_an_alias_in_the_items_own_page_renames_its_record(store: Store) -> None:
    """A first pull of an item whose record was merged after the task was issued (an older
    platform still sends the old id): the alias of the same page renames it too."""
    old, canonical = ids.uuid7(), ids.uuid7()
    page = _page(
        1,
        records=[_record(canonical, seq=5)],
        aliases=[Alias(old=old, canonical=canonical)],
        tasks=[_task()],
        task_items=[_item(old)],
    )
    replica.apply_pull(store, page, SCOPE)
    assert store.tasks.item(f"i-{old}").record_id == canonical
    assert [(i.record_id, i.title != "") for i in store.tasks.items("t1")] == [(canonical, True)]


def test_answers_settle_only_the_results_they_name(store: Store) -> None:
    a, b = ids.uuid7(), ids.uuid7()
    replica.apply_pull(
        store,
        _page(
            1,
            records=[_record(a, phone=None), _record(b, seq=7, phone=None)],
            tasks=[_task()],
            task_items=[_item(a), _item(b)],
        ),
        SCOPE,
    )
    store.tasks.mark_unable(f"i-{a}", "查无此人")
    store.tasks.mark_unable(f"i-{b}", "拒绝配合")
    sent = replica.next_results(store, 0, 10)
    assert [r.wire["item_id"] for r in sent] == [f"i-{a}", f"i-{b}"]
    answered = replica.record_task_answers(
        store,
        sent,
        [Outcome(op_id=sent[0].op_id, status="applied", item_id=f"i-{a}", state="unable")],
    )
    assert answered == 1 and replica.pending_result_count(store) == 1
    assert [r.op_id for r in replica.next_results(store, 0, 10)] == [sent[1].op_id]
