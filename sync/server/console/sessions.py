"""Console sessions: a login is an ordinary platform token (``auth.login``) bound to a device id
of its own (``console-<random>``), kept in an HttpOnly cookie.

So sessions live in the platform database (the ``tokens`` table): every server process behind a
proxy sees them and they survive a restart; logging out, revoking the device, disabling the user
or resetting their password ends them, exactly like a device's login. The CSRF token of a form
is an HMAC of the session's token hash under the server secret: one per session, nothing more to
store, and useless without the session cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request, Response
from sqlalchemy import Engine

from sync.server import auth, db, logins

COOKIE = "gc_console"
LOGIN_CSRF_COOKIE = "gc_login_csrf"
PATH = "/console"
DEVICE_PREFIX = "console-"


def is_https(request: Request) -> bool:
    """TLS here, or at the proxy in front (``X-Forwarded-Proto: https``)."""
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def client_ip(request: Request) -> str:
    """Where a request came from, as the audit log records it (the proxy's view included)."""
    peer = request.client.host if request.client else ""
    forwarded = request.headers.get("x-forwarded-for", "").split(",")[0].strip()
    return f"{forwarded} via {peer}"[:100] if forwarded else peer


def set_cookie(request: Request, response: Response, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        path=PATH,
        httponly=True,
        samesite="lax",
        secure=is_https(request),
        max_age=request.app.state.token_days * 86400 if name == COOKIE else 3600,
    )


def open_session(
    door: logins.Door, username: str, password: str, address: str
) -> tuple[str, auth.User]:
    """Check the password (``logins.login``: throttled, audited) and return (cookie, user)."""
    device = DEVICE_PREFIX + secrets.token_hex(8)
    token, _expires, user = logins.login(door, username, password, device, address)
    return f"{device}|{token}", user


def session_user(request: Request) -> auth.User | None:
    """The logged-in user behind the cookie, or None (no cookie, expired, revoked, disabled)."""
    raw = request.cookies.get(COOKIE, "")
    device, _, token = raw.partition("|")
    if not device.startswith(DEVICE_PREFIX) or not token or len(raw) > 200:
        return None
    state = request.app.state
    try:
        return auth.authenticate(state.engine, state.key, token, device)
    except auth.AuthError:
        return None


def close_session(engine: Engine, user: auth.User) -> None:
    with db.write(engine) as conn:
        auth.revoke(conn, user.username, token_hash_=user.token_hash)


def csrf_token(key: bytes, user: auth.User) -> str:
    return hmac.new(key, b"csrf:" + user.token_hash.encode(), hashlib.sha256).hexdigest()


def csrf_ok(key: bytes, user: auth.User, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(csrf_token(key, user), str(given))
