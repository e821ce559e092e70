"""Issuing and changing tasks, and numbering every change from the one change counter.

Why numbers are taken here, at the end of each writing transaction (as ``tx.Tx.take_numbers``
does for records, through numbering.py): a pull that reaches a number must already see the
task or item it numbers, or a device would skip it for good (PROTOCOL.md §8, §13.2).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from app.core.forms import FormSet
from app.core.ids import uuid7
from sync.server import bulk, db, numbering
from sync.server.auth import User, iso, now
from sync.server.errors import ApiError
from sync.server.tasks import assign
from sync.server.tasks import select as choose
from sync.server.tasks import spec as specs
from sync.server.tasks.spec import TaskEdit, TaskSpec

_T, _I, _G, _A = db.tasks.c, db.task_items.c, db.task_grids.c, db.task_assignees.c
MANAGERS = ("supervisor", "admin")


def manager(user: User) -> None:
    """Workers only look at tasks: issuing and changing them needs a supervisor or an admin."""
    if user.role not in MANAGERS:
        raise ApiError(403, "forbidden")


def create(
    conn: Connection, formset: FormSet, user: User, spec: TaskSpec, today: date | None = None
) -> tuple[dict[str, Any], int]:
    """Issue a task: check it, choose its items, write them numbered. Returns the task row (as
    ``load`` gives it) and the number of items."""
    manager(user)
    form = specs.form_of(formset, spec.form)
    fields = specs.check_fields(form, spec.fields)
    due = specs.check_due(spec.due)
    flt = specs.parse(formset, form, spec.filter)
    grids = choose.task_grids(user, spec)
    if spec.kind == "verify":
        picked = choose.pick(conn, formset, user, spec, flt, today or date.today())
    else:
        picked = []
        if grids is None:
            raise ApiError(
                422,
                "bad_task",
                field="grids",
                detail_zh="新增记录任务须选择网格",
                detail_en="a collect task needs its grids",
            )
    task_grid_set = sorted({p.grid for p in picked} | set(spec.grids or (grids or [])))
    assign.check(conn, user, spec.assignees, task_grid_set)
    at = iso(now())
    task_id = uuid7()
    stored_spec = spec.model_dump(exclude={"record_ids", "id_numbers"})
    stored_spec["filter"] = flt.to_json() if flt else None
    stored_spec["listed"] = len(spec.record_ids) + len(spec.id_numbers)
    row = {
        "id": task_id,
        "kind": spec.kind,
        "title": spec.title.strip(),
        "instruction": spec.instruction.strip(),
        "form": form.id,
        "fields": db.dumps(fields),
        "spec": db.dumps(stored_spec),
        "due": due,
        "priority": spec.priority,
        "state": "open",
        "target": spec.target if spec.kind == "collect" else None,
        "community": user.community if user.role == "supervisor" else None,
        "issued_at": at,
        "issued_by": user.username,
        "updated_at": at,
        "updated_by": user.username,
    }
    if task_grid_set:
        conn.execute(
            insert(db.task_grids), [{"task_id": task_id, "grid": g} for g in task_grid_set]
        )
    assignees = sorted(set(spec.assignees))
    if assignees:
        conn.execute(
            insert(db.task_assignees), [{"task_id": task_id, "username": u} for u in assignees]
        )
    # numbers last: the task first, so a device never gets an item before its task
    first = numbering.take(conn, 1 + len(picked))
    conn.execute(insert(db.tasks), [{**row, "seq": first}])
    ids = item_ids(len(picked))
    # in record order: the items' ids and numbers follow it, so every index of task_items
    # (record_id's too) is appended to rather than written all over (100 000 items; grid by
    # grid measured no better for a grid's pull and gave back most of the gain)
    picked.sort(key=lambda p: p.id)
    _insert_items(
        conn,
        (
            (ids[n], task_id, p.id, p.grid, "open", None, at, None, first + 1 + n)
            for n, p in enumerate(picked)
        ),
    )
    return {**row, "seq": first}, len(picked)


def item_ids(count: int) -> list[str]:
    """``count`` UUIDv7 ids in one go: one ``uuid7`` and the next values of its random tail
    (unique: the head holds the time and a random part; 100 000 ``uuid7`` calls took 2 s)."""
    base = uuid.UUID(uuid7()).int & ~((1 << 40) - 1)
    head = str(uuid.UUID(int=base))[:-10]  # the tail's 40 bits are its last 10 hex digits
    return [f"{head}{n:010x}" for n in range(count)]


_ITEM_COLUMNS = (
    "id",
    "task_id",
    "record_id",
    "grid",
    "state",
    "reason",
    "updated_at",
    "updated_by",
    "seq",
)


def _insert_items(conn: Connection, rows: Iterable[tuple[Any, ...]]) -> None:
    """Item tuples in bulk (a task may have 100 000 items): COPY on PostgreSQL."""
    bulk.insert_tuples(conn, "task_items", _ITEM_COLUMNS, rows)


def preview(
    conn: Connection, formset: FormSet, user: User, spec: TaskSpec, today: date | None = None
) -> dict[str, int]:
    """Items per grid the task would get, without writing anything."""
    manager(user)
    form = specs.form_of(formset, spec.form)
    specs.check_fields(form, spec.fields)
    flt = specs.parse(formset, form, spec.filter)
    if spec.kind != "verify":
        return {g: 0 for g in choose.task_grids(user, spec) or []}
    return choose.counts(choose.pick(conn, formset, user, spec, flt, today or date.today()))


# -- reading ------------------------------------------------------------------------------------


def load(conn: Connection, task_id: str, *, lock: bool = False) -> dict[str, Any] | None:
    stmt = select(db.tasks).where(_T.id == task_id)
    if lock:
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).mappings().first()
    return dict(row) if row is not None else None


def grids_of(conn: Connection, task_ids: Sequence[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {t: [] for t in task_ids}
    for i in range(0, len(task_ids), 500):
        part = list(task_ids[i : i + 500])
        for r in conn.execute(select(_G.task_id, _G.grid).where(_G.task_id.in_(part))):
            out[r.task_id].append(r.grid)
    return {t: sorted(g) for t, g in out.items()}


def assignees_of(conn: Connection, task_ids: Sequence[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {t: [] for t in task_ids}
    for i in range(0, len(task_ids), 500):
        part = list(task_ids[i : i + 500])
        for r in conn.execute(select(_A.task_id, _A.username).where(_A.task_id.in_(part))):
            out[r.task_id].append(r.username)
    return {t: sorted(u) for t, u in out.items()}


def visible(user: User, grids: Iterable[str], assignees: Iterable[str]) -> bool:
    """A task reaches a caller who has one of its grids (admins: all); among workers, only
    those it names when it names any (PROTOCOL.md §13.1). Why supervisors see it whoever it
    names: they follow the work of their community's grids. A name alone gives nothing: a
    worker named who no longer has the grid would only get a task they cannot work on."""
    if user.grids is None:
        return True
    if not any(g in user.grids for g in grids):
        return False
    names = set(assignees)
    return user.role != "worker" or not names or user.username in names


def wire(row: Mapping[str, Any], grids: Iterable[str], assignees: Sequence[str], user: User):
    """The pull shape of a task (PROTOCOL.md §13.2): grids cut to the caller's scope."""
    return {
        "id": row["id"],
        "kind": row["kind"],
        "title": row["title"],
        "instruction": row["instruction"],
        "form": row["form"],
        "fields": db.loads(row["fields"]) or [],
        "due": row["due"],
        "priority": int(row["priority"]),
        "state": row["state"],
        "grids": [g for g in grids if user.in_scope(g)],
        "assignees": list(assignees),
        "issued_at": row["issued_at"],
        "issued_by": row["issued_by"],
        "updated_at": row["updated_at"],
        "target": row["target"],
    }


