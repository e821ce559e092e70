"""The console's department pages: a department's own page (grants, downloads, statistics,
requests, what it took) under ``/console/dept``, and the admin's ``/console/departments``
(requests to approve, refuse or collect; grants; API keys; who took what).

A department account may open only ``/console/dept...`` (``pages.DEPT_PAGES``); another
department's grant reads as no grant (403), exactly as in the API.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from app.core.messages import pick
from sync.server import admin, auth, db
from sync.server.console import audit, sessions
from sync.server.console.audit import Actor
from sync.server.console.dept_views import admin_view, department_view
from sync.server.console.i18n import console_message, request_lang
from sync.server.console.pages import (
    _back,
    _checked_form,
    _error_page,
    _page,
    _post,
    _svc,
    _text,
    render,
)
from sync.server.dept import asks, collect, files, grants, keys, stats
from sync.server.dept.trace import Taker
from sync.server.errors import ApiError

router = APIRouter(prefix="/console", include_in_schema=False)


def _codes(text: str) -> list[str]:
    return [c.strip() for c in text.replace("，", ",").split(",") if c.strip()]


def _asked_fields(form: FormData) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key in form:
        if key.startswith("f:") and _text(form, key):
            form_id, _, name = key[2:].partition(".")
            out.setdefault(form_id, []).append(name)
    return out


def _granted_fields(form: FormData) -> dict[str, dict[str, str]] | None:
    """The admin's narrowing: ``m:<form>.<field>`` = full | masked | out (None: as asked)."""
    out: dict[str, dict[str, str]] = {}
    seen = False
    for key in form:
        if key.startswith("m:"):
            seen = True
            mode = _text(form, key)
            form_id, _, name = key[2:].partition(".")
            if mode in grants.MODES:
                out.setdefault(form_id, {})[name] = mode
    return out if seen else None


def _require_admin(actor: Actor) -> None:
    if not actor.user.is_admin:
        raise ApiError(403, "forbidden")


def _taker(user: auth.User, request: Request) -> Taker:
    return Taker(user.department or "", username=user.username, ip=sessions.client_ip(request))


# -- the department's page -------------------------------------------------------------------


@router.get("/dept")
def dept_page(request: Request) -> Response:
    def build(user: auth.User) -> dict[str, Any]:
        if not user.is_department:
            raise ApiError(403, "forbidden")
        svc = _svc(request)
        return department_view(svc.engine, svc.formset, user)

    return _page(request, "dept", build)


@router.post("/dept/requests")
async def ask(request: Request) -> Response:
    """A request; a mistake (an unreadable filter…) is shown on the page with what to fix."""
    checked = await _checked_form(request)
    if isinstance(checked, Response):
        return checked
    user, form = checked
    if not user.is_department or not user.department:
        return _error_page(request, user, ApiError(403, "forbidden"))
    actor = Actor(user, sessions.client_ip(request))
    svc = _svc(request)
    try:
        await run_in_threadpool(_ask, svc, actor, form)
    except ApiError as exc:
        if exc.status != 422:
            return _error_page(request, user, exc)
        lang = request_lang(request)
        zh, en = console_message(exc.code, **exc.params)
        view = department_view(svc.engine, svc.formset, user)
        return render(request, user, "dept", 422, **view, error=pick(lang, zh, en))
    return _back(request, "dept", ok="done")


def _ask(svc: Any, actor: Actor, form: FormData) -> None:
    user = actor.user
    spec = asks.Ask(
        department=user.department or "",
        username=user.username,
        fields=_asked_fields(form),
        purpose=_text(form, "purpose"),
        until=_text(form, "until"),
        communities=_codes(_text(form, "communities")),
        grids=_codes(_text(form, "grids")),
        filter=_text(form, "filter"),
    )
    with db.write(svc.engine) as conn:
        request_id = asks.create(conn, svc.formset, spec)
        audit.write(conn, actor, "dept_request", f"request:{request_id}")


def _usable(request: Request, user: auth.User, grant_id: int) -> grants.Grant | Response:
    try:
        if not user.is_department:
            raise ApiError(403, "forbidden")
        with db.read(_svc(request).engine) as conn:
            return grants.usable(conn, grant_id, user.department or "")
    except ApiError as exc:
        return _error_page(request, user, exc)


@router.get("/dept/grants/{grant_id}/download")
def download_by_get(request: Request, grant_id: int) -> Response:
    """405: a download is a taking, traced; a GET may come from a prefetched link, a crawler
    or a forwarded address, and would trace a taking nobody made. The page's buttons POST."""
    page = _error_page(request, sessions.session_user(request), ApiError(405, "download_post"))
    page.headers["Allow"] = "POST"
    return page


@router.post("/dept/grants/{grant_id}/download")
async def download(request: Request, grant_id: int) -> Response:
    """The grant's records of one form as CSV (UTF-8 or GBK) or XLSX, streamed, traced; only
    from the department page's form (its CSRF token), never from a link."""
    checked = await _checked_form(request)
    if isinstance(checked, Response):
        return checked
    user, form_data = checked
    grant = _usable(request, user, grant_id)
    if isinstance(grant, Response):
        return grant
    fmt = _text(form_data, "format", "csv")
    form = _text(form_data, "form") or grant.forms[0]
    if fmt not in files.FORMATS or form not in grant.forms:
        return _error_page(request, user, ApiError(422, "malformed", detail="format"))
    svc = _svc(request)
    job = files.Download(
        svc.engine, svc.formset, grant, _taker(user, request), form, fmt, request_lang(request)
    )
    await run_in_threadpool(job.start)
    headers = {"Content-Disposition": f'attachment; filename="{job.filename()}"'}
    headers["Cache-Control"] = "no-store"
    if fmt == "xlsx":
        path = await run_in_threadpool(files.xlsx_file, job)
        return FileResponse(
            path,
            media_type=files.MEDIA[fmt],
            headers=headers,
            background=BackgroundTask(os.unlink, path),
        )
    return StreamingResponse(files.csv_stream(job), media_type=files.MEDIA[fmt], headers=headers)


