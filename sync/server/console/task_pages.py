"""The console's task pages: the list with a form to issue a task (and a preview of the items
per grid), a task's progress (items per state per grid and per worker, an inline SVG chart),
each item's results and the record's changes made for it, and the remind/cancel/close forms.
Same functions as the JSON API (``sync.server.tasks.actions``); no JavaScript.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from app.core.filterlabels import labelled_text
from app.core.forms import Form, FormSet
from app.core.ids import is_uuid
from app.core.recordfilter import RecordFilter
from sync.server import auth, db
from sync.server.console import queries, sessions
from sync.server.console.audit import Actor
from sync.server.console.i18n import console_message, request_lang
from sync.server.console.pages import (
    MAX_UPLOAD,
    _checked_form,
    _error_page,
    _page,
    _post,
    _svc,
    _text,
    _to_login,
    render,
)
from sync.server.errors import ApiError
from sync.server.tasks import actions, assign, follow, store
from sync.server.tasks.spec import TaskSpec

router = APIRouter(prefix="/console", include_in_schema=False)
CHART_W = 300
MAX_CSV_ROWS = 100_000


def _forms(formset: FormSet, lang: str) -> list[tuple[str, str]]:
    return [(f.id, f.title.get(lang)) for f in formset.forms.values()]


def _base(request: Request, user: auth.User, chosen: list[str] | None = None) -> dict[str, Any]:
    """The list and the new-task form; its assignees are the workers of the ``chosen`` grids
    (none chosen: of every grid the caller may choose). Why not narrowed as grids are picked:
    the console runs no JavaScript, so the preview button narrows them."""
    svc = _svc(request)
    with db.read(svc.engine) as conn:
        tasks = store.listing(conn, user)
        grids = queries.grids_in_scope(conn, user)
        mine = {g["code"] for g in grids}
        workers = assign.workers_of(conn, [g for g in chosen or mine if g in mine])
    lang = request.query_params.get("lang") or request.cookies.get("lang") or "zh"
    names = {g["code"]: g["name"] for g in grids}
    for w in workers:
        w["grid_names"] = [names.get(g, g) for g in w["grids"]]
    return {"tasks": tasks, "grids": grids, "forms": _forms(svc.formset, lang), "workers": workers}


@router.get("/tasks")
def tasks_page(request: Request) -> Response:
    return _page(request, "tasks", lambda user: {**_base(request, user), "given": {}})


def _field_ids(form: Form, text: str) -> list[str]:
    """Field ids from what a person types: ids or labels, separated by commas or spaces."""
    out = []
    for part in text.replace("，", ",").replace("、", ",").split(","):
        name = part.strip()
        if not name:
            continue
        found = next(
            (f.id for f in form.fields.values() if name in (f.id, f.label.zh, f.label.en)), name
        )
        out.append(found)
    return out


async def _listed(form: FormData) -> tuple[list[str], list[str]]:
    """Record ids and ID numbers from an uploaded CSV (first column)."""
    upload = form.get("csv")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return [], []
    raw = (await upload.read(MAX_UPLOAD + 1))[: MAX_UPLOAD + 1]
    if len(raw) > MAX_UPLOAD:
        raise ApiError(413, "too_large")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("gb18030", errors="replace")
    ids: list[str] = []
    numbers: list[str] = []
    for n, row in enumerate(csv.reader(io.StringIO(text))):
        if n >= MAX_CSV_ROWS:
            break
        value = (row[0] if row else "").strip()
        if value:
            (ids if is_uuid(value.lower()) else numbers).append(value)
    if numbers and not any(c.isdigit() for c in numbers[0]):
        numbers = numbers[1:]  # a header row
    return ids, numbers


def _spec(formset: FormSet, form: FormData, listed: tuple[list[str], list[str]]) -> TaskSpec:
    form_id = _text(form, "form", "resident")
    chosen = formset.forms.get(form_id)
    grids = [g for g in form.getlist("grids") if isinstance(g, str) and g]
    buildings = [b.strip() for b in _text(form, "buildings").replace("，", ",").split(",")]
    priority = _text(form, "priority", "0")
    target = _text(form, "target")
    try:
        return TaskSpec(
            kind="collect" if _text(form, "kind") == "collect" else "verify",
            title=_text(form, "title").strip() or "-",
            instruction=_text(form, "instruction"),
            form=form_id,
            fields=_field_ids(chosen, _text(form, "fields")) if chosen else [],
            due=_text(form, "due") or None,
            priority=int(priority) if priority.isdigit() else 0,
            target=int(target) if target.isdigit() else None,
            grids=grids,
            buildings=[b for b in buildings if b],
            filter=_text(form, "filter") or None,
            record_ids=listed[0],
            id_numbers=listed[1],
            assignees=_names(form),
        )
    except ValidationError as exc:
        where = ".".join(str(x) for x in exc.errors()[0]["loc"])
        raise ApiError(422, "bad_task", detail_zh=where, detail_en=where) from None


def _names(form: FormData) -> list[str]:
    """The assignees chosen in a form's multi-select (none: every worker of the grids)."""
    names = [n for n in form.getlist("assignees") if isinstance(n, str) and n]
    _text_ok(*names)
    return names