def get_visible(conn: Connection, user: User, task_id: str) -> dict[str, Any]:
    """The task if the caller may see it, else 404 (ids outside one's scope are not probed)."""
    row = load(conn, task_id)
    if row is None:
        raise ApiError(404, "not_found")
    grids = grids_of(conn, [task_id])[task_id]
    assignees = assignees_of(conn, [task_id])[task_id]
    if not visible(user, grids, assignees):
        raise ApiError(404, "not_found")
    return {**row, "grids": grids, "assignees": assignees}


def listing(conn: Connection, user: User, state: str | None = None) -> list[dict[str, Any]]:
    """Tasks the caller may see, newest first, with item counts per state."""
    stmt = select(db.tasks).order_by(_T.issued_at.desc())
    if state:
        stmt = stmt.where(_T.state == state)
    rows = [dict(r) for r in conn.execute(stmt).mappings()]
    ids = [r["id"] for r in rows]
    grids, assignees = grids_of(conn, ids), assignees_of(conn, ids)
    shown = [r for r in rows if visible(user, grids[r["id"]], assignees[r["id"]])]
    totals = item_counts(conn, [r["id"] for r in shown], user.grids)
    return [
        {
            **wire(r, grids[r["id"]], assignees[r["id"]], user),
            "counts": totals.get(r["id"], {"open": 0, "done": 0, "unable": 0}),
        }
        for r in shown
    ]


def item_counts(
    conn: Connection, task_ids: Sequence[str], grids: Iterable[str] | None = None
) -> dict[str, dict[str, int]]:
    """Items per state of each task; ``grids``: only the items of these grids (a caller's
    scope, as the task's page counts them; None: all)."""
    out: dict[str, dict[str, int]] = {}
    scope = sorted(grids) if grids is not None else None
    for i in range(0, len(task_ids), 500):
        part = list(task_ids[i : i + 500])
        stmt = select(_I.task_id, _I.state, func.count()).where(_I.task_id.in_(part))
        if scope is not None:
            stmt = stmt.where(_I.grid.in_(scope))
        stmt = stmt.group_by(_I.task_id, _I.state)
        for task_id, state, n in conn.execute(stmt):
            out.setdefault(task_id, {"open": 0, "done": 0, "unable": 0})[state] = int(n)
    return out


