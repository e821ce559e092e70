"""Task actions as the console, its JSON API and the CLI make them: one transaction each, with
its audit row (ids and field names only, never a value: PROTOCOL.md §12.1)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Engine

from app.core.forms import FormSet
from sync.server import db
from sync.server.console import audit
from sync.server.console.audit import Actor
from sync.server.tasks import follow, store
from sync.server.tasks.spec import TaskEdit, TaskSpec


def create(
    engine: Engine, formset: FormSet, actor: Actor, spec: TaskSpec, today: date | None = None
) -> dict[str, Any]:
    """Issue a task; answers its follow view (PROTOCOL.md §12) and the number of items."""
    with db.write(engine) as conn:
        row, count = store.create(conn, formset, actor.user, spec, today)
        audit.write(conn, actor, "task_create", f"task:{row['id']}", spec.fields)
    with db.read(engine) as conn:
        return {**follow.follow(conn, actor.user, row["id"]), "items": count}


def preview(
    engine: Engine, formset: FormSet, actor: Actor, spec: TaskSpec, today: date | None = None
) -> dict[str, Any]:
    with db.read(engine) as conn:
        counts = store.preview(conn, formset, actor.user, spec, today)
        names = dict(
            conn.execute(
                db.grids.select().with_only_columns(db.grids.c.code, db.grids.c.name)
            ).all()
        )
    return {
        "total": sum(counts.values()),
        "grids": [{"grid": g, "name": names.get(g, g), "count": n} for g, n in counts.items()],
    }


def edit(
    engine: Engine, formset: FormSet, actor: Actor, task_id: str, change: TaskEdit
) -> dict[str, Any]:
    with db.write(engine) as conn:
        changed = store.edit(conn, formset, actor.user, task_id, change)
        if changed:
            audit.write(conn, actor, "task_edit", f"task:{task_id}", changed)
    return shown(engine, actor, task_id)


def remind(engine: Engine, actor: Actor, task_id: str) -> dict[str, Any]:
    with db.write(engine) as conn:
        store.remind(conn, actor.user, task_id)
        audit.write(conn, actor, "task_remind", f"task:{task_id}")
    return shown(engine, actor, task_id)


def finish(engine: Engine, actor: Actor, task_id: str, state: str) -> dict[str, Any]:
    """Cancel (``cancelled``) or close (``closed``) a task by hand."""
    with db.write(engine) as conn:
        store.finish(conn, actor.user, task_id, state)
        action = "task_cancel" if state == "cancelled" else "task_close"
        audit.write(conn, actor, action, f"task:{task_id}")
    return shown(engine, actor, task_id)


def shown(engine: Engine, actor: Actor, task_id: str) -> dict[str, Any]:
    with db.read(engine) as conn:
        return follow.follow(conn, actor.user, task_id)


def export(engine: Engine, actor: Actor, task_id: str, fmt: str) -> tuple[bytes, str, str]:
    """(body, media type, file name) of the task's results; the export is audited."""
    store.manager(actor.user)
    with db.read(engine) as conn:
        rows = follow.export_rows(conn, actor.user, task_id)
    audit.record(engine, actor, "task_export", f"task:{task_id}")
    if fmt == "xlsx":
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        return follow.to_xlsx(rows), media, f"task-{task_id}.xlsx"
    return follow.to_csv(rows), "text/csv; charset=utf-8", f"task-{task_id}.csv"
