"""The department API (PROTOCOL.md §14): a department's own systems take the data its grants
give — the grants, the full export paged by cursor, the feed of changes, statistics.

A caller is a department API key (``Authorization: Bearer gck_...``) or a department account's
token (``Bearer gc1_...`` + ``X-Device-Id``). Every grant is checked on every page
(``grants.usable``): an expired, revoked or foreign grant or a revoked key stops at once (403 /
401 with one clear line). Every page is traced (``dept.trace``).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from sync.server import auth, db
from sync.server.console.sessions import client_ip
from sync.server.dept import grants, keys, stats, take
from sync.server.dept.trace import Taker
from sync.server.errors import ApiError
from sync.server.routes.deps import ERRORS, Svc, check_plain_text

router = APIRouter(prefix="/v1/dept", tags=["department"], responses=ERRORS)
GrantId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Cursor = Annotated[str | None, Query(max_length=400)]
Limit = Annotated[int, Query(ge=1, le=take.MAX_PAGE)]


def taker(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    x_device_id: Annotated[str | None, Header()] = None,
) -> Taker:
    """The department behind a key or a department account's token (401/403 otherwise)."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "auth")
    check_plain_text(token)
    state = request.app.state
    ip = client_ip(request)
    if token.startswith(keys.PREFIX):
        with db.read(state.engine) as conn:
            department, key_id = keys.department_of(conn, state.key, token)
        return Taker(department, key_id=key_id, ip=ip)
    if not x_device_id:
        raise ApiError(401, "auth")
    try:
        user = auth.authenticate(state.engine, state.key, token, x_device_id)
    except auth.AuthError as exc:
        raise ApiError(401, exc.code) from None
    if not user.is_department or not user.department:
        raise ApiError(403, "forbidden")  # only departments take data here
    return Taker(user.department, username=user.username, ip=ip)


Caller = Annotated[Taker, Depends(taker)]


class GrantOut(BaseModel):
    id: int
    department: str
    purpose: str
    legal_basis: str
    fields: dict[str, dict[str, Literal["full", "masked"]]] = Field(
        description="form -> field -> how it is given; fields not named are left out"
    )
    communities: list[str]
    grids: list[str]
    filter: str
    valid_from: str
    valid_to: str
    approved_by: str
    approved_at: str
    revoked_at: str | None
    revision: int
    state: Literal["active", "revoked", "expired", "pending"]
    reduced: dict[str, dict[str, Literal["year", "province"]]] = Field(
        description="form -> field -> what is kept: granted fields given reduced because the "
        "grant masks the form's ID number, which they would give back (a birth date keeps its "
        "year: 1950-**-**; an area code its province: 33****)"
    )


class Grants(BaseModel):
    department: str
    grants: list[GrantOut]


class ExportRecord(BaseModel):
    id: str
    form: str
    version: int
    fields: dict[str, Any] = Field(description="the granted fields (codes), masks applied")


class ExportPage(BaseModel):
    export_id: str = Field(description="this page's id in the platform's audit log")
    records: list[ExportRecord]
    cursor: str = Field(description="give it back for the next page; empty when done")
    done: bool
    feed_cursor: str = Field(description="start the feed here once the export is done")


class FeedItem(BaseModel):
    op: Literal["upsert", "remove"]
    id: str
    seq: int
    form: str | None = None
    version: int | None = None
    fields: dict[str, Any] | None = None


class FeedPage(BaseModel):
    export_id: str
    changes: list[FeedItem]
    cursor: str = Field(description="give it back for the next changes")
    done: bool = Field(description="no more changes now (ask again later with the cursor)")


class StatRow(BaseModel):
    value: str
    label: str
    count: int | None = Field(description="rounded to a multiple of 5; null when under 5")


class Stats(BaseModel):
    grant_id: int
    by: str
    threshold: int
    rounding: int
    rows: list[StatRow]
    total: int | None


def _json(body: dict[str, Any]) -> Response:
    """A page encoded by orjson (5000 records: several times the standard module's speed);
    what it refuses (an integer past 64 bits in a stored record) by the standard module."""
    try:
        content = orjson.dumps(body)
    except orjson.JSONEncodeError:
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(content, media_type="application/json")


def _grant(engine: Any, caller: Taker, grant_id: int) -> grants.Grant:
    with db.read(engine) as conn:
        return grants.usable(conn, grant_id, caller.department)


@router.get("/grants", response_model=Grants)
def list_grants(caller: Caller, service: Svc) -> dict[str, Any]:
    """The caller's department's grants, with their state and the fields given reduced."""
    now, formset = auth.iso(auth.now()), service.formset
    with db.read(service.engine) as conn:
        found = grants.of_department(conn, caller.department)
    return {"department": caller.department, "grants": [g.public(now, formset) for g in found]}


@router.get("/grants/{grant_id}/export", response_model=ExportPage)
def export(
    caller: Caller, service: Svc, grant_id: GrantId, cursor: Cursor = None, limit: Limit = take.PAGE
) -> Response:
    """One page of the full export; follow ``cursor`` until ``done``, then the feed from
    ``feed_cursor``."""
    if cursor:
        check_plain_text(cursor)
    grant = _grant(service.engine, caller, grant_id)
    page = take.export_page(service.engine, service.formset, grant, caller, cursor, limit)
    return _json(  # built by take (tested against the model): no second validation
        {
            "export_id": page.export_id,
            "records": page.items,
            "cursor": page.cursor,
            "done": page.done,
            "feed_cursor": page.feed_cursor,
        }
    )


@router.get("/grants/{grant_id}/feed", response_model=FeedPage)
def feed(
    caller: Caller,
    service: Svc,
    grant_id: GrantId,
    cursor: Annotated[str, Query(min_length=1, max_length=400)],
    limit: Limit = take.PAGE,
) -> Response:
    """Changes since ``cursor``: ``upsert`` (store these fields) and ``remove`` (delete it: it
    was deleted, or no longer matches the grant's filter or places)."""
    check_plain_text(cursor)
    grant = _grant(service.engine, caller, grant_id)
    page = take.feed_page(service.engine, service.formset, grant, caller, cursor, limit)
    return _json(
        {
            "export_id": page.export_id,
            "changes": page.items,
            "cursor": page.cursor,
            "done": page.done,
        }
    )


@router.get("/grants/{grant_id}/stats", response_model=Stats)
def statistics(
    caller: Caller,
    service: Svc,
    grant_id: GrantId,
    by: Annotated[str, Query(min_length=1, max_length=130)],
    grid: Annotated[list[str] | None, Query(max_length=200)] = None,
    lang: Annotated[Literal["zh", "en"], Query()] = "zh",
) -> dict[str, Any]:
    """Counts of the grant's records by ``by`` (grid, form, status, age_band or a coded field
    of the grant), optionally in some of its grids: under 5 suppressed, all rounded to 5."""
    for text in [by, *(grid or [])]:
        check_plain_text(text)
    grant = _grant(service.engine, caller, grant_id)
    return stats.query(service.engine, service.formset, grant, caller, by, grid, lang)
