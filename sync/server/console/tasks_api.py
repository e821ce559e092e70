"""Tasks in the console's JSON API (PROTOCOL.md §12, §13): issue with a preview, follow, each
item's results, edit, remind, cancel, close and export. The console pages call the same
functions (``sync.server.tasks.actions``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from sync.server import db
from sync.server.console.api import _ERRORS, Caller, plain
from sync.server.tasks import actions, follow
from sync.server.tasks.spec import TaskEdit, TaskSpec

router = APIRouter(prefix="/v1/console/tasks", tags=["console", "tasks"])
TaskId = Annotated[str, Path(min_length=1, max_length=64)]


def _svc(request: Request) -> Any:
    return request.app.state.service


def _plain_spec(spec: TaskSpec | TaskEdit) -> None:
    texts: list[str | None] = []
    for value in spec.model_dump().values():
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, list):
            texts.extend(v for v in value if isinstance(v, str))
    plain(*texts)


@router.get("", responses=_ERRORS)
def list_tasks(
    request: Request,
    caller: Caller,
    state: Annotated[Literal["open", "closed", "cancelled"] | None, Query()] = None,
) -> dict[str, Any]:
    """Tasks the caller may see (workers: those reaching their grids), newest first."""
    from sync.server.tasks import store

    with db.read(_svc(request).engine) as conn:
        return {"tasks": store.listing(conn, caller.user, state)}


@router.post("/preview", responses=_ERRORS)
def preview(request: Request, caller: Caller, body: TaskSpec) -> dict[str, Any]:
    """How many items the task would get, per grid; nothing is written."""
    _plain_spec(body)
    svc = _svc(request)
    return actions.preview(svc.engine, svc.formset, caller, body)


@router.post("", responses=_ERRORS)
def create(request: Request, caller: Caller, body: TaskSpec) -> dict[str, Any]:
    """Issue a task (supervisor, admin): its items are chosen now and numbered for pulls."""
    _plain_spec(body)
    svc = _svc(request)
    return actions.create(svc.engine, svc.formset, caller, body)


@router.get("/{task_id}", responses=_ERRORS)
def show(request: Request, caller: Caller, task_id: TaskId) -> dict[str, Any]:
    """The task and its items per state, per grid and per worker (the caller's scope)."""
    plain(task_id)
    return actions.shown(_svc(request).engine, caller, task_id)


@router.get("/{task_id}/items", responses=_ERRORS)
def items(
    request: Request,
    caller: Caller,
    task_id: TaskId,
    grid: Annotated[str | None, Query(max_length=64)] = None,
    state: Annotated[Literal["open", "done", "unable"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=follow.MAX_ITEMS)] = follow.MAX_ITEMS,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, Any]:
    """Items in the caller's scope with their record's title, by grid and state."""
    plain(task_id, grid)
    with db.read(_svc(request).engine) as conn:
        found = follow.items(
            conn, caller.user, task_id, grid=grid, state=state, limit=limit, offset=offset
        )
    return {"items": found}


@router.get("/{task_id}/items/{item_id}", responses=_ERRORS)
def item(
    request: Request,
    caller: Caller,
    task_id: TaskId,
    item_id: Annotated[str, Path(min_length=1, max_length=64)],
) -> dict[str, Any]:
    """One item: every result it got and the record's changes since the task was issued."""
    plain(task_id, item_id)
    svc = _svc(request)
    with db.read(svc.engine) as conn:
        return follow.item_detail(conn, svc.formset, caller.user, task_id, item_id)


@router.patch("/{task_id}", responses=_ERRORS)
def edit(request: Request, caller: Caller, task_id: TaskId, body: TaskEdit) -> dict[str, Any]:
    """Change title, instruction, due date, priority, fields or assignees; devices get it."""
    plain(task_id)
    _plain_spec(body)
    svc = _svc(request)
    return actions.edit(svc.engine, svc.formset, caller, task_id, body)


@router.post("/{task_id}/remind", responses=_ERRORS)
def remind(request: Request, caller: Caller, task_id: TaskId) -> dict[str, Any]:
    """Raise the priority by one (at most urgent) and send the task again."""
    plain(task_id)
    return actions.remind(_svc(request).engine, caller, task_id)


@router.post("/{task_id}/cancel", responses=_ERRORS)
def cancel(request: Request, caller: Caller, task_id: TaskId) -> dict[str, Any]:
    plain(task_id)
    return actions.finish(_svc(request).engine, caller, task_id, "cancelled")


@router.post("/{task_id}/close", responses=_ERRORS)
def close(request: Request, caller: Caller, task_id: TaskId) -> dict[str, Any]:
    plain(task_id)
    return actions.finish(_svc(request).engine, caller, task_id, "closed")


@router.get("/{task_id}/export", responses=_ERRORS)
def export(
    request: Request,
    caller: Caller,
    task_id: TaskId,
    format: Annotated[Literal["csv", "xlsx"], Query()] = "csv",  # noqa: A002
) -> Response:
    """The items' results as CSV (UTF-8 with BOM) or XLSX; formula-like cells are quoted."""
    plain(task_id)
    body, media, name = actions.export(_svc(request).engine, caller, task_id, format)
    return Response(
        body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )
