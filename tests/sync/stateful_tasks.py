"""Task rules and invariants mixed into the stateful sync test (tests/sync/test_stateful.py).

Rules: the supervisor issues a verify task over the residents of grid A (or A and B) asking for
one field, or cancels one; a device saves an item's record with the task's field filled (the
item is done offline) or marks an open item unable with a reason. Every save of every device is
logged (``Tasks.after_save`` is wrapped for the machine's life) with the fields it left filled.

Invariants, at quiescence (every device synced until nothing is left to push):

- an item is done iff a qualifying save happened: done only when some save of its record (or
  of a record merged with it) left every field the task names filled; and every save a device
  made while it held the item open leaves it done (no result lost, whatever the interleaving);
- an item marked unable, without a save of that kind, is unable;
- the console's counts (``GET /v1/console/tasks/{id}``) equal the items' states, and every
  device shows each item it holds in the platform's state, with no result left to send.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests
from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import rule
from sqlalchemy import select

from app.core.records import is_empty
from app.core.store import TaskError
from app.core.store.tasks import UNABLE_REASONS, Tasks
from sync import replica
from sync.server import db
from tests.sync.conftest import Client as ConsoleClient
from tests.sync.devicekit import GRID_A, GRID_B, PASSWORD

TASK_FIELDS = ("phone", "former_name")  # former_name may be empty: items wait for a value
FILL = {"phone": ("13800000009", "13800000008"), "former_name": ("丙", "丁")}
REASONS = (*(zh for zh, _en in UNABLE_REASONS), "门锁三次无人")


class TaskRules:
    """Mixed into ``SyncMachine`` (which provides ``devs``, ``served``, ``_pick``, ``_sync``)."""

    devs: list[Any]
    served: Any

    def _start_tasks(self) -> None:
        self.issued: dict[str, tuple[str, ...]] = {}  # task id -> its fields
        self.saves: list[tuple[str, frozenset[str]]] = []  # (record id, fields left filled)
        self.held_done: set[str] = set()  # items a device marked done by a save
        self.marked_unable: set[str] = set()
        self._console: ConsoleClient | None = None
        machine, original = self, Tasks.after_save

        def after_save(
            tasks: Tasks, record_id: str, data: Mapping[str, Any], author: str = ""
        ) -> list[str]:
            done = original(tasks, record_id, data, author)
            filled = frozenset(k for k, v in data.items() if not is_empty(v))
            machine.saves.append((record_id, filled))
            machine.held_done.update(done)
            return done

        self._original_after_save = original
        Tasks.after_save = after_save  # type: ignore[method-assign]

    def _stop_tasks(self) -> None:
        Tasks.after_save = self._original_after_save  # type: ignore[method-assign]

    def _chen(self, method: str, path: str, refused: str = "", **kw: Any) -> Any:
        """The console API as supervisor chen; ``refused``: an error code that may answer."""
        if self._console is None:
            self._console = ConsoleClient(self.served.url, "console-chen")
            assert self._console.login("chen", PASSWORD).status_code == 200
        answer = requests.request(
            method,
            f"{self.served.url}/v1/console{path}",
            headers=self._console.headers,
            timeout=60,
            **kw,
        )
        if refused and answer.status_code != 200:
            assert answer.json()["error"]["code"] == refused, answer.text
            return None
        assert answer.status_code == 200, answer.text
        return answer.json()

    def _forget_unsent_results(self, dev: Any) -> None:
        """A data dir about to be replaced: results it never sent are gone with it."""
        for pending in dev.store.tasks.pending():
            self.held_done.discard(pending.wire["item_id"])
            self.marked_unable.discard(pending.wire["item_id"])

    # -- rules ---------------------------------------------------------------------------------

    @rule(field=st.sampled_from(TASK_FIELDS), both=st.booleans())
    def supervisor_issues_a_task(self, field: str, both: bool) -> None:
        spec = {
            "title": f"核实{field}",
            "form": "resident",
            "fields": [field],
            "grids": [GRID_A, GRID_B] if both else [GRID_A],
            "due": "2099-12-31",
        }
        made = self._chen("POST", "/tasks", json=spec)
        self.issued[made["task"]["id"]] = (field,)

    @rule(data=st.data())
    def supervisor_cancels_a_task(self, data: st.DataObject) -> None:
        task_id = self._pick(data, sorted(self.issued))  # type: ignore[attr-defined]
        if task_id is not None:
            self._chen("POST", f"/tasks/{task_id}/cancel", refused="task_closed")  # closed: stays

    def _open_items(self, d: int) -> list[tuple[str, str, str]]:
        """(item id, record id, task id) of the open items of open tasks on device ``d``."""
        store = self.devs[d].store
        out = []
        for view in store.tasks.views(finished=False):
            for item in store.tasks.items(view.task.id):
                if item.state == "open" and store.get(item.record_id) is not None:
                    out.append((item.id, item.record_id, view.task.id))
        return sorted(out)

    @rule(d=st.integers(0, 2), value=st.integers(0, 1), data=st.data())
    def item_done_by_a_save(self, d: int, value: int, data: st.DataObject) -> None:
        picked = self._pick(data, self._open_items(d))  # type: ignore[attr-defined]
        if picked is None:
            return
        item_id, record_id, task_id = picked
        dev = self.devs[d]
        task = dev.store.tasks.get(task_id)
        record = dev.get(record_id)
        if record.deleted:
            return
        if value == 0 and all(not is_empty(record.data.get(f)) for f in task.fields):
            dev.edit(record_id)  # confirmed unchanged: no op, only the device's done result
        else:
            dev.edit(record_id, **{f: FILL[f][value] for f in task.fields if f in FILL})
        event("task: an item done by a save")
        assert dev.store.tasks.item(item_id).state == "done", "a qualifying save left it open"

    @rule(d=st.integers(0, 2), reason=st.sampled_from(REASONS), data=st.data())
    def item_unable(self, d: int, reason: str, data: st.DataObject) -> None:
        picked = self._pick(data, self._open_items(d))  # type: ignore[attr-defined]
        if picked is None:
            return
        item_id = picked[0]
        try:
            self.devs[d].store.tasks.mark_unable(item_id, reason, self.devs[d].user)
        except TaskError:
            return
        self.marked_unable.add(item_id)
        event("task: an item marked unable")
        assert self.devs[d].store.tasks.item(item_id).state == "unable"

    @rule(
        d=st.integers(0, 2),
        field=st.sampled_from(TASK_FIELDS),
        both=st.booleans(),
        value=st.integers(0, 1),
        reason=st.sampled_from(REASONS),
        settle=st.booleans(),
        data=st.data(),
    )
    def a_task_reaches_a_device_and_is_worked_offline(
        self,
        d: int,
        field: str,
        both: bool,
        value: int,
        reason: str,
        settle: bool,
        data: st.DataObject,
    ) -> None:
        """The usual day: the device syncs, a task is issued over what it pushed, the device
        syncs again and works on two items offline (one done by a save, one unable); with
        ``settle`` every device then syncs until quiet and the invariants are checked."""
        self._sync(d)  # type: ignore[attr-defined]
        self.supervisor_issues_a_task(field, both)
        self._sync(d)  # type: ignore[attr-defined]
        self.item_done_by_a_save(d, value, data)
        self.item_unable(d, reason, data)
        if settle:
            self.quiesce()  # type: ignore[attr-defined]

    # -- invariants at quiescence --------------------------------------------------------------

    def _check_tasks(self) -> None:
        with self.served.engine.connect() as conn:
            items = conn.execute(
                select(
                    db.task_items.c.id,
                    db.task_items.c.task_id,
                    db.task_items.c.record_id,
                    db.task_items.c.state,
                )
            ).all()
            aliases = conn.execute(select(db.aliases.c.old_id, db.aliases.c.canonical_id)).all()
        same_record: dict[str, set[str]] = {}
        for old, canonical in aliases:
            group = same_record.get(old, {old}) | same_record.get(canonical, {canonical})
            for rid in group:
                same_record[rid] = group
        states = {item_id: state for item_id, _t, _r, state in items}
        event(f"task check: {len(items) > 0} items, {len(self.held_done) > 0} done by a save")
        for item_id, task_id, record_id, state in items:
            fields = set(self.issued.get(task_id, ()))
            ids = same_record.get(record_id, {record_id})
            qualified = any(rid in ids and fields <= filled for rid, filled in self.saves)
            if state == "done":
                assert qualified, "an item is done without a save filling the task's fields"
            if item_id in self.held_done:
                assert state == "done", "a device's done result was lost"
            elif item_id in self.marked_unable and not qualified:
                assert state == "unable", "a device's unable result was lost"
        for task_id in self.issued:
            counts = self._chen("GET", f"/tasks/{task_id}")["counts"]
            mine = [s for (i, t, _r, s) in items if t == task_id]
            assert counts == {s: mine.count(s) for s in ("open", "done", "unable")}
        for dev in self.devs:
            assert replica.pending_result_count(dev.store) == 0, "a result was never sent"
            shown = dev.store.conn.execute("SELECT id, state FROM task_items").fetchall()
            for item_id, state in shown:
                assert states.get(item_id) == state, "a device shows another state"
