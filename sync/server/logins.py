"""A password login as both doors use it (``POST /v1/login`` and the console's login page):
throttled (``throttle``), checked (``auth.login``) and written to the audit log.

A failure is an audit row ``login_failed`` (the account name tried, or "(unknown)" when no
account has it, and the address; never the password); a key reaching its lockout is a row ``login_locked`` naming the key. Answers refused
while blocked are not logged one by one (an attack would flood the log); the lockout row says
when it started.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from sync.server import auth, db, throttle
from sync.server.console import audit

Clock = Callable[[], datetime]
UNKNOWN = "(unknown)"


@dataclass(frozen=True)
class Door:
    """Where logins arrive: the engine, the token key, the token lifetime and the clock
    (injectable: tests move it past a lockout instead of sleeping)."""

    engine: Engine
    key: bytes
    token_days: int = auth.TOKEN_DAYS
    clock: Clock = auth.now


def login(
    door: Door,
    username: str,
    password: str,
    device_id: str,
    address: str,
    installation: str | None = None,
) -> tuple[str, str, auth.User]:
    """``auth.login`` behind the throttle; raises ``throttle.Throttled`` or ``auth.AuthError``."""
    moment = door.clock()
    attempt = throttle.begin(door.engine, username, device_id, address, moment)
    try:
        result = auth.login(
            door.engine,
            door.key,
            username,
            password,
            device_id,
            installation,
            days=door.token_days,
        )
    except auth.AuthError:
        with db.write(door.engine) as conn:
            u = db.users.c
            known = conn.execute(select(u.username).where(u.username == username)).first()
            # A name that is no account may be a password typed in the wrong box: not logged.
            name = username if known else UNKNOWN
            audit.event(conn, name, address, "login_failed", name)
            for key in attempt.locking:
                shown = key if known or not key.startswith("account:") else f"account:{UNKNOWN}"
                audit.event(conn, name, address, "login_locked", shown)
        raise
    throttle.succeeded(door.engine, attempt, moment)
    return result
