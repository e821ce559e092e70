"""The console's HTML pages under ``/console``: server-rendered (Jinja2), no JavaScript needed.

Every page asks ``sessions.session_user`` who is logged in (no login: to the login page), every
POST checks the session's CSRF token before anything else, and every page and action calls the
same ``queries``/``actions`` functions as the JSON API. A record, grid or community outside the
caller's scope is 404, whether reached by URL or by a tampered form.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from app.core.messages import LANGS, pick
from app.core.reviewtext import reason_text
from sync.server import auth, db, passwords, throttle
from sync.server.console import actions, audit, overview, queries, sessions
from sync.server.console.api import audit_rows, plain
from sync.server.console.audit import Actor
from sync.server.console.dept_views import receivers_of
from sync.server.console.i18n import (
    ERRORS,
    LANG_COOKIE,
    console_message,
    request_lang,
    words,
)
from sync.server.console.timefmt import when
from sync.server.errors import CATALOG, ApiError, message
from sync.server.routes.deps import address, door

HERE = Path(__file__).parent
STATIC = {"console.css": "text/css", "LICENSE.txt": "text/plain"}
MAX_UPLOAD = 2 * 1024 * 1024
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters["when"] = when  # times in the platform's zone (timefmt)
router = APIRouter(prefix="/console", include_in_schema=False)

NAV = (
    ("overview", ("worker", "supervisor", "admin")),
    ("conflicts", ("worker", "supervisor", "admin")),
    ("reviews", ("supervisor", "admin")),
    ("records", ("worker", "supervisor", "admin")),
    ("tasks", ("worker", "supervisor", "admin")),
    ("people", ("worker", "supervisor", "admin")),
    ("grids", ("worker", "supervisor", "admin")),
    ("audit", ("supervisor", "admin")),
    ("departments", ("admin",)),
    ("dept", ("department",)),
)
DEPT_PAGES = ("dept", "dept_stats")  # all a department account may open (its data: grants)


# -- plumbing --------------------------------------------------------------------------------


def _svc(request: Request) -> Any:
    return request.app.state.service


def _key(request: Request) -> bytes:
    return request.app.state.key


def render(
    request: Request, user: auth.User | None, page: str, status: int = 200, **ctx: Any
) -> HTMLResponse:
    lang = request_lang(request)
    t = words(lang)
    flash = request.query_params.get("ok")
    err = request.query_params.get("err")
    context = {
        "user": user,
        "t": t,
        "lang": lang,
        "other_lang": "en" if lang == "zh" else "zh",
        "page": page,
        "nav": [n for n, roles in NAV if user is not None and user.role in roles],
        "csrf": sessions.csrf_token(_key(request), user) if user else "",
        "flash": t.get(flash, "")
        if flash in ("resolved", "decided", "done", "worker_added")
        else "",
        "error": _error_text(err, lang) if err else ctx.pop("error", ""),
        "lx": lambda pair: pair[1] if lang == "en" and pair[1] else pair[0],
        **ctx,
    }
    response = templates.TemplateResponse(request, f"{page}.html", context, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'"
    )
    given = request.query_params.get("lang")
    if given in LANGS:
        response.set_cookie(
            LANG_COOKIE, given, path=sessions.PATH, samesite="lax", max_age=365 * 86400
        )
    return response


def _error_text(code: str, lang: str) -> str:
    if code not in ERRORS and code not in CATALOG:
        return ""
    return pick(lang, *console_message(code, detail=""))


def _error_page(request: Request, user: auth.User | None, exc: ApiError) -> HTMLResponse:
    lang = request_lang(request)
    zh, en = console_message(exc.code, **exc.params) if exc.code != "malformed" else ("", "")
    return render(request, user, "error", exc.status, message=pick(lang, zh, en), code=exc.code)


def _to_login(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{sessions.PATH}/login?next={quote(target)}", status_code=303)


def _back(request: Request, path: str, **query: str) -> RedirectResponse:
    """Post/redirect/get: back to a page with a short message key."""
    lang = request.cookies.get(LANG_COOKIE)
    if lang in LANGS:
        query.setdefault("lang", lang)
    suffix = (("&" if "?" in path else "?") + urlencode(query)) if query else ""
    return RedirectResponse(f"{sessions.PATH}/{path}{suffix}", status_code=303)


def _page(request: Request, page: str, build: Callable[[auth.User], dict[str, Any]]) -> Response:
    """A GET page: logged in, its data built in scope, errors as an error page."""
    user = sessions.session_user(request)
    if user is None:
        return _to_login(request)
    if user.is_department and page not in DEPT_PAGES:
        return _error_page(request, user, ApiError(403, "dept_only"))
    try:
        ctx = build(user)
    except ApiError as exc:
        return _error_page(request, user, exc)
    return render(request, user, page, **ctx)


async def _checked_form(
    request: Request, max_part_size: int = 1024 * 1024
) -> tuple[auth.User, FormData] | Response:
    """The logged-in user and the form a POST carried, once its CSRF token checks; else the
    answer to give (the login page, or 403 ``csrf``): every console form starts so."""
    user = sessions.session_user(request)
    if user is None:
        return _to_login(request)
    form = await request.form(max_part_size=max_part_size)
    if not sessions.csrf_ok(_key(request), user, _text(form, "csrf")):
        return _error_page(request, user, ApiError(403, "csrf"))
    return user, form


async def _post(
    request: Request,
    action: Callable[[Actor, FormData], Any],
    back: str | Callable[[FormData], str],
    ok: str = "done",
) -> Response:
    """A form POST: logged in, CSRF token checked first, the action run, then redirected."""
    user = sessions.session_user(request)
    if user is None:
        return _to_login(request)
    if user.is_department and not request.url.path.startswith(f"{sessions.PATH}/dept/"):
        return _error_page(request, user, ApiError(403, "dept_only"))
    form = await request.form(max_part_size=MAX_UPLOAD)
    if not sessions.csrf_ok(_key(request), user, _text(form, "csrf")):
        return _error_page(request, user, ApiError(403, "csrf"))
    target = back(form) if callable(back) else back
    actor = Actor(user, sessions.client_ip(request))
    try:
        await run_in_threadpool(action, actor, form)
    except ApiError as exc:
        if exc.status in (403, 404):
            return _error_page(request, user, exc)
        return _back(request, target, err=exc.code)
    return _back(request, target, ok=ok)


def _text(form: FormData, name: str, default: str = "") -> str:
    value = form.get(name)
    text = value if isinstance(value, str) else default
    plain(text)
    return text


def _int(form: FormData, name: str) -> int:
    try:
        return int(_text(form, name))
    except ValueError:
        raise ApiError(422, "malformed", detail=name) from None


# -- login -----------------------------------------------------------------------------------


@router.get("")
def home(request: Request) -> RedirectResponse:
    return _back(request, "overview")


@router.get("/static/{name}")
def static(name: str) -> Response:
    if name not in STATIC:
        raise ApiError(404, "not_found")
    return FileResponse(HERE / "static" / name, media_type=STATIC[name])


def _safe_next(target: str) -> str:
    """Only a console path: never an open redirect to another site."""
    if (
        target.startswith(sessions.PATH + "/")
        and not target.startswith("//")
        and "\\" not in target
    ):
        return target
    return f"{sessions.PATH}/overview"


@router.get("/login")
def login_page(request: Request) -> Response:
    token = secrets.token_urlsafe(24)
    response = render(
        request,
        None,
        "login",
        next=_safe_next(request.query_params.get("next", "")),
        login_csrf=token,
    )
    sessions.set_cookie(request, response, sessions.LOGIN_CSRF_COOKIE, token)
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    username, password = _form_str(form, "username"), _form_str(form, "password")
    given = _form_str(form, "csrf")
    expected = request.cookies.get(sessions.LOGIN_CSRF_COOKIE, "")
    target = _safe_next(_form_str(form, "next"))
    if not expected or not secrets.compare_digest(given, expected):
        return _error_page(request, None, ApiError(403, "csrf"))
    svc = _svc(request)
    try:
        plain(username, password)
        cookie, user = await run_in_threadpool(
            sessions.open_session, door(request), username, password, address(request)
        )
    except throttle.Throttled as exc:
        wait = exc.retry_after
        text = pick(request_lang(request), *message("throttled", retry_after=wait))
        response = _login_again(request, target, 429, text)
        response.headers["Retry-After"] = str(wait)
        return response
    except (auth.AuthError, ApiError):
        return _login_again(request, target, 401, words(request_lang(request))["login_failed"])
    audit.record(svc.engine, Actor(user, sessions.client_ip(request)), "login")
    if user.is_department and not target.startswith(f"{sessions.PATH}/dept"):
        target = f"{sessions.PATH}/dept"  # its one page: the data its grants give
    redirect = RedirectResponse(target, status_code=303)
    sessions.set_cookie(request, redirect, sessions.COOKIE, cookie)
    redirect.delete_cookie(sessions.LOGIN_CSRF_COOKIE, path=sessions.PATH)
    return redirect


def _login_again(request: Request, target: str, status: int, error: str) -> Response:
    """The login page again, with why, and a new login CSRF token."""
    token = secrets.token_urlsafe(24)
    response = render(request, None, "login", status, next=target, login_csrf=token, error=error)
    sessions.set_cookie(request, response, sessions.LOGIN_CSRF_COOKIE, token)
    return response


def _form_str(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


@router.post("/logout")
async def logout(request: Request) -> Response:
    user = sessions.session_user(request)
    if user is None:
        return _to_login(request)
    form = await request.form()
    if not sessions.csrf_ok(_key(request), user, _form_str(form, "csrf")):
        return _error_page(request, user, ApiError(403, "csrf"))
    svc = _svc(request)
    sessions.close_session(svc.engine, user)
    audit.record(svc.engine, Actor(user, sessions.client_ip(request)), "logout")
    response = RedirectResponse(f"{sessions.PATH}/login", status_code=303)
    response.delete_cookie(sessions.COOKIE, path=sessions.PATH)
    return response


# -- pages -----------------------------------------------------------------------------------


@router.get("/overview")
def overview_page(request: Request) -> Response:
    q = request.query_params
    grid, community = q.get("grid") or None, q.get("community") or None
    months = q.get("stale_months", "")
    stale = int(months) if months.isdigit() and 1 <= int(months) <= 120 else overview.STALE_MONTHS

    def build(user: auth.User) -> dict[str, Any]:
        plain(grid, community)
        svc = _svc(request)
        data = overview.overview(svc.engine, svc.formset, user, grid, stale, community)
        return {"o": data, "charts": _charts(data)}

    return _page(request, "overview", build)


def _charts(data: dict[str, Any]) -> dict[str, Any]:
    """Bar geometry for the two inline SVG charts (no JavaScript, no library)."""
    bars = []
    for i, g in enumerate(data["grids"]):
        s = g["stats"]
        share = s["complete"] / s["total"] if s["total"] else 0.0
        bars.append(
            {
                "y": 8 + i * 28,
                "label": g["name"] or g["code"] or "—",
                "w": round(share * 300, 1),
                "pct": round(share * 100),
                "total": s["total"],
            }
        )
    by_day = {d["day"]: d for d in data["activity"]}
    today = auth.now().date()
    days = [
        by_day.get(day, {"day": day, "created": 0, "changed": 0})
        for day in ((today - timedelta(days=n)).isoformat() for n in range(29, -1, -1))
    ]
    top = max([max(d["created"], d["changed"]) for d in days] or [1]) or 1
    cols = [
        {
            "x": 40 + i * 22,
            "day": d["day"][5:],
            "c": round(d["created"] / top * 120, 1),
            "u": round(d["changed"] / top * 120, 1),
            "created": d["created"],
            "changed": d["changed"],
            "tick": i % 5 == 4,
        }
        for i, d in enumerate(days)
    ]
    return {
        "bars": bars,
        "bars_h": 16 + 28 * len(bars),
        "cols": cols,
        "top": top,
        "cols_w": 50 + 22 * len(cols),
    }


@router.get("/conflicts")
def conflicts_page(request: Request) -> Response:
    grid = request.query_params.get("grid") or None

    def build(user: auth.User) -> dict[str, Any]:
        plain(grid)
        svc = _svc(request)
        return {"items": queries.conflicts(svc.engine, svc.formset, user, grid), "grid": grid}

    return _page(request, "conflicts", build)


@router.post("/conflicts/{record_id}")
async def resolve(request: Request, record_id: str) -> Response:
    def act(actor: Actor, form: FormData) -> None:
        plain(record_id)
        choices: dict[str, dict[str, Any]] = {}
        for key in form:
            if not key.startswith("choice:"):
                continue
            name, side = key[len("choice:") :], _text(form, key)
            if side == "typed":
                choices[name] = {"value": _text(form, f"value:{name}")}
            elif side in actions.SIDES:
                choices[name] = {"side": side}
        actions.resolve(_svc(request), actor, record_id, _int(form, "version"), choices)

    return await _post(request, act, "conflicts", ok="resolved")


BY_WORKER = "by_worker"  # ``?show=``: the items workers closed "different" (§9)


@router.get("/reviews")
def reviews_page(request: Request) -> Response:
    """Open items, or (``?show=by_worker``) the duplicates workers told apart on their
    devices: a supervisor may still decide those "same" or confirm them."""
    show = BY_WORKER if request.query_params.get("show") == BY_WORKER else "open"

    lang = request_lang(request)

    def build(user: auth.User) -> dict[str, Any]:
        from sync.server import reviews

        engine = _svc(request).engine
        items = reviews.list_reviews(engine, user, show)
        with db.read(engine) as conn:
            names = {g["code"]: g["name"] for g in queries.grids_in_scope(conn, user)}
        for item in items:
            item["reason_text"] = reason_text(item["reason"], lang)
            item["grid_text"] = _review_grids(item, names)
        return {"items": items, "show": show}

    return _page(request, "reviews", build)


def _review_grids(item: dict[str, Any], names: dict[str, str]) -> str:
    """The pair's grid by name; for a transfer claim where the person comes from: "B → A"."""
    grid, other = item.get("grid"), item.get("other_grid")
    here = names.get(grid or "", grid or "")
    if item.get("kind") == "transfer" and other:
        return f"{names.get(other, other)} → {here}"
    return here


