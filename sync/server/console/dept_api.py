"""Departments' requests in the console's JSON API (PROTOCOL.md §12, §14.6): an admin turns a
request into a collection task for the grids, as the console's button does
(``sync.server.dept.collect``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from sync.server.console.api import _ERRORS, Caller, plain
from sync.server.dept import collect
from sync.server.errors import ApiError

router = APIRouter(prefix="/v1/console/dept", tags=["console", "department"])
RequestId = Annotated[int, Path(ge=1, le=2**31 - 1)]


class CollectBody(BaseModel):
    """The admin's choices; each left out: as the request says."""

    model_config = ConfigDict(extra="forbid")

    due: str | None = Field(default=None, max_length=10, description="YYYY-MM-DD")
    form: str | None = Field(default=None, max_length=64, description="one requested form")
    only_missing: bool = Field(
        default=True, description="only records with a requested field empty"
    )
    reason: str = Field(default="", max_length=2000)


@router.post("/requests/{request_id}/task", responses=_ERRORS)
def to_task(
    request: Request, caller: Caller, request_id: RequestId, body: CollectBody
) -> dict[str, Any]:
    """Turn an open request into a verify task over its records (admin): the task's follow
    view plus ``items`` and ``request_id``; the request becomes ``collecting``."""
    plain(body.due, body.form, body.reason)
    if not caller.user.is_admin:
        raise ApiError(403, "forbidden")
    svc = request.app.state.service
    choice = collect.Collect(body.due, body.form, body.only_missing, body.reason)
    return collect.collect(svc.engine, svc.formset, caller, request_id, choice)