# -- changes -----------------------------------------------------------------------------------


def _editable(conn: Connection, user: User, task_id: str) -> dict[str, Any]:
    manager(user)
    task = get_visible(conn, user, task_id)
    if user.role == "supervisor" and not all(user.in_scope(g) for g in task["grids"]):
        raise ApiError(403, "forbidden")  # a task reaching beyond one's community
    locked = load(conn, task_id, lock=True)
    assert locked is not None
    if locked["state"] != "open":
        raise ApiError(409, "task_closed")
    return {**task, **locked}


def _renumber(conn: Connection, task_id: str, user: User, values: dict[str, Any]) -> None:
    values = {**values, "updated_at": iso(now()), "updated_by": user.username}
    number = numbering.take(conn, 1)
    conn.execute(update(db.tasks).where(_T.id == task_id).values(**values, seq=number))


def edit(
    conn: Connection, formset: FormSet, user: User, task_id: str, change: TaskEdit
) -> list[str]:
    """Change title, instruction, due date, priority, fields or assignees; returns the names of
    what changed (for the audit row)."""
    task = _editable(conn, user, task_id)
    values: dict[str, Any] = {}
    if change.title is not None:
        values["title"] = change.title.strip()
    if change.instruction is not None:
        values["instruction"] = change.instruction.strip()
    if change.due is not None:
        values["due"] = specs.check_due(change.due)
    if change.priority is not None:
        values["priority"] = change.priority
    if change.fields is not None:
        form = specs.form_of(formset, task["form"])
        values["fields"] = db.dumps(specs.check_fields(form, change.fields))
    renamed = change.assignees is not None and sorted(set(change.assignees)) != task["assignees"]
    if change.assignees is not None:
        # names kept may have lost the grids since (they then receive nothing): only new ones
        # are checked, so a task stays editable
        added = set(change.assignees) - set(task["assignees"])
        assign.check(conn, user, added, task["grids"])
        conn.execute(delete(db.task_assignees).where(_A.task_id == task_id))
        names = sorted(set(change.assignees))
        if names:
            conn.execute(
                insert(db.task_assignees), [{"task_id": task_id, "username": u} for u in names]
            )
    changed = sorted({*values, *(["assignees"] if change.assignees is not None else [])})
    if changed:
        _renumber(conn, task_id, user, values)
    if renamed:
        _resend_items(conn, task_id)
    return changed


def _resend_items(conn: Connection, task_id: str) -> None:
    """New numbers for every item of a task whose assignees changed, after the task's own.

    Why: a worker the task reaches now (named, or no one named any more) has a cursor past the
    items' numbers; the pull left them out while the task named others (PROTOCOL.md §13.2).
    Devices that had them take the same state again."""
    ids = conn.execute(select(_I.id).where(_I.task_id == task_id).order_by(_I.seq)).scalars()
    items = list(ids.all())
    if not items:
        return
    first = numbering.take(conn, len(items))
    conn.execute(
        update(db.task_items).where(_I.id == bindparam("b_id")).values(seq=bindparam("b_seq")),
        [{"b_id": item, "b_seq": first + n} for n, item in enumerate(items)],
    )


def remind(conn: Connection, user: User, task_id: str) -> int:
    """Raise the priority by one (at most urgent) and send the task to devices again."""
    task = _editable(conn, user, task_id)
    priority = min(int(task["priority"]) + 1, 2)
    _renumber(conn, task_id, user, {"priority": priority})
    return priority


def finish(conn: Connection, user: User, task_id: str, state: str) -> None:
    """Cancel or close a task by hand."""
    if state not in ("cancelled", "closed"):
        raise ValueError(state)
    _editable(conn, user, task_id)
    _renumber(conn, task_id, user, {"state": state})


def close_finished(conn: Connection, task_ids: Iterable[str], at: str, by: str) -> list[str]:
    """Open verify tasks among ``task_ids`` with no open item left: closed (numbered by the
    caller's ``numbering.take``). Returns the ids closed."""
    ids = sorted(set(task_ids))
    if not ids:
        return []
    open_tasks = conn.execute(
        select(_T.id).where(_T.id.in_(ids), _T.state == "open", _T.kind == "verify")
    ).scalars()
    closed = []
    for task_id in open_tasks:
        left = conn.execute(
            select(_I.id).where(_I.task_id == task_id, _I.state == "open").limit(1)
        ).first()
        if left is None:
            closed.append(task_id)
    if closed:
        conn.execute(
            update(db.tasks)
            .where(_T.id == bindparam("b_id"))
            .values(state="closed", updated_at=at, updated_by=by),
            [{"b_id": t} for t in closed],
        )
    return closed
