"""The audit log: who did what, when and from where, in the platform database.

Append-only: this module only inserts and reads; nothing in the platform updates or deletes a
row. A row names a record id, a user, a device, a grid and field names, never a value, so the
log itself holds no personal data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, insert, select
from sqlalchemy.engine import Connection

from sync.server import auth, db

ACTIONS = (
    "login",
    "login_failed",
    "login_locked",
    "logout",
    "reveal",
    "resolve",
    "review",
    "revoke_device",
    "disable_user",
    "enable_user",
    "add_user",
    "set_grids",
    "reset_password",
    "grid_save",
    "grid_boundary",
    "task_create",
    "task_edit",
    "task_remind",
    "task_cancel",
    "task_close",
    "task_export",
    "dept_take",  # a department's download, API page or statistics query (dept.trace)
    "dept_request",
    "dept_grant",
    "dept_refuse",
    "dept_collect",
    "dept_revoke",
    "dept_key",
    "dept_key_revoke",
    "dept_add",
)
MAX_ROWS = 1000


@dataclass(frozen=True)
class Actor:
    """A person acting through the console or the console API, and where they came from."""

    user: auth.User
    ip: str = ""


def write(
    conn: Connection, actor: Actor, action: str, target: str = "", fields: Sequence[str] = ()
) -> None:
    """Append one row (inside the caller's transaction, so it commits with the change)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    conn.execute(
        insert(db.audit_log).values(
            at=auth.iso(auth.now()),
            username=actor.user.username,
            ip=actor.ip[:100],
            action=action,
            target=target[:200],
            fields=db.dumps(sorted(fields)),
        )
    )


def event(conn: Connection, username: str, ip: str, action: str, target: str = "") -> None:
    """A row for someone who is not (or not yet) a logged-in user: a failed login, a lockout,
    ``server-admin`` (``username`` is the account name tried, never a password)."""
    actor = Actor(auth.User(username[:100], "", None, frozenset()), ip)
    write(conn, actor, action, target)


def record(
    engine: Engine, actor: Actor, action: str, target: str = "", fields: Sequence[str] = ()
) -> None:
    """``write`` in a transaction of its own."""
    with db.write(engine) as conn:
        write(conn, actor, action, target, fields)


def rows(
    engine: Engine,
    *,
    since: str | None = None,
    usernames: Sequence[str] | None = None,
    limit: int = MAX_ROWS,
) -> list[dict[str, Any]]:
    """Rows at or after ``since`` (ISO time), newest first; ``usernames`` limits who.

    Duplicate-review decisions made through ``/v1/reviews`` (the desktop app) are kept by
    ``reviews.decide`` in ``review_audit``; they are listed here too, as ``review`` rows without
    an address, unless the console already logged the same decision.
    """
    a, v = db.audit_log.c, db.review_audit.c
    stmt = select(db.audit_log).order_by(a.id.desc()).limit(limit)
    decided = select(v.review_id, v.decision, v.username, v.at).order_by(v.id.desc()).limit(limit)
    if since:
        stmt, decided = stmt.where(a.at >= since), decided.where(v.at >= since)
    if usernames is not None:
        names = sorted(usernames)
        stmt, decided = stmt.where(a.username.in_(names)), decided.where(v.username.in_(names))
    with db.read(engine) as conn:
        found = [_row(r) for r in conn.execute(stmt)]
        reviews = [
            {
                "id": None,
                "at": r.at,
                "username": r.username,
                "ip": "",
                "action": "review",
                "target": review_target(r.review_id, r.decision),
                "fields": [],
            }
            for r in conn.execute(decided)
        ]
        targets = [r["target"] for r in reviews]
        logged = set()
        for i in range(0, len(targets), 500):
            part = targets[i : i + 500]
            logged |= set(
                conn.execute(
                    select(a.target).where(a.action == "review", a.target.in_(part))
                ).scalars()
            )
    found += [r for r in reviews if r["target"] not in logged]
    found.sort(key=lambda r: r["at"], reverse=True)
    return found[:limit]


def review_target(review_id: int, decision: str) -> str:
    return f"review:{review_id}={decision}"


def _row(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "at": r.at,
        "username": r.username,
        "ip": r.ip,
        "action": r.action,
        "target": r.target,
        "fields": db.loads(r.fields) or [],
    }