@router.post("/reviews/{review_id}")
async def decide(request: Request, review_id: int) -> Response:
    def act(actor: Actor, form: FormData) -> None:
        decision = _text(form, "decision")
        if decision not in ("same", "different"):
            raise ApiError(422, "malformed", detail="decision")
        actions.decide_review(_svc(request), actor, review_id, decision)

    def back(form: FormData) -> str:
        return f"reviews?show={BY_WORKER}" if _text(form, "show") == BY_WORKER else "reviews"

    return await _post(request, act, back, ok="decided")


@router.get("/records")
def records_page(request: Request) -> Response:
    query = request.query_params.get("q", "")[:100]

    def build(user: auth.User) -> dict[str, Any]:
        plain(query)
        svc = _svc(request)
        found = queries.search(svc.engine, svc.formset, user, query) if query else []
        return {"q": query, "found": found, "searched": bool(query)}

    return _page(request, "records", build)


@router.get("/records/{record_id}")
def record_page(request: Request, record_id: str) -> Response:
    def build(user: auth.User) -> dict[str, Any]:
        plain(record_id)
        svc = _svc(request)
        return {
            "r": queries.record_view(svc.engine, svc.formset, user, record_id),
            "revealed": None,
            "receivers": receivers_of(svc.engine, record_id),
        }

    return _page(request, "record", build)