@router.get("/dept/grants/{grant_id}/stats")
def stats_page(request: Request, grant_id: int) -> Response:
    """The statistics form; a count (traced) only when the form asks with ``by``: the
    department page's link (which a browser may prefetch) counts and traces nothing."""
    by = request.query_params.get("by", "")[:130]
    grids = _codes(request.query_params.get("grids", "")[:2000])

    def build(user: auth.User) -> dict[str, Any]:
        svc = _svc(request)
        with db.read(svc.engine) as conn:
            grant = grants.usable(conn, grant_id, user.department or "")
        taker, lang = _taker(user, request), request_lang(request)
        table = stats.query(svc.engine, svc.formset, grant, taker, by, grids, lang) if by else None
        return {
            "g": grant,
            "table": table,
            "dims": stats.dimensions(svc.formset, grant),
            "grids_text": ",".join(grids),
        }

    return _page(request, "dept_stats", build)


# -- the admin's page ------------------------------------------------------------------------


@router.get("/departments")
def departments_page(request: Request) -> Response:
    def build(user: auth.User) -> dict[str, Any]:
        if not user.is_admin:
            raise ApiError(403, "forbidden")
        svc = _svc(request)
        return {**admin_view(svc.engine, svc.formset), "new_key": None}

    return _page(request, "departments", build)


@router.post("/departments")
async def add_department(request: Request) -> Response:
    def act(actor: Actor, form: FormData) -> None:
        _require_admin(actor)
        code, name = _text(form, "code").strip(), _text(form, "name").strip()
        if not code or len(code) > 64 or not name:
            raise ApiError(422, "bad_code")
        admin.put_department(_svc(request).engine, code, name)
        audit.record(_svc(request).engine, actor, "dept_add", f"dept:{code}")

    return await _post(request, act, "departments")


@router.post("/departments/requests/{request_id}/{decision}")
async def decide(request: Request, request_id: int, decision: str) -> Response:
    def act(actor: Actor, form: FormData) -> None:
        _require_admin(actor)
        svc = _svc(request)
        if decision == "collect":
            collect.collect(svc.engine, svc.formset, actor, request_id, _collect_choice(form))
            return
        with db.write(svc.engine) as conn:
            if decision == "approve":
                grant_id = asks.approve(
                    conn,
                    svc.formset,
                    request_id,
                    actor.user.username,
                    _text(form, "legal_basis"),
                    _granted_fields(form),
                    _text(form, "valid_to") or None,
                )
                audit.write(conn, actor, "dept_grant", f"request:{request_id} grant:{grant_id}")
            elif decision == "refuse":
                asks.refuse(conn, request_id, actor.user.username, _text(form, "reason"))
                audit.write(conn, actor, "dept_refuse", f"request:{request_id}")
            else:
                raise ApiError(404, "not_found")

    return await _post(request, act, "departments")


def _collect_choice(form: FormData) -> collect.Collect:
    """The admin's choices on turning a request into a task. The page sends ``only_missing``
    "0" and, when its box is ticked, "1" too; not sent at all: only the missing (the default)."""
    given = [v for v in form.getlist("only_missing") if isinstance(v, str)]
    only_missing = not given or "1" in given
    return collect.Collect(
        due=_text(form, "due") or None,
        form=_text(form, "form") or None,
        only_missing=only_missing,
        reason=_text(form, "reason"),
    )


@router.post("/departments/grants/{grant_id}/revoke")
async def revoke_grant(request: Request, grant_id: int) -> Response:
    def act(actor: Actor, _form: FormData) -> None:
        _require_admin(actor)
        with db.write(_svc(request).engine) as conn:
            if not grants.revoke(conn, grant_id):
                raise ApiError(404, "not_found")
            audit.write(conn, actor, "dept_revoke", f"grant:{grant_id}")

    return await _post(request, act, "departments")


@router.post("/departments/keys")
async def new_key(request: Request) -> Response:
    """Shows the new key on the page it returns (never in a URL, never again)."""
    checked = await _checked_form(request)
    if isinstance(checked, Response):
        return checked
    user, form = checked
    svc = _svc(request)
    actor = Actor(user, sessions.client_ip(request))
    try:
        _require_admin(actor)
        department = _text(form, "department")
        with db.write(svc.engine) as conn:
            full = keys.create(
                conn, request.app.state.key, department, _text(form, "label"), user.username
            )
            audit.write(conn, actor, "dept_key", f"dept:{department} key:{full[4:16]}")
        view = admin_view(svc.engine, svc.formset)
    except ApiError as exc:
        return _error_page(request, user, exc)
    return render(request, user, "departments", **view, new_key=full)


@router.post("/departments/keys/{key_id}/revoke")
async def revoke_key(request: Request, key_id: str) -> Response:
    def act(actor: Actor, _form: FormData) -> None:
        _require_admin(actor)
        with db.write(_svc(request).engine) as conn:
            if not keys.revoke(conn, key_id):
                raise ApiError(404, "not_found")
            audit.write(conn, actor, "dept_key_revoke", f"key:{key_id}")

    return await _post(request, act, "departments")
