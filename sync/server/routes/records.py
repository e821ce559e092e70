"""One record by id, in the caller's scope (PROTOCOL.md §8)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from sync import protocol as p
from sync.server.routes.deps import ERRORS, Svc, User, check_plain_text

router = APIRouter(tags=["sync"], responses=ERRORS)


@router.get("/v1/records/{record_id}", response_model=p.PulledRecord)
def get_record(
    user: User, service: Svc, record_id: Annotated[str, Path(max_length=64)]
) -> JSONResponse:
    """One record in the caller's scope (aliases followed)."""
    check_plain_text(record_id)
    return JSONResponse(service.get_record(user, record_id))