@router.post("/tasks")
async def issue(request: Request) -> Response:
    """Preview (``action=preview``: counts per grid, nothing written) or issue a task."""
    checked = await _checked_form(request, max_part_size=MAX_UPLOAD)
    if isinstance(checked, Response):
        return checked
    user, form = checked
    svc = _svc(request)
    actor = Actor(user, sessions.client_ip(request))
    given: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf"}
    given["grids"] = [g for g in form.getlist("grids") if isinstance(g, str)]
    given["assignees"] = [n for n in form.getlist("assignees") if isinstance(n, str)]
    try:
        spec = _spec(svc.formset, form, await _listed(form))
        if _text(form, "action") == "preview":
            shown = await run_in_threadpool(actions.preview, svc.engine, svc.formset, actor, spec)
            ctx = await run_in_threadpool(_base, request, user, given["grids"])
            return render(request, user, "tasks", **ctx, given=given, preview=shown)
        made = await run_in_threadpool(actions.create, svc.engine, svc.formset, actor, spec)
    except ApiError as exc:
        if exc.status in (403, 404):
            return _error_page(request, user, exc)
        zh, en = console_message(exc.code, **exc.params)
        ctx = await run_in_threadpool(_base, request, user, given["grids"])
        message = en if request_lang(request) == "en" else zh
        return render(request, user, "tasks", 422, **ctx, given=given, error=message)
    return RedirectResponse(f"/console/tasks/{made['task']['id']}?ok=done", status_code=303)


def _bars(rows: list[dict[str, Any]], label: str) -> dict[str, Any]:
    """Stacked bars (done, unable, open) scaled to the largest row, as the overview draws."""
    top = max((r.get("done", 0) + r.get("unable", 0) + r.get("open", 0) for r in rows), default=0)
    bars = []
    for n, r in enumerate(rows):
        total = r.get("done", 0) + r.get("unable", 0) + r.get("open", 0)
        scale = CHART_W / top if top else 0
        done_w = round(r.get("done", 0) * scale)
        unable_w = round(r.get("unable", 0) * scale)
        bars.append(
            {
                "y": 8 + 28 * n,
                "label": str(r.get(label) or ""),
                "done": r.get("done", 0),
                "unable": r.get("unable", 0),
                "open": r.get("open", 0),
                "done_w": done_w,
                "unable_x": 130 + done_w,
                "unable_w": unable_w,
                "open_x": 130 + done_w + unable_w,
                "open_w": round(r.get("open", 0) * scale),
                "total": total,
            }
        )
    return {"bars": bars, "h": 16 + 28 * len(bars)}


@router.get("/tasks/{task_id}")
def task_page(request: Request, task_id: str) -> Response:
    return _page(request, "task", lambda user: _task_ctx(request, user, task_id))


def _task_ctx(request: Request, user: auth.User, task_id: str) -> dict[str, Any]:
    """What the task's page shows: progress, items, and the workers it may be assigned to."""
    state = request.query_params.get("state") or None
    grid = request.query_params.get("grid") or None
    _text_ok(task_id, state, grid)
    svc = _svc(request)
    with db.read(svc.engine) as conn:
        shown = follow.follow(conn, user, task_id)
        items = follow.items(
            conn,
            user,
            task_id,
            grid=grid,
            state=state if state in follow.STATES else None,
            limit=200,
        )
        mine = shown["task"]["grids"]  # the task's grids in the caller's scope
        workers = [w["username"] for w in assign.workers_of(conn, mine)]
    form = svc.formset.forms.get(shown["task"]["form"])
    labels = {f: form.fields[f].label for f in shown["task"]["fields"]} if form else {}
    stored = shown["task"]["spec"].get("filter")
    flt = RecordFilter.from_json(stored) if stored else None
    return {
        "f": shown,
        "filter_text": (
            labelled_text(flt, form, svc.formset, request_lang(request))
            if flt is not None and form is not None
            else ""
        ),
        "grid_names": {g["grid"]: g["name"] for g in shown["grids"]},
        "items": items,
        "state": state,
        "grid": grid,
        "labels": labels,
        "grid_chart": _bars(shown["grids"], "name"),
        "worker_chart": _bars(shown["workers"], "username"),
        # names kept that no longer hold a grid stay offered (chosen), to be taken off
        "assignable": sorted({*workers, *shown["task"]["assignees"]}),
    }


