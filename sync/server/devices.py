"""Device ids the server has confirmed, and copies of a data dir detected at login.

Why: a device id lives in the data dir, so copying the dir (setting up an office from one
laptop) or restoring it from a backup yields two installations with one id. Their ops then
collide in the op log and their edits were taken for each other's ("same device" merges
silently let the later one win). Each data dir therefore also keeps a random installation
nonce, renewed when it notices it was copied or restored; the server remembers the first
installation of each device id, and a login presenting a known id from another installation is
given a new id (PROTOCOL.md §4). The nonce is stored only as a hash.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from sync.server import db

NEW, KNOWN, COPIED, UNCHECKED = "new", "known", "copied", "unchecked"
_D = db.devices.c


@dataclass(frozen=True)
class Claim:
    """The device id a login's token is bound to, and how it was decided."""

    device_id: str
    status: str  # new | known | copied | unchecked


def new_device_id() -> str:
    """128 random bits as 32 lower-case hex digits."""
    return secrets.token_hex(16)


def _digest(installation: str) -> str:
    return hashlib.sha256(installation.encode("utf-8")).hexdigest()


def claim(
    conn: Connection,
    device_id: str,
    installation: str | None,
    username: str,
    at: str,
    known: str | None = None,
) -> Claim:
    """Register, confirm or replace the device id a login presents.

    Without an installation (an app older than this check) the id is taken as given. The same
    installation coming back after a copy was detected gets the same new id again, so a login
    repeated before the device stored its new id creates no second one. ``known``: the
    installation digest stored for ``device_id``, when the caller read it in this transaction
    already (the credential exchange does, with the token): the usual answer then needs no
    statement of its own."""
    if installation is None:
        return Claim(device_id, UNCHECKED)
    digest = _digest(installation)
    if known is not None and known == digest:
        return Claim(device_id, KNOWN)
    row = conn.execute(select(db.devices).where(_D.device_id == device_id)).mappings().first()
    if row is None:
        try:
            with conn.begin_nested():  # two first logins of one id at once (PostgreSQL)
                _insert(conn, device_id, digest, username, device_id, None, at)
            return Claim(device_id, NEW)
        except IntegrityError:
            row = conn.execute(select(db.devices).where(_D.device_id == device_id)).mappings().one()
    if row["installation"] == digest:
        return Claim(device_id, KNOWN)
    again = conn.execute(
        select(_D.device_id)
        .where(_D.parent == device_id, _D.installation == digest)
        .order_by(_D.created_at, _D.device_id)  # the first, should two logins have raced
    ).scalar()
    if again is not None:
        return Claim(str(again), COPIED)
    fresh = new_device_id()
    _insert(conn, fresh, digest, username, row["root"], device_id, at)
    return Claim(fresh, COPIED)


def _insert(
    conn: Connection,
    device_id: str,
    digest: str,
    username: str,
    root: str,
    parent: str | None,
    at: str,
) -> None:
    conn.execute(
        insert(db.devices).values(
            device_id=device_id,
            installation=digest,
            username=username,
            root=root,
            parent=parent,
            created_at=at,
        )
    )
