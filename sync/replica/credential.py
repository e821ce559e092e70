"""The device's sync credential, kept in the store between runs (no HTTP here).

Why: the nightly ``gridcollect sync`` then signs in without the password (PROTOCOL.md §4.3),
which spares the platform a password hash per device per night and lets an office drop the
password file once the device is set up. The credential sits in the store's meta table,
which is inside the encrypted store (docs/SECURITY.md), never in a log; it is bound to the
platform URL and user it was issued for, so another server or user never sees it.
"""

from __future__ import annotations

import json

from app.core.store import Store

KEY = "sync_credential"


def load(store: Store, server: str, user: str) -> str | None:
    """The kept credential for this platform and user, or ``None``."""
    try:
        kept = json.loads(store.meta(KEY) or "{}")
    except ValueError:
        return None
    if kept.get("server") != _norm(server) or kept.get("user") != user:
        return None
    credential = kept.get("credential")
    return credential if isinstance(credential, str) and credential else None


def save(store: Store, server: str, user: str, credential: str | None) -> None:
    """Keep ``credential`` (or forget the kept one with ``None``)."""
    value = {"server": _norm(server), "user": user, "credential": credential} if credential else {}
    store.set_meta(KEY, json.dumps(value))


def _norm(server: str) -> str:
    return server.rstrip("/")