def _text_ok(*texts: str | None) -> None:
    from sync.server.console.api import plain

    plain(*texts)


@router.get("/tasks/{task_id}/items/{item_id}")
def item_page(request: Request, task_id: str, item_id: str) -> Response:
    def build(user: auth.User) -> dict[str, Any]:
        _text_ok(task_id, item_id)
        svc = _svc(request)
        with db.read(svc.engine) as conn:
            shown = follow.follow(conn, user, task_id)
            detail = follow.item_detail(conn, svc.formset, user, task_id, item_id)
        names = {g["grid"]: g["name"] for g in shown["grids"]}
        return {"task": shown["task"], "d": detail, "grid_names": names}

    return _page(request, "task_item", build)


@router.get("/tasks/{task_id}/export.{fmt}")
def export_by_get(request: Request, task_id: str, fmt: str) -> Response:
    """405: an export is audited (``task_export``); a GET may come from a prefetched link, a
    crawler or a forwarded address, and would record an export nobody made. The task page's
    buttons POST."""
    user = sessions.session_user(request)
    if user is None:
        return _to_login(request)
    page = _error_page(request, user, ApiError(405, "export_post"))
    page.headers["Allow"] = "POST"
    return page


@router.post("/tasks/{task_id}/export.{fmt}")
async def export(request: Request, task_id: str, fmt: str) -> Response:
    """The task's items and results as CSV or XLSX, audited; only from the task page's form
    (its CSRF token), never from a link."""
    checked = await _checked_form(request)
    if isinstance(checked, Response):
        return checked
    user, form = checked
    if fmt not in ("csv", "xlsx"):
        return _error_page(request, user, ApiError(404, "not_found"))
    try:
        _text_ok(task_id)
        body, media, name = await run_in_threadpool(
            actions.export,
            _svc(request).engine,
            Actor(user, sessions.client_ip(request)),
            task_id,
            fmt,
        )
    except ApiError as exc:
        return _error_page(request, user, exc)
    headers = {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"}
    return Response(body, media_type=media, headers=headers)


@router.post("/tasks/{task_id}/assignees")
async def reassign(request: Request, task_id: str) -> Response:
    """Name the workers an open task goes to (none: every worker of its grids), as the API's
    PATCH does: workers who lost it get ``tasks_withdrawn`` at their next pull. A refused name
    shows the page again with the reason, nothing changed."""
    checked = await _checked_form(request)
    if isinstance(checked, Response):
        return checked
    user, form = checked
    svc = _svc(request)
    actor = Actor(user, sessions.client_ip(request))
    try:
        _text_ok(task_id)
        change = assign.naming(_names(form))
        await run_in_threadpool(actions.edit, svc.engine, svc.formset, actor, task_id, change)
    except ApiError as exc:
        if exc.status != 422:
            return _error_page(request, user, exc)
        zh, en = console_message(exc.code, **exc.params)
        ctx = await run_in_threadpool(_task_ctx, request, user, task_id)
        message = en if request_lang(request) == "en" else zh
        return render(request, user, "task", 422, **ctx, error=message)
    return RedirectResponse(f"/console/tasks/{task_id}?ok=done", status_code=303)


# after the exports and the assignees: "{verb}" would match "export.csv" too
@router.post("/tasks/{task_id}/{verb}")
async def change(request: Request, task_id: str, verb: str) -> Response:
    """Remind, cancel or close from the task page."""

    def act(actor: Actor, _form: FormData) -> None:
        _text_ok(task_id)
        engine = _svc(request).engine
        if verb == "remind":
            actions.remind(engine, actor, task_id)
        elif verb in ("cancel", "close"):
            actions.finish(engine, actor, task_id, "cancelled" if verb == "cancel" else "closed")
        else:
            raise ApiError(404, "not_found")

    return await _post(request, act, f"tasks/{task_id}")
