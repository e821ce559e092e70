"""What every sync API route shares: the caller (bearer token + device id), the app's engine,
service and token key from ``app.state``, the documented error responses and the text check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from sqlalchemy import Engine
from sqlalchemy.engine import Connection
from starlette.datastructures import State
from starlette.responses import JSONResponse

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
    return Credentials(request.app.state, request.url.path, authorization, x_device_id).user()


@dataclass(frozen=True)
class Credentials:
    """A request's bearer token and device id, not yet checked: ``user()`` checks them.

    Why: FastAPI runs a plain ``def`` dependency in a worker thread and then the plain ``def``
    route in another; the sync routes every device calls each night (push, pull) take this
    instead of ``User`` and authenticate inside their own worker thread, one hop per request.
    """

    state: State  # the app's: engine and token key
    path: str  # the request's path (a department account may use only DEPT_ALLOWED)
    authorization: str | None
    device_id: str | None

    def user(self, conn: Connection | None = None) -> auth.User:
        """The authenticated caller (401 ``auth``/``device``, 403 ``dept_only``); ``conn``: a
        transaction the request's work opened, which the look-up then runs in."""
        token, device_id = bearer(self.authorization, self.device_id)
        try:
            user = auth.authenticate(self.state.engine, self.state.key, token, device_id, conn)
        except auth.AuthError as exc:
            raise ApiError(401, exc.code) from None
        if user.is_department and self.path not in DEPT_ALLOWED:
            raise ApiError(403, "dept_only")  # departments take data only through /v1/dept
        return user


async def _credentials(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    x_device_id: Annotated[str | None, Header()] = None,
) -> Credentials:
    bearer(authorization, x_device_id)  # no credentials at all: 401 before anything else
    return Credentials(request.app.state, request.url.path, authorization, x_device_id)


def bearer(authorization: str | None, device_id: str | None) -> tuple[str, str]:
    """(token, device id) from the headers; 401 ``auth`` when either is missing."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip() or not device_id:
        raise ApiError(401, "auth")
    return token.strip(), device_id


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
Caller = Annotated[Credentials, Depends(_credentials)]  # checked in the route's thread
Db = Annotated[Engine, Depends(_engine)]
Svc = Annotated[Service, Depends(_service)]
Key = Annotated[bytes, Depends(_key)]
Door = Annotated[logins.Door, Depends(_door)]


def error_response(exc: ApiError) -> JSONResponse:
    """How every ``ApiError`` leaves (PROTOCOL.md §2), whichever path raised it."""
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


def check_plain_text(text: str) -> None:
    """Refuse NUL and unencodable text before it reaches a database (PostgreSQL rejects NUL)."""
    if "\x00" in text:
        raise ApiError(422, "nul_char")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(422, "bad_text") from None
