"""Following a task in the console: items per state per grid and per worker, each item's
results and the record's changes made for it, and the results as CSV/XLSX.

Every read is cut to the caller's scope: a supervisor following an admin's task over several
communities sees their own grids' items only.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from app.core.forms import FormSet
from sync.server import db
from sync.server.auth import User
from sync.server.errors import ApiError
from sync.server.tasks import store

_I, _R, _G = db.task_items.c, db.task_results.c, db.grids.c
STATES = ("open", "done", "unable")
MAX_ITEMS = 500
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _scoped(stmt: Any, user: User) -> Any:
    return stmt if user.grids is None else stmt.where(_I.grid.in_(sorted(user.grids)))


def overdue(task: dict[str, Any], today: date | None = None) -> bool:
    due = task.get("due")
    return task["state"] == "open" and bool(due) and str(due) < (today or date.today()).isoformat()


def follow(conn: Connection, user: User, task_id: str) -> dict[str, Any]:
    """The task, its item counts per state, per grid and per worker (done/unable by who)."""
    task = store.get_visible(conn, user, task_id)
    wire = store.wire(task, task["grids"], task["assignees"], user)
    per_grid: dict[str, dict[str, int]] = {}
    stmt = _scoped(
        select(_I.grid, _I.state, func.count()).where(_I.task_id == task_id), user
    ).group_by(_I.grid, _I.state)
    for grid, state, n in conn.execute(stmt):
        per_grid.setdefault(grid, dict.fromkeys(STATES, 0))[state] = int(n)
    names = dict(conn.execute(select(_G.code, _G.name).where(_G.code.in_(sorted(per_grid)))).all())
    workers: dict[str, dict[str, int]] = {}
    stmt = _scoped(
        select(_I.updated_by, _I.state, func.count()).where(
            _I.task_id == task_id, _I.state != "open", _I.updated_by.is_not(None)
        ),
        user,
    ).group_by(_I.updated_by, _I.state)
    for who, state, n in conn.execute(stmt):
        workers.setdefault(who, {"done": 0, "unable": 0})[state] = int(n)
    totals = dict.fromkeys(STATES, 0)
    for counts in per_grid.values():
        for state in STATES:
            totals[state] += counts[state]
    return {
        "task": {**wire, "overdue": overdue(task), "spec": db.loads(task["spec"]) or {}},
        "counts": totals,
        "collected": collected(conn, user, task) if task["kind"] == "collect" else None,
        "grids": [{"grid": g, "name": names.get(g, g), **c} for g, c in sorted(per_grid.items())],
        "workers": [{"username": w, **c} for w, c in sorted(workers.items())],
    }


def collected(conn: Connection, user: User, task: dict[str, Any]) -> int:
    """A collect task's progress: live records of its form created in its grids (those in the
    caller's scope) since it was issued."""
    r = db.records.c
    grids = [g for g in task["grids"] if user.in_scope(g)]
    if not grids:
        return 0
    stmt = select(func.count()).where(
        r.form == task["form"],
        r.grid.in_(grids),
        r.deleted.is_(False),
        r.created_at >= task["issued_at"],
    )
    return int(conn.execute(stmt).scalar_one())


def items(
    conn: Connection,
    user: User,
    task_id: str,
    *,
    grid: str | None = None,
    state: str | None = None,
    limit: int = MAX_ITEMS,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Items in the caller's scope with their record's title, by grid and state (the order of
    the task's index: the first page of 100 000 items needs no sort)."""
    store.get_visible(conn, user, task_id)
    r = db.records.c
    stmt = _scoped(
        select(
            _I.id,
            _I.record_id,
            _I.grid,
            _I.state,
            _I.reason,
            _I.updated_at,
            _I.updated_by,
            r.title,
        )
        .select_from(db.task_items.outerjoin(db.records, r.id == _I.record_id))
        .where(_I.task_id == task_id),
        user,
    )
    if grid:
        stmt = stmt.where(_I.grid == grid)
    if state:
        stmt = stmt.where(_I.state == state)
    stmt = stmt.order_by(_I.grid, _I.state, _I.id).limit(limit).offset(offset)
    return [
        {
            "id": x.id,
            "record_id": x.record_id,
            "title": x.title or "",
            "grid": x.grid,
            "state": x.state,
            "reason": x.reason,
            "updated_at": x.updated_at,
            "updated_by": x.updated_by,
        }
        for x in conn.execute(stmt)
    ]


def item_detail(
    conn: Connection, formset: FormSet, user: User, task_id: str, item_id: str
) -> dict[str, Any]:
    """One item: its results (every one, oldest first) and the record's versions written since
    the task was issued, with what changed (sensitive values masked)."""
    from sync.server.console import queries  # console reads: masking and labels

    task = store.get_visible(conn, user, task_id)
    item = conn.execute(
        select(db.task_items).where(_I.id == item_id, _I.task_id == task_id)
    ).first()
    if item is None or not user.in_scope(item.grid):
        raise ApiError(404, "not_found")
    results = [
        {
            "state": x.state,
            "reason": x.reason,
            "source": x.source,
            "username": x.username,
            "device_id": x.device_id,
            "edited_at": x.edited_at,
            "at": x.at,
            "record_version": x.record_version,
        }
        for x in conn.execute(select(db.task_results).where(_R.item_id == item_id).order_by(_R.id))
    ]
    changes = queries.changes_since(conn, formset, item.record_id, task["issued_at"])
    return {
        "item": {
            "id": item.id,
            "record_id": item.record_id,
            "grid": item.grid,
            "state": item.state,
            "reason": item.reason,
            "updated_at": item.updated_at,
            "updated_by": item.updated_by,
        },
        "fields": db.loads(task["fields"]) or [],
        "results": results,
        "changes": changes,
    }


# -- export ---------------------------------------------------------------------------------

HEADER = ("item_id", "record_id", "title", "grid", "state", "reason", "updated_at", "updated_by")
HEADER_ZH = ("条目", "记录", "名称", "网格", "状态", "原因", "更新时间", "更新人")


def safe_cell(value: Any) -> Any:
    """A cell a spreadsheet will not run: text starting with = + - @ TAB CR gets a leading '."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def export_rows(conn: Connection, user: User, task_id: str) -> list[list[Any]]:
    rows: list[list[Any]] = [[f"{zh} {en}" for zh, en in zip(HEADER_ZH, HEADER, strict=True)]]
    offset = 0
    while True:
        page = items(conn, user, task_id, limit=5000, offset=offset)
        rows.extend([safe_cell(x[k]) for k in HEADER_KEYS] for x in page)
        if len(page) < 5000:
            return rows
        offset += 5000


HEADER_KEYS = ("id", "record_id", "title", "grid", "state", "reason", "updated_at", "updated_by")


def to_csv(rows: list[list[Any]]) -> bytes:
    """UTF-8 with a BOM, so Excel opens Chinese text right."""
    out = io.StringIO()
    writer = csv.writer(out)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return ("\ufeff" + out.getvalue()).encode()


def to_xlsx(rows: list[list[Any]]) -> bytes:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("results")
    for row in rows:
        sheet.append(["" if v is None else v for v in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
