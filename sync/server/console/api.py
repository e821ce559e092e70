"""The console's actions as a JSON API under ``/v1/console`` (PROTOCOL.md §11), so an office can
script what a supervisor does in the browser. Same bearer login as the sync API; the routes call
the same functions as the console pages (``queries`` and ``actions``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request
from pydantic import BaseModel, Field

from sync import protocol as p
from sync.server import auth
from sync.server.console import actions, audit, queries
from sync.server.console.audit import Actor
from sync.server.console.overview import STALE_MONTHS
from sync.server.console.overview import overview as overview_of
from sync.server.console.sessions import client_ip
from sync.server.errors import ApiError

router = APIRouter(prefix="/v1/console", tags=["console"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": p.ErrorResponse} for status in (400, 401, 403, 404, 409, 422)
}
Name = Annotated[str, Path(min_length=1, max_length=100)]
RecordId = Annotated[str, Path(min_length=1, max_length=64)]


def plain(*texts: str | None) -> None:
    """Refuse NUL and unencodable text before it reaches a database (PostgreSQL rejects NUL)."""
    for text in texts:
        if text is None:
            continue
        if "\x00" in text:
            raise ApiError(422, "nul_char")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ApiError(422, "bad_text") from None


def api_actor(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    x_device_id: Annotated[str | None, Header()] = None,
) -> Actor:
    """The bearer-token caller (as for /v1/push) and their address, for the audit log."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip() or not x_device_id:
        raise ApiError(401, "auth")
    state = request.app.state
    try:
        user = auth.authenticate(state.engine, state.key, token.strip(), x_device_id)
    except auth.AuthError as exc:
        raise ApiError(401, exc.code) from None
    if user.is_department:
        raise ApiError(403, "dept_only")  # its data comes only through /v1/dept
    return Actor(user, client_ip(request))


Caller = Annotated[Actor, Depends(api_actor)]


class Choice(BaseModel):
    """One conflicted field: take a side of the conflict, or a typed value."""

    side: Literal["server", "incoming", "base"] | None = None
    value: str | None = Field(default=None, max_length=p.MAX_VALUE_CHARS)


class ResolveRequest(BaseModel):
    version: int = Field(ge=1, le=p.MAX_VERSION, description="the record version shown")
    choices: dict[Annotated[str, Field(max_length=64)], Choice] = Field(max_length=200)


class RevealRequest(BaseModel):
    field: str = Field(min_length=1, max_length=64)


class Revealed(BaseModel):
    record_id: str
    field: str
    value: Any = None


class DisableRequest(BaseModel):
    disabled: bool


class PasswordRequest(BaseModel):
    password: str = Field(min_length=1, max_length=200)


