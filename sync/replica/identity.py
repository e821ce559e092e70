"""Which device a data dir is: its device id and its installation nonce (no HTTP here).

Why: a data dir copied to another laptop, or restored from a backup, carries the device id of
the one it came from, and the platform could not tell their edits apart. Each data dir also
keeps a random *installation* nonce together with the place it was made for (absolute path
and file identity of the store). When the store is found elsewhere — copied, moved or
restored as a new file — it takes a new nonce; the server then sees a second installation with a
known device id and gives this one a new id at login (PROTOCOL.md §4). A copy the place does not
reveal (a backup restored over the same file) is caught by the server when one of its op ids
comes back with other content (409 ``op_id_reused``): the session then renews the nonce here and
logs in again (``session.SyncSession``).
"""

from __future__ import annotations

import hashlib
import os
import secrets

from app.core.store import Store

INSTALLATION_KEY = "installation"
PLACE_KEY = "installation_place"
PREVIOUS_KEY = "previous_device_ids"  # the ids this data dir had before, oldest first

NOTICE = (
    "本数据目录是从其他电脑复制或从备份恢复的，已在平台登记为新设备，本机的修改已重新上传，没有丢失。",
    "this data dir was copied from another computer or restored from a backup: it was "
    "registered with the platform as a new device and its changes were sent again; nothing "
    "was lost.",
)


def _place(store: Store) -> str:
    """Where this store file is: absolute path and file id (a copy is a new file, with a new
    id, also at the same path on another laptop). Not the host name: renaming a computer
    must not make it a new device."""
    path = store.path.resolve()
    try:
        inode = os.stat(path).st_ino
    except OSError:
        inode = 0
    text = f"{path}\n{inode}"
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def installation(store: Store) -> str:
    """This data dir's installation nonce; a new one when the store is not where it was made."""
    here = _place(store)
    with store.transaction():
        nonce = store.meta(INSTALLATION_KEY)
        if nonce is None or store.meta(PLACE_KEY) != here:
            nonce = _renew(store, here)
    return nonce


def renew_installation(store: Store) -> str:
    """A new nonce: the server showed this data dir is a copy the place did not reveal."""
    with store.transaction():
        return _renew(store, _place(store))


def _renew(store: Store, here: str) -> str:
    nonce = secrets.token_urlsafe(24)
    store.set_meta(INSTALLATION_KEY, nonce)
    store.set_meta(PLACE_KEY, here)
    return nonce


def adopt_device(store: Store, device_id: str) -> bool:
    """Number new ops under the id the platform gave this copy; True when it changed.

    Pending ops keep their ids: the server recognises those the original already sent (same id
    and content) and applies the others as this device's."""
    old = store.device_id
    if not device_id or device_id == old:
        return False
    with store.transaction():
        previous = [p for p in (store.meta(PREVIOUS_KEY) or "").split(",") if p]
        store.set_meta(PREVIOUS_KEY, ",".join([*previous, old]))
        store.set_meta("device_id", device_id)
    return True