@router.post("/records/{record_id}/reveal")
async def reveal(request: Request, record_id: str) -> Response:
    """Shows the value on the page it returns (not a redirect: the value is shown once)."""
    user = sessions.session_user(request)
    if user is None:
        return _to_login(request)
    if user.is_department:
        return _error_page(request, user, ApiError(403, "dept_only"))
    form = await request.form()
    if not sessions.csrf_ok(_key(request), user, _form_str(form, "csrf")):
        return _error_page(request, user, ApiError(403, "csrf"))
    svc = _svc(request)
    actor = Actor(user, sessions.client_ip(request))
    try:
        plain(record_id)
        shown = actions.reveal(svc, actor, record_id, _text(form, "field"))
        view = queries.record_view(svc.engine, svc.formset, user, record_id)
    except ApiError as exc:
        return _error_page(request, user, exc)
    return render(
        request,
        user,
        "record",
        r=view,
        revealed=shown,
        receivers=receivers_of(svc.engine, record_id),
    )


@router.get("/people")
def people_page(request: Request) -> Response:
    return _page(
        request,
        "people",
        lambda user: {
            "people": queries.people(_svc(request).engine, user),
            "grids": queries.grids(_svc(request).engine, user),
            "min_password": passwords.MIN_LENGTH,
        },
    )


