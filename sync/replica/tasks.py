"""The task side of sync state: pulled tasks and items in, this device's results out.

Part of ``sync.replica`` (import it from there). Pulled tasks and items are written inside the
pull's transaction (with the records and the cursor); a result leaves the device's outbox only
in the transaction that records the platform's answer, so a sync killed mid-push sends it again
and the platform answers ``duplicate``.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.core.store import PendingResult, Store, Task
from sync.protocol import PulledTask, PulledTaskItem, TaskResultOutcome


def apply_tasks(store: Store, tasks: Sequence[PulledTask], items: Sequence[PulledTaskItem]) -> int:
    """Take a pulled chunk's tasks and items (joins the pull's transaction); returns how many."""
    if tasks:
        store.tasks.put_tasks([_task(t) for t in tasks])
    if items:
        store.tasks.put_item_rows(
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
    return len(tasks) + len(items)


def withdraw_tasks(store: Store, grids_left: Sequence[str], task_ids: Sequence[str]) -> int:
    """Take off the device the tasks and items that no longer reach this worker (joins the
    pull's transaction; PROTOCOL.md §13.2); returns the tasks that went."""
    gone = store.tasks.leave_grids(grids_left) if grids_left else 0
    return gone + (store.tasks.withdraw(task_ids) if task_ids else 0)


def _task(t: PulledTask) -> Task:
    return Task(
        id=t.id,
        kind=t.kind,
        title=t.title,
        form=t.form,
        fields=tuple(t.fields),
        state=t.state,
        issued_at=t.issued_at,
        updated_at=t.updated_at,
        instruction=t.instruction,
        due=t.due,
        priority=t.priority,
        grids=tuple(t.grids),
        issued_by=t.issued_by,
        target=t.target,
    )


def next_results(store: Store, after: int, limit: int) -> list[PendingResult]:
    """The next unanswered results after local sequence ``after``, oldest first."""
    with store.transaction():
        return store.tasks.pending(after, limit)


def pending_result_count(store: Store) -> int:
    """Results waiting to be sent."""
    with store.transaction():
        return store.tasks.pending_count()


def record_task_answers(
    store: Store, sent: Sequence[PendingResult], answers: Sequence[TaskResultOutcome]
) -> int:
    """Persist the platform's answers to the results sent, in one transaction; returns how
    many were answered. A result without an answer stays queued (sent again next time)."""
    wanted = {r.op_id for r in sent}
    pairs = [(a.op_id, a.state) for a in answers if a.op_id in wanted]
    store.tasks.answered(pairs)
    return len(pairs)


def set_aside_result(
    store: Store, result: PendingResult, code: str, message_zh: str, message_en: str
) -> None:
    """A whole-request 4xx named this result: keep it, marked, and send the others."""
    store.tasks.set_aside(result.op_id, code, message_zh, message_en)
