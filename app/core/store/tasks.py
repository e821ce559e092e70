"""Tasks on the device: what the platform issued, their items, and this device's results.

Why its own part: a worker carries tasks out offline, so the device keeps the tasks and items a
pull brought, shows progress that moves at once when an item is done or unable, and keeps each
result in an outbox (``task_results``) that only the platform's answer empties: a sync killed
mid-push loses nothing. ``task_items.state`` is what the device shows: the platform's state with
this device's unanswered results merged in by the platform's rule (done wins over unable; of two
of the same kind the later one). A part ``Store`` composes (``Store.tasks``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from app.core import ids
from app.core.forms import FormSet
from app.core.records import is_empty
from app.core.store.db import Database
from app.core.store.task_model import (
    MAX_REASON_CHARS,
    TASK_COLUMNS,
    UNABLE_REASONS,
    ItemView,
    PendingResult,
    Task,
    TaskError,
    TaskItem,
    TaskView,
    check_reason,
    iso_seconds,
    merged_state,
    prefixed_columns,
    task_from_row,
)

ItemRow = tuple[str, str, str, str | None, str, str | None, str, str | None]

__all__ = [
    "ItemRow",
    "MAX_REASON_CHARS",
    "UNABLE_REASONS",
    "ItemView",
    "PendingResult",
    "Task",
    "TaskError",
    "TaskItem",
    "TaskView",
    "Tasks",
    "check_reason",
    "merged_state",
]


class Tasks:
    """The tasks, task_items and task_results tables."""

    def __init__(self, db: Database, formset: FormSet) -> None:
        self._db, self.formset = db, formset
        self.conn = db.conn

    # -- from the platform (a pull; joins its transaction) ---------------------------------

    def put_tasks(self, tasks: Sequence[Task]) -> None:
        """Take tasks as pulled: each is the newest state of that task."""
        with self._db.transaction():
            self.conn.executemany(
                "INSERT OR REPLACE INTO tasks (id, kind, title, instruction, form, fields, due, "
                "priority, state, grids, issued_at, issued_by, updated_at, target) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        t.id,
                        t.kind,
                        t.title,
                        t.instruction,
                        t.form,
                        json.dumps(list(t.fields)),
                        t.due,
                        t.priority,
                        t.state,
                        json.dumps(list(t.grids)),
                        t.issued_at,
                        t.issued_by,
                        t.updated_at,
                        t.target,
                    )
                    for t in tasks
                ],
            )

    def put_items(self, items: Sequence[TaskItem]) -> None:
        """Take items as pulled (``put_item_rows`` with values)."""
        self.put_item_rows(
            [
                (
                    i.id,
                    i.task_id,
                    i.record_id,
                    i.grid,
                    i.state,
                    i.reason,
                    i.updated_at,
                    i.updated_by,
                )
                for i in items
            ]
        )

    def put_item_rows(self, rows: Sequence[ItemRow]) -> None:
        """Take items as pulled, as ``(id, task_id, record_id, grid, state, reason,
        updated_at, updated_by)``, with this device's unanswered results merged in: one
        executemany, no object per item (a first pull brings a 100 000-item task)."""
        with self._db.transaction():
            waiting = {
                row[0]
                for row in self.conn.execute(
                    "SELECT DISTINCT item_id FROM task_results WHERE set_aside IS NULL"
                )
            }
            if waiting:
                self._note_platform([(r[0], r[4], r[5]) for r in rows if r[0] in waiting])
                rows = [self._merged_row(row) if row[0] in waiting else row for row in rows]
            self.conn.executemany(
                "INSERT OR REPLACE INTO task_items (id, task_id, record_id, grid, state, "
                "reason, updated_at, updated_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def withdraw(self, task_ids: Sequence[str]) -> int:
        """Tasks that no longer reach this worker (named to others now): off the device with
        their items; returns how many it had. Results still waiting stay in the outbox: the
        platform decides on them (PROTOCOL.md §13.2)."""
        gone = 0
        with self._db.transaction():
            for task_id in task_ids:
                items = self.conn.execute(
                    "SELECT id FROM task_items WHERE task_id = ?", (task_id,)
                ).fetchall()
                self._forget_items([i for (i,) in items])
                gone += self.conn.execute("DELETE FROM tasks WHERE id = ?", (task_id,)).rowcount
        return gone

    def leave_grids(self, grids: Sequence[str]) -> int:
        """Grids taken from this worker: their items go, and the tasks left without a grid of
        the worker's; returns how many tasks went. Why not the records too: the device keeps
        those read as they were (PROTOCOL.md §8); a task is work still to do, and its results
        would only be refused. Waiting results stay in the outbox, as ``withdraw``."""
        left = set(grids)
        if not left:
            return 0
        gone = 0
        with self._db.transaction():
            for grid in sorted(left):
                items = self.conn.execute(
                    "SELECT id FROM task_items WHERE grid = ?", (grid,)
                ).fetchall()
                self._forget_items([i for (i,) in items])
            for task_id, text in self.conn.execute("SELECT id, grids FROM tasks").fetchall():
                mine = json.loads(text or "[]")
                if not left.intersection(mine):
                    continue
                kept = [g for g in mine if g not in left]
                if kept:
                    self.conn.execute(
                        "UPDATE tasks SET grids = ? WHERE id = ?", (json.dumps(kept), task_id)
                    )
                else:
                    self.conn.execute("DELETE FROM task_items WHERE task_id = ?", (task_id,))
                    self.conn.execute("DELETE FROM tasks WHERE id = ?", (task_id,))
                    gone += 1
        return gone

    def _forget_items(self, item_ids: Sequence[str]) -> None:
        """Items off the device with their notes of the platform's state (a pull that brings
        an item back notes it again when results still wait)."""
        for n in range(0, len(item_ids), 500):
            part = list(item_ids[n : n + 500])
            marks = ",".join("?" * len(part))
            self.conn.execute(f"DELETE FROM task_items WHERE id IN ({marks})", part)
            self.conn.execute(f"DELETE FROM task_platform_states WHERE item_id IN ({marks})", part)

    def _merged_row(self, row: ItemRow) -> ItemRow:
        state, reason = merged_state((row[4], row[5]), self._pending_of(row[0]))
        return (*row[:4], state, reason, *row[6:])

    # -- reads ------------------------------------------------------------------------------

    def get(self, task_id: str) -> Task | None:
        """A task by id (cancelled ones included)."""
        row = self.conn.execute(f"SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?", (task_id,))
        found = row.fetchone()
        return task_from_row(found) if found else None

    def item(self, item_id: str) -> TaskItem | None:
        """An item by id, in the state the device shows."""
        row = self.conn.execute(
            "SELECT id, task_id, record_id, state, updated_at, grid, reason, updated_by "
            "FROM task_items WHERE id = ?",
            (item_id,),
        ).fetchone()
        return TaskItem(*row) if row else None

    def views(self, today: date | None = None, *, finished: bool = True) -> list[TaskView]:
        """Tasks to show, by due date (none last), then priority (urgent first); cancelled
        tasks are hidden; ``finished=False`` hides closed ones too."""
        today = today or date.today()
        states = ("open", "closed") if finished else ("open",)
        rows = self.conn.execute(
            f"SELECT {TASK_COLUMNS} FROM tasks WHERE state IN ({','.join('?' * len(states))}) "
            "ORDER BY due IS NULL, due, priority DESC, issued_at, id",
            states,
        ).fetchall()
        counts = self._counts()
        out = []
        for row in rows:
            task = task_from_row(row)
            if task.kind == "collect":
                total, done, unable = task.target or 0, self.collected(task), 0
            else:
                total, done, unable = counts.get(task.id, (0, 0, 0))
            overdue = task.state == "open" and bool(task.due) and str(task.due) < today.isoformat()
            out.append(TaskView(task, total, done, unable, overdue))
        return out

    def _counts(self) -> dict[str, tuple[int, int, int]]:
        rows = self.conn.execute(
            "SELECT task_id, count(*), sum(state = 'done'), sum(state = 'unable') "
            "FROM task_items GROUP BY task_id"
        )
        return {t: (n, d or 0, u or 0) for t, n, d, u in rows}

    def collected(self, task: Task) -> int:
        """Records of a collect task's form made in its grids since it was issued (on this
        device, or pulled: a pulled record counts from its first state the device saw)."""
        if not task.grids:
            return 0
        marks = ",".join("?" * len(task.grids))
        row = self.conn.execute(
            f"SELECT count(*) FROM records WHERE form = ? AND deleted = 0 AND grid IN ({marks}) "
            "AND created_at >= ?",
            (task.form, *task.grids, iso_seconds(task.issued_at)),
        ).fetchone()
        return int(row[0])

    def open_item_count(self) -> int:
        """Open items of open tasks: the number the main window shows."""
        row = self.conn.execute(
            "SELECT count(*) FROM task_items i JOIN tasks t ON t.id = i.task_id "
            "WHERE i.state = 'open' AND t.state = 'open'"
        ).fetchone()
        return int(row[0])

    def items(self, task_id: str) -> list[ItemView]:
        """A task's items in walking order: by building, then house (door), then title."""
        from app.core.store.browse.households import natural_key

        rows = self.conn.execute(
            "SELECT i.id, i.record_id, coalesce(r.title, ''), r.form, r.data, i.state, i.reason, "
            "EXISTS (SELECT 1 FROM task_results p WHERE p.item_id = i.id AND p.set_aside IS NULL) "
            "FROM task_items i LEFT JOIN records r ON r.id = i.record_id WHERE i.task_id = ?",
            (task_id,),
        ).fetchall()
        out = []
        for item_id, record_id, title, form_id, data, state, reason, pending in rows:
            building, house = self._place(form_id, json.loads(data) if data else {})
            out.append(
                ItemView(item_id, record_id, title, building, house, state, reason, bool(pending))
            )
        return sorted(
            out,
            key=lambda v: (
                natural_key(v.building),
                natural_key(v.house),
                natural_key(v.title),
                v.id,
            ),
        )

    def _place(self, form_id: str | None, data: Mapping[str, Any]) -> tuple[str, str]:
        """(building, house title) of a record: its own building role, else its house's."""
        if not form_id or form_id not in self.formset.forms:
            return "", ""
        form = self.formset.form(form_id)
        if form.roles.building:
            return str(data.get(form.roles.building) or ""), form.title_of(data)
        ref = form.roles.house
        house_id = data.get(ref) if ref else None
        if not isinstance(house_id, str):
            return "", ""
        row = self.conn.execute(
            "SELECT form, data, title FROM records WHERE id = ?", (house_id,)
        ).fetchone()
        if row is None or row[0] not in self.formset.forms:
            return "", ""
        role = self.formset.form(row[0]).roles.building
        house = json.loads(row[1])
        return (str(house.get(role) or "") if role else ""), str(row[2] or "")

    def items_of_record(self, record_id: str) -> list[tuple[TaskItem, Task]]:
        """Open items of open verify tasks on a record (the editor highlights their fields)."""
        rows = self.conn.execute(
            f"SELECT i.id, i.task_id, i.record_id, i.state, i.updated_at, i.grid, i.reason, "
            f"i.updated_by, {prefixed_columns('t')} FROM task_items i JOIN tasks t ON t.id = i.task_id "
            "WHERE i.record_id = ? AND i.state = 'open' AND t.state = 'open' "
            "AND t.kind = 'verify' ORDER BY t.due IS NULL, t.due, t.id",
            (record_id,),
        ).fetchall()
        return [(TaskItem(*r[:8]), task_from_row(r[8:])) for r in rows]

    # -- this device's results ---------------------------------------------------------------

    def mark_unable(self, item_id: str, reason: str | None, author: str = "") -> TaskItem:
        """The worker could not do an item: shown at once, queued for the platform."""
        return self._result(item_id, "unable", check_reason(reason), author)

    def mark_done(self, item_id: str, author: str = "") -> TaskItem:
        """The item is done (its record saved with the task's fields filled)."""
        return self._result(item_id, "done", None, author)

    def after_save(self, record_id: str, data: Mapping[str, Any], author: str = "") -> list[str]:
        """A save of a record (joins its transaction): each open item of an open verify task
        whose named fields are now all filled becomes done offline and a ``done`` result is
        queued, as the platform does for a pushed op. Returns the items done."""
        done = []
        for item, task in self.items_of_record(record_id):
            if task.fields and all(not is_empty(data.get(name)) for name in task.fields):
                self._result(item.id, "done", None, author)
                done.append(item.id)
        return done

    def _result(self, item_id: str, state: str, reason: str | None, author: str) -> TaskItem:
        with self._db.transaction():
            item = self.item(item_id)
            if item is None:
                raise TaskError("没有这个任务条目", "There is no such task item")
            task = self.get(item.task_id)
            if task is None or task.state == "cancelled":
                raise TaskError(
                    "这个任务已被撤销，无需再处理", "This task was cancelled; nothing to do"
                )
            if not self._pending_of(item_id):  # what it shows is the platform's state
                self._note_platform([(item_id, item.state, item.reason)])
            seq = self._db.next_seq()
            self.conn.execute(
                "INSERT INTO task_results (op_id, item_id, state, reason, edited_at, author) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (f"{self._db.device_id}:t{seq}", item_id, state, reason, self._db.hlc(), author),
            )
            shown, shown_reason = merged_state((item.state, item.reason), [(state, reason)])
            self.conn.execute(
                "UPDATE task_items SET state = ?, reason = ?, updated_at = ?, updated_by = ? "
                "WHERE id = ?",
                (shown, shown_reason, ids.now_iso(), author, item_id),
            )
        found = self.item(item_id)
        assert found is not None
        return found

    def _note_platform(self, rows: Sequence[tuple[str, str, str | None]]) -> None:
        """The platform's (item, state, reason) for items with results waiting."""
        self.conn.executemany(
            "INSERT OR REPLACE INTO task_platform_states (item_id, state, reason) VALUES (?, ?, ?)",
            rows,
        )

    def _show(self, item_id: str, platform: tuple[str, str | None] | None = None) -> None:
        """The item shows the platform's state (``platform``, else the one noted when its
        first waiting result was made) merged with the results still waiting; the note goes
        with the last of them."""
        if platform is None:
            row = self.conn.execute(
                "SELECT state, reason FROM task_platform_states WHERE item_id = ?", (item_id,)
            ).fetchone()
            if row is None:
                return  # results made before the note existed: the item stays as shown
            platform = (row[0], row[1])
        waiting = self._pending_of(item_id)
        if waiting:
            self._note_platform([(item_id, *platform)])
        else:
            self.conn.execute("DELETE FROM task_platform_states WHERE item_id = ?", (item_id,))
        self.conn.execute(
            "UPDATE task_items SET state = ?, reason = ? WHERE id = ?",
            (*merged_state(platform, waiting), item_id),
        )

    def _pending_of(self, item_id: str) -> list[tuple[str, str | None]]:
        return [
            (s, r)
            for s, r in self.conn.execute(
                "SELECT state, reason FROM task_results WHERE item_id = ? AND set_aside IS NULL "
                "ORDER BY seq",
                (item_id,),
            )
        ]

    # -- the outbox of results (``sync.replica`` sends and settles it) ----------------------

    def pending(self, after: int = 0, limit: int = 500) -> list[PendingResult]:
        """Results the platform has not answered yet, oldest first, after local seq ``after``."""
        rows = self.conn.execute(
            "SELECT seq, op_id, item_id, state, reason, edited_at, author FROM task_results "
            "WHERE set_aside IS NULL AND seq > ? ORDER BY seq LIMIT ?",
            (after, limit),
        ).fetchall()
        return [
            PendingResult(
                seq,
                {
                    "op_id": op_id,
                    "item_id": item_id,
                    "state": state,
                    "reason": reason,
                    "edited_at": edited_at,
                    "author": author[:100],
                },
            )
            for seq, op_id, item_id, state, reason, edited_at, author in rows
        ]

    def pending_count(self) -> int:
        """Results waiting to be sent."""
        row = self.conn.execute("SELECT count(*) FROM task_results WHERE set_aside IS NULL")
        return int(row.fetchone()[0])

    def answered(self, answers: Sequence[tuple[str, str]]) -> None:
        """The platform answered these results ``(op_id, item state after)``: each leaves the
        outbox, and its item shows the platform's state with the results still unanswered."""
        with self._db.transaction():
            for op_id, state in answers:
                row = self.conn.execute(
                    "SELECT item_id, reason FROM task_results WHERE op_id = ?", (op_id,)
                ).fetchone()
                if row is None:
                    continue
                item_id, reason = row
                self.conn.execute("DELETE FROM task_results WHERE op_id = ?", (op_id,))
                current = self.item(item_id)
                if current is None:
                    continue
                # The platform's state; when unable won, the reason the device shows stays.
                server_reason = (current.reason or reason) if state == "unable" else None
                self._show(item_id, (state, server_reason))

    def set_aside(self, op_id: str, code: str, message_zh: str, message_en: str) -> None:
        """The platform refused a result as a whole request (out of scope, unknown item): it
        is kept, marked, never sent again; its item shows the platform's state again."""
        with self._db.transaction():
            reason = {"code": code, "message_zh": message_zh, "message_en": message_en}
            self.conn.execute(
                "UPDATE task_results SET set_aside = ? WHERE op_id = ?",
                (json.dumps(reason, ensure_ascii=False), op_id),
            )
            row = self.conn.execute(
                "SELECT item_id FROM task_results WHERE op_id = ?", (op_id,)
            ).fetchone()
            if row is not None:
                self._show(row[0])

    def requeue_out_of_scope(self, grid: str) -> int:
        """``grid`` is the worker's again and its items are back: results the platform refused
        only because it was not (``out_of_scope``) wait to be sent again, in their order, under
        their own op ids (a whole-request 403 left nothing on the platform); each item shows
        the platform's state merged with them again. Returns how many (PROTOCOL.md §11 rule 3a,
        as for ops)."""
        with self._db.transaction():
            rows = self.conn.execute(
                "SELECT r.op_id, r.item_id, r.set_aside, i.state, i.reason FROM task_results r "
                "JOIN task_items i ON i.id = r.item_id WHERE r.set_aside IS NOT NULL "
                "AND i.grid = ? ORDER BY r.seq",
                (grid,),
            ).fetchall()
            back = [r for r in rows if json.loads(r[2]).get("code") == "out_of_scope"]
            for op_id, item_id, _reason, state, reason in back:
                if not self._pending_of(item_id):  # the item shows what the pull brought
                    self._note_platform([(item_id, state, reason)])
                self.conn.execute(
                    "UPDATE task_results SET set_aside = NULL WHERE op_id = ?", (op_id,)
                )
            for item_id in dict.fromkeys(r[1] for r in back):
                self._show(item_id)
        return len(back)

    def set_aside_results(self) -> list[tuple[str, str, str]]:
        """(op_id, item id, reason JSON) of results the platform refused."""
        return self.conn.execute(
            "SELECT op_id, item_id, set_aside FROM task_results WHERE set_aside IS NOT NULL "
            "ORDER BY seq"
        ).fetchall()