@router.post("/people")
async def add_worker(request: Request) -> Response:
    def act(actor: Actor, form: FormData) -> None:
        grids = [g for g in form.getlist("grids") if isinstance(g, str)]
        plain(*grids)
        actions.add_worker(
            _svc(request), actor, _text(form, "username").strip(), _text(form, "password"), grids
        )

    return await _post(request, act, "people", ok="worker_added")


@router.post("/people/{username}/disable")
async def disable(request: Request, username: str) -> Response:
    def act(actor: Actor, form: FormData) -> None:
        plain(username)
        actions.set_disabled(_svc(request), actor, username, _text(form, "disabled") == "1")

    return await _post(request, act, "people")


@router.post("/people/{username}/password")
async def password(request: Request, username: str) -> Response:
    def act(actor: Actor, form: FormData) -> None:
        plain(username)
        actions.reset_password(_svc(request), actor, username, _text(form, "password"))

    return await _post(request, act, "people")


@router.post("/people/{username}/grids")
async def set_grids(request: Request, username: str) -> Response:
    """A worker's grids; their devices fetch the records of grids new to them (scopes.py)."""

    def act(actor: Actor, form: FormData) -> None:
        grids = [g for g in form.getlist("grids") if isinstance(g, str)]
        plain(username, *grids)
        actions.set_worker_grids(_svc(request), actor, username, grids)

    return await _post(request, act, "people")


