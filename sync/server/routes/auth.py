"""Logging in and out, and revoking tokens (PROTOCOL.md §4)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import Engine

from sync import protocol as p
from sync.server import auth, db, logins, throttle
from sync.server.errors import ApiError
from sync.server.routes.deps import ERRORS, Db, Door, Key, User, address, check_plain_text

router = APIRouter(tags=["auth"], responses=ERRORS)


@router.post(
    "/v1/login",
    response_model=p.LoginResponse,
    responses={429: {"model": p.ErrorResponse, "description": "too many failed logins"}},
)
def login(body: p.LoginRequest, request: Request, door: Door) -> dict[str, Any]:
    """Exchange a user name and password for a token bound to this device (a copied data
    dir is given a new device id: PROTOCOL.md §4). Throttled: 429 with Retry-After (§4.2)."""
    for text in (body.username, body.password):
        check_plain_text(text)
    try:
        token, expires, user = logins.login(
            door, body.username, body.password, body.device_id, address(request), body.installation
        )
    except throttle.Throttled as exc:
        raise throttled(exc) from None
    except auth.AuthError as exc:
        raise ApiError(401, exc.code) from None
    credential, until = auth.issue_refresh(
        door.engine, door.key, user.username, user.device_id or ""
    )
    return _answer(door.engine, token, expires, user, credential, until)


@router.post("/v1/token", response_model=p.LoginResponse)
def token(body: p.RefreshRequest, engine: Db, key: Key) -> dict[str, Any]:
    """Exchange this device's sync credential for an access token, without the password
    (the nightly sync: PROTOCOL.md §4.3). The credential is sent back unchanged, or a new one
    when the installation is a copy that was given a new device id."""
    return token_answer(engine, key, body)


def token_answer(engine: Engine, key: bytes, body: p.RefreshRequest) -> dict[str, Any]:
    """The answer of ``POST /v1/token`` (also made by ``routes.nightly``)."""
    check_plain_text(body.refresh_token)
    try:
        access, expires, user, renewed = auth.refresh(
            engine, key, body.refresh_token, body.device_id, body.installation
        )
    except auth.AuthError as exc:
        raise ApiError(401, exc.code) from None
    return _answer(engine, access, expires, user, renewed or body.refresh_token, None)


def _answer(
    engine: Any,
    token: str,
    expires: str,
    user: auth.User,
    credential: str | None,
    until: str | None,
) -> dict[str, Any]:
    if user.grids is not None:  # no connection for what the caller already knows
        grids = sorted(user.grids)
    else:
        with db.read(engine) as conn:
            grids = auth.all_grids(conn)
    return {  # every field of p.LoginResponse, in its order (the lean token answer is this)
        "token": token,
        "expires_at": expires,
        "user": {
            "username": user.username,
            "role": user.role,
            "community": user.community,
            "grids": grids,
        },
        "device_id": user.device_id,
        "device_status": user.device_status or "known",  # a credential's device is known
        "refresh_token": credential,
        "refresh_expires_at": until,
    }


def throttled(exc: throttle.Throttled) -> ApiError:
    """429 ``throttled`` with Retry-After (seconds)."""
    wait = exc.retry_after
    return ApiError(429, "throttled", headers={"Retry-After": str(wait)}, retry_after=wait)


@router.post("/v1/logout", response_model=p.Revoked)
def logout(user: User, engine: Db) -> dict[str, Any]:
    """Revoke the caller's token and this device's sync credential (PROTOCOL.md §4.3)."""
    with db.write(engine) as conn:
        count = auth.revoke(conn, user.username, token_hash_=user.token_hash)
        auth.revoke_refresh(conn, user.username, user.device_id or "")
    return {"revoked": count}


@router.post("/v1/admin/revoke", response_model=p.Revoked)
def admin_revoke(body: p.RevokeRequest, user: User, engine: Db) -> dict[str, Any]:
    """Revoke every token of a user, or only those of one device (admins only)."""
    if not user.is_admin:
        raise ApiError(403, "forbidden")
    check_plain_text(body.username)
    with db.write(engine) as conn:
        count = auth.revoke(conn, body.username, body.device_id)
    return {"revoked": count}
