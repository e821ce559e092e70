"""What the device knows of tasks, as plain values: tasks, items, the list's views, queued
results, and the merge rule an item's shown state follows (PROTOCOL.md §13.1).

Part of ``app.core.store.tasks`` (import the names from there or from ``app.core.store``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

UNABLE_REASONS: tuple[tuple[str, str], ...] = (
    ("查无此人", "No such person"),
    ("拒绝配合", "Refused to cooperate"),
    ("已迁出", "Moved out"),
    ("房屋拆除", "House demolished"),
)
MAX_REASON_CHARS = 200
_RANK = {"open": 0, "unable": 1, "done": 2}


class TaskError(ValueError):
    """A task action that cannot be done as asked; the message says what to fix (zh, en)."""

    def __init__(self, message_zh: str, message_en: str) -> None:
        super().__init__(f"{message_zh} / {message_en}")
        self.message_zh, self.message_en = message_zh, message_en


@dataclass(frozen=True)
class Task:
    """A task as the platform issued it (``PROTOCOL.md`` "Tasks")."""

    id: str
    kind: str  # verify | collect
    title: str
    form: str
    fields: tuple[str, ...]
    state: str  # open | closed | cancelled
    issued_at: str
    updated_at: str
    instruction: str = ""
    due: str | None = None
    priority: int = 0
    grids: tuple[str, ...] = ()
    issued_by: str = ""
    target: int | None = None


@dataclass(frozen=True)
class TaskItem:
    """One item as the platform sent it."""

    id: str
    task_id: str
    record_id: str
    state: str  # open | done | unable
    updated_at: str
    grid: str | None = None
    reason: str | None = None
    updated_by: str | None = None


@dataclass(frozen=True)
class TaskView:
    """A task with its progress as the 我的任务 list shows it."""

    task: Task
    total: int
    done: int
    unable: int
    overdue: bool

    @property
    def open(self) -> int:
        return max(0, self.total - self.done - self.unable)

    @property
    def finished(self) -> int:
        return self.done + self.unable


@dataclass(frozen=True)
class ItemView:
    """An item as the task's door-to-door list shows it: where, what, and its state."""

    id: str
    record_id: str
    title: str
    building: str
    house: str
    state: str
    reason: str | None
    pending: bool  # this device's result is not on the platform yet


@dataclass(frozen=True)
class PendingResult:
    """One queued result, in its wire shape (``sync.protocol.TaskResult``)."""

    seq: int
    wire: dict[str, Any] = field(default_factory=dict)

    @property
    def op_id(self) -> str:
        return str(self.wire["op_id"])


def merged_state(
    server: tuple[str, str | None], results: Iterable[tuple[str, str | None]]
) -> tuple[str, str | None]:
    """The state an item shows: the platform's, then each unanswered result in order, by the
    platform's merge (done wins whatever the order; the later of two of the same kind)."""
    state, reason = server
    for result_state, result_reason in results:
        if _RANK[result_state] >= _RANK[state]:
            state, reason = result_state, result_reason
    return state, (reason if state == "unable" else None)


def check_reason(reason: str | None) -> str:
    """An "unable" reason: one of the presets or free text of at most 200 characters."""
    text = (reason or "").strip()
    if not text:
        raise TaskError(
            "请选择或填写无法完成的原因", "Pick or type the reason the item cannot be done"
        )
    if len(text) > MAX_REASON_CHARS:
        raise TaskError(
            f"原因最多 {MAX_REASON_CHARS} 字，请缩短（现 {len(text)} 字）",
            f"The reason is at most {MAX_REASON_CHARS} characters; shorten it (now {len(text)})",
        )
    return text


TASK_COLUMNS = (
    "id, kind, title, form, fields, state, issued_at, updated_at, instruction, due, priority, "
    "grids, issued_by, target"
)


def prefixed_columns(alias: str) -> str:
    return ", ".join(f"{alias}.{c.strip()}" for c in TASK_COLUMNS.split(","))


def task_from_row(row: Sequence[Any]) -> Task:
    i, kind, title, form, fields, state, issued_at, updated_at, instr, due, prio, grids, by, tgt = (
        row
    )
    return Task(
        i,
        kind,
        title,
        form,
        tuple(json.loads(fields)),
        state,
        issued_at,
        updated_at,
        instr,
        due,
        int(prio),
        tuple(json.loads(grids)),
        by,
        tgt,
    )


def iso_seconds(stamp: str) -> str:
    """A platform timestamp cut to the form the device's ``created_at`` uses for comparing."""
    return stamp.rstrip("Z")[:19]
