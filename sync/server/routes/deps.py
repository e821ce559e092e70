"""What every sync API route shares: the caller (bearer token + device id), the app's engine,
service and token key from ``app.state``, the documented error responses and the text check.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Header, Request
from sqlalchemy import Engine

from sync import protocol as p
from sync.server import auth, logins
from sync.server.errors import ApiError
from sync.server.service import Service

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": p.ErrorResponse} for status in (400, 401, 403, 404, 409, 413, 422)
}


DEPT_ALLOWED = frozenset({"/v1/logout"})  # sync-API paths a department account may use


def current_user(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    x_device_id: Annotated[str | None, Header()] = None,
) -> auth.User:
    """The caller behind ``Authorization: Bearer`` + ``X-Device-Id`` (401 otherwise)."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip() or not x_device_id:
        raise ApiError(401, "auth")
    state = request.app.state
    try:
        user = auth.authenticate(state.engine, state.key, token.strip(), x_device_id)
    except auth.AuthError as exc:
        raise ApiError(401, exc.code) from None
    if user.is_department and request.url.path not in DEPT_ALLOWED:
        raise ApiError(403, "dept_only")  # departments take data only through /v1/dept
    return user


async def _engine(request: Request) -> Engine:
    """Async on purpose, as the other plain reads of ``app.state`` here: FastAPI runs a plain
    ``def`` dependency in a worker thread, a thread hop per request for a dictionary look-up."""
    engine: Engine = request.app.state.engine
    return engine


async def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def door(request: Request) -> logins.Door:
    """Where this app's logins arrive (engine, key, token lifetime, clock: ``create_app``)."""
    state = request.app.state
    return logins.Door(state.engine, state.key, state.token_days, state.clock)


async def _door(request: Request) -> logins.Door:
    return door(request)


def address(request: Request) -> str:
    """The peer address a login is throttled by (uvicorn puts a trusted proxy's client here)."""
    return request.client.host if request.client else ""


async def _key(request: Request) -> bytes:
    key: bytes = request.app.state.key
    return key


User = Annotated[auth.User, Depends(current_user)]
Db = Annotated[Engine, Depends(_engine)]
Svc = Annotated[Service, Depends(_service)]
Key = Annotated[bytes, Depends(_key)]
Door = Annotated[logins.Door, Depends(_door)]


def check_plain_text(text: str) -> None:
    """Refuse NUL and unencodable text before it reaches a database (PostgreSQL rejects NUL)."""
    if "\x00" in text:
        raise ApiError(422, "nul_char")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(422, "bad_text") from None
