"""Department API keys: made and revoked by an admin, shown once, kept only as an HMAC.

A key is ``gck_<key id>_<secret>``; the key id (not secret) names the key in lists and in the
audit log, the stored HMAC under the server secret is what a presented key must match (a copied
database hands out no working key).
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from sync.server import auth, db
from sync.server.errors import ApiError

PREFIX = "gck_"
_K = db.dept_keys.c


def create(conn: Connection, key: bytes, department: str, label: str, admin: str) -> str:
    """A new key for ``department``: the full key, to be shown once."""
    d = db.departments.c
    if conn.execute(select(d.code).where(d.code == department)).first() is None:
        raise ApiError(422, "unknown_department")
    key_id = secrets.token_hex(6)
    full = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    conn.execute(
        insert(db.dept_keys).values(
            key_id=key_id,
            key_hash=auth.token_hash(key, full),
            department=department,
            label=label.strip()[:200],
            created_by=admin,
            created_at=auth.iso(auth.now()),
        )
    )
    return full


def revoke(conn: Connection, key_id: str) -> bool:
    done = conn.execute(
        update(db.dept_keys)
        .where(_K.key_id == key_id, _K.revoked_at.is_(None))
        .values(revoked_at=auth.iso(auth.now()))
    ).rowcount
    return bool(done)


def department_of(conn: Connection, key: bytes, presented: str) -> tuple[str, str]:
    """(department, key id) of a live key; 401 ``key_revoked`` for an unknown or revoked one."""
    row = conn.execute(
        select(_K.key_id, _K.department, _K.revoked_at).where(
            _K.key_hash == auth.token_hash(key, presented)
        )
    ).first()
    if row is None or row.revoked_at is not None:
        raise ApiError(401, "key_revoked")
    return row.department, row.key_id


def listing(conn: Connection, department: str | None = None) -> list[dict[str, Any]]:
    stmt = select(db.dept_keys).order_by(_K.created_at.desc())
    if department is not None:
        stmt = stmt.where(_K.department == department)
    return [
        {
            "key_id": r.key_id,
            "department": r.department,
            "label": r.label,
            "created_by": r.created_by,
            "created_at": r.created_at,
            "revoked_at": r.revoked_at,
        }
        for r in conn.execute(stmt)
    ]
