"""Info, push and pull: what a device calls to sync (PROTOCOL.md §3, §5, §8).

Push and pull of an ordinary request are answered by ``routes.nightly`` without these routes
(the framework's routing and dependencies skipped); both paths share ``push_answer`` and
``pull_answer``, and these routes answer everything else (missing headers, a body or query the
schema refuses) and document the API.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from sync import protocol as p
from sync.server.errors import ApiError
from sync.server.routes.deps import ERRORS, Caller, Credentials, Svc
from sync.server.service import Service
from sync.server.wire import json_response

router = APIRouter(tags=["sync"])


@router.get("/v1/info", response_model=p.Info)
async def info(service: Svc) -> dict[str, Any]:
    """Protocol versions, server version, form versions and limits (no login needed)."""
    return {
        "protocol_versions": list(p.SUPPORTED_PROTOCOLS),
        "server_version": p.SERVER_VERSION,
        "forms": {f.id: f.version for f in service.formset.forms.values()},
        "limits": p.Limits().model_dump(),
        "features": [p.FEATURE_TASKS, p.FEATURE_DEDUP],
    }


def push_answer(
    caller: Credentials, service: Service, body: p.PushRequest, device_id: str
) -> Response:
    """A push's answer, in one worker thread: authentication (the first statement of the
    push's own transaction), then the work; the answer written as ``JSONResponse`` would
    (``wire.json_response``: by orjson where that gives its bytes)."""
    return json_response(service.push_all(caller.user, body, device_id))


def pull_answer(
    caller: Credentials,
    service: Service,
    since: int,
    limit: int,
    backfill: tuple[str, int] | None = None,
) -> Response:
    """A pull page's answer, in one worker thread: authentication (the first statement of the
    page's read transaction), then the page (``backfill``: a grid that entered the scope and
    its ``upto``)."""
    page = service.pull_json(caller.user, since, limit, backfill)
    return Response(page, media_type="application/json")


@router.post("/v1/push", response_model=p.PushResponse, responses=ERRORS)
async def push(
    body: p.PushRequest,
    caller: Caller,
    service: Svc,
    x_device_id: Annotated[str | None, Header()] = None,
) -> Response:
    """Apply a batch of ops in order; one result per op (PROTOCOL.md §5)."""
    return await run_in_threadpool(push_answer, caller, service, body, x_device_id or "")


@router.get("/v1/pull", response_model=p.PullResponse, responses=ERRORS)
async def pull(
    caller: Caller,
    service: Svc,
    since: Annotated[int, Query(ge=0, le=p.MAX_CURSOR)] = 0,
    limit: Annotated[int, Query(ge=1, le=p.MAX_PULL_LIMIT)] = p.DEFAULT_PULL_LIMIT,
    grid: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    upto: Annotated[int | None, Query(ge=0, le=p.MAX_CURSOR)] = None,
) -> Response:
    """Records changed after the cursor, in the caller's scope (PROTOCOL.md §8); with
    ``grid`` and ``upto``, the records of a grid that entered the scope (``entered``)."""
    if (grid is None) != (upto is None):
        missing = "grid" if grid is None else "upto"
        raise ApiError(
            422, "malformed", field=missing, detail=f"{missing} (grid and upto go together)"
        )
    backfill = None if grid is None or upto is None else (grid, upto)
    return await run_in_threadpool(pull_answer, caller, service, since, limit, backfill)