@router.post("/people/{username}/revoke")
async def revoke(request: Request, username: str) -> Response:
    def act(actor: Actor, form: FormData) -> None:
        plain(username)
        actions.revoke_device(_svc(request), actor, username, _text(form, "device_id"))

    return await _post(request, act, "people")


@router.get("/grids")
def grids_page(request: Request) -> Response:
    def build(user: auth.User) -> dict[str, Any]:
        engine = _svc(request).engine
        return {
            "grids": queries.grids(engine, user),
            "communities": queries.communities(engine, user),
        }

    return _page(request, "grids", build)


@router.post("/grids")
async def save_grid(request: Request) -> Response:
    def act(actor: Actor, form: FormData) -> None:
        actions.save_grid(
            _svc(request),
            actor,
            _text(form, "code").strip(),
            _text(form, "name"),
            _text(form, "community"),
        )

    return await _post(request, act, "grids")


@router.post("/grids/{code}/boundary")
async def boundary(request: Request, code: str) -> Response:
    def act(actor: Actor, form: FormData) -> None:
        plain(code)
        upload = form.get("file")
        if isinstance(upload, UploadFile):
            raw: Any = upload.file.read(MAX_UPLOAD + 1)
        else:
            raw = _text(form, "geojson")
        actions.set_boundary(_svc(request), actor, code, raw)

    return await _post(request, act, "grids")


@router.get("/audit")
def audit_page(request: Request) -> Response:
    since = request.query_params.get("since") or None

    def build(user: auth.User) -> dict[str, Any]:
        plain(since)
        rows = audit_rows(_svc(request).engine, Actor(user), since, 500)
        return {"rows": rows, "since": since or ""}

    return _page(request, "audit", build)