class GridRequest(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    community: str = Field(min_length=1, max_length=64)


class NewWorker(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=200)
    grids: list[str] = Field(min_length=1, max_length=200)


class WorkerGrids(BaseModel):
    grids: list[str] = Field(max_length=200)


class Done(BaseModel):
    ok: bool = True
    count: int | None = None


def _svc(request: Request) -> Any:
    return request.app.state.service


@router.get("/overview", responses=_ERRORS)
def overview(
    request: Request,
    caller: Caller,
    grid: Annotated[str | None, Query(max_length=64)] = None,
    community: Annotated[str | None, Query(max_length=64)] = None,
    stale_months: Annotated[int, Query(ge=1, le=120)] = STALE_MONTHS,
) -> dict[str, Any]:
    """Progress per grid and per worker in the caller's scope (a grid or community outside it
    is 404)."""
    plain(grid, community)
    svc = _svc(request)
    return overview_of(svc.engine, svc.formset, caller.user, grid, stale_months, community)


@router.get("/conflicts", responses=_ERRORS)
def conflicts(
    request: Request, caller: Caller, grid: Annotated[str | None, Query(max_length=64)] = None
) -> dict[str, Any]:
    """Records with open conflicts: base / platform / incoming per field (sensitive masked)."""
    plain(grid)
    svc = _svc(request)
    return {"records": queries.conflicts(svc.engine, svc.formset, caller.user, grid)}


@router.post("/conflicts/{record_id}", response_model=p.OpResult, responses=_ERRORS)
def resolve(
    request: Request, caller: Caller, record_id: RecordId, body: ResolveRequest
) -> dict[str, Any]:
    """Resolve as a device would: a ``resolve`` op through the push path (supervisor, admin)."""
    plain(record_id, *body.choices, *(c.value for c in body.choices.values()))
    choices = {k: c.model_dump(exclude_none=True) for k, c in body.choices.items()}
    return actions.resolve(_svc(request), caller, record_id, body.version, choices)


@router.post("/reviews/{review_id}", response_model=p.ReviewOutcome, responses=_ERRORS)
def decide_review(
    request: Request,
    caller: Caller,
    review_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    body: p.ReviewDecision,
) -> dict[str, Any]:
    """``POST /v1/reviews/{id}`` plus a row in the audit log."""
    return actions.decide_review(_svc(request), caller, review_id, body.decision)


@router.get("/records", responses=_ERRORS)
def search(
    request: Request, caller: Caller, q: Annotated[str, Query(max_length=100)] = ""
) -> dict[str, Any]:
    """Search by name, pinyin initials, ID/phone tail or address, in scope."""
    plain(q)
    svc = _svc(request)
    return {"records": queries.search(svc.engine, svc.formset, caller.user, q)}


@router.get("/records/{record_id}", responses=_ERRORS)
def record(request: Request, caller: Caller, record_id: RecordId) -> dict[str, Any]:
    """A record (sensitive values masked) and its version history; out of scope is 404."""
    plain(record_id)
    svc = _svc(request)
    return queries.record_view(svc.engine, svc.formset, caller.user, record_id)


@router.post("/records/{record_id}/reveal", response_model=Revealed, responses=_ERRORS)
def reveal(
    request: Request, caller: Caller, record_id: RecordId, body: RevealRequest
) -> dict[str, Any]:
    """One sensitive value in clear; writes an audit row (record id, field name)."""
    plain(record_id, body.field)
    return actions.reveal(_svc(request), caller, record_id, body.field)


@router.get("/users", responses=_ERRORS)
def users(request: Request, caller: Caller) -> dict[str, Any]:
    """Users in scope with their grids and devices (last login, last push)."""
    return {"users": queries.people(_svc(request).engine, caller.user)}


@router.post("/users", response_model=Done, status_code=201, responses=_ERRORS)
def add_worker(request: Request, caller: Caller, body: NewWorker) -> Done:
    """Add a grid worker for grids the caller manages (409 ``user_exists``: never replaces)."""
    plain(body.username, body.password, *body.grids)
    actions.add_worker(_svc(request), caller, body.username, body.password, body.grids)
    return Done()


@router.post("/users/{username}/disable", response_model=Done, responses=_ERRORS)
def disable(request: Request, caller: Caller, username: Name, body: DisableRequest) -> Done:
    """Disable (revokes every token) or enable a user."""
    plain(username)
    actions.set_disabled(_svc(request), caller, username, body.disabled)
    return Done()


@router.post("/users/{username}/password", response_model=Done, responses=_ERRORS)
def password(request: Request, caller: Caller, username: Name, body: PasswordRequest) -> Done:
    """Set a new password; every token of the user is revoked."""
    plain(username, body.password)
    return Done(count=actions.reset_password(_svc(request), caller, username, body.password))


@router.put("/users/{username}/grids", response_model=Done, responses=_ERRORS)
def set_grids(request: Request, caller: Caller, username: Name, body: WorkerGrids) -> Done:
    """Give a worker these grids (of those the caller manages); logins are kept and the
    worker's devices fetch the records of grids new to them (PROTOCOL.md §8 ``entered``)."""
    plain(username, *body.grids)
    return Done(count=actions.set_worker_grids(_svc(request), caller, username, body.grids))


@router.post("/users/{username}/devices/{device_id}/revoke", response_model=Done, responses=_ERRORS)
def revoke(
    request: Request,
    caller: Caller,
    username: Name,
    device_id: Annotated[str, Path(min_length=1, max_length=64)],
) -> Done:
    """Revoke the tokens one device holds for a user."""
    plain(username, device_id)
    return Done(count=actions.revoke_device(_svc(request), caller, username, device_id))


@router.get("/grids", responses=_ERRORS)
def grids(request: Request, caller: Caller) -> dict[str, Any]:
    """Grids in scope (with boundary point counts) and the communities grids may be added to."""
    engine = _svc(request).engine
    return {
        "grids": queries.grids(engine, caller.user),
        "communities": queries.communities(engine, caller.user),
    }


@router.put("/grids/{code}", response_model=Done, responses=_ERRORS)
def save_grid(
    request: Request,
    caller: Caller,
    code: Annotated[str, Path(min_length=1, max_length=64)],
    body: GridRequest,
) -> Done:
    """Create or rename a grid (a supervisor: in their community)."""
    plain(code, body.name, body.community)
    actions.save_grid(_svc(request), caller, code, body.name, body.community)
    return Done()


@router.put("/grids/{code}/boundary", response_model=Done, responses=_ERRORS)
def boundary(
    request: Request,
    caller: Caller,
    code: Annotated[str, Path(min_length=1, max_length=64)],
    geojson: Annotated[dict[str, Any], Body()],
) -> Done:
    """Set a grid's boundary from a GeoJSON Polygon (or a Feature holding one)."""
    plain(code)
    return Done(count=actions.set_boundary(_svc(request), caller, code, geojson))


@router.get("/audit", responses=_ERRORS)
def audit_log(
    request: Request,
    caller: Caller,
    since: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=audit.MAX_ROWS)] = audit.MAX_ROWS,
) -> dict[str, Any]:
    """The audit log, newest first: admins everything, supervisors their community's people."""
    plain(since)
    return {"rows": audit_rows(_svc(request).engine, caller, since, limit)}


def audit_rows(engine: Any, caller: Actor, since: str | None, limit: int) -> list[dict]:
    if caller.user.role not in ("supervisor", "admin"):
        raise ApiError(403, "forbidden")
    from sync.server import db

    with db.read(engine) as conn:
        names = queries.users_in_scope(conn, caller.user)
    return audit.rows(engine, since=since, usernames=names, limit=limit)
