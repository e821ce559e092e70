"""Encrypting a plaintext store in place, safely: either the old file or the new one is the
store at every moment, never neither.

How: the plaintext store leaves WAL mode (so no plaintext ``-wal`` can later be replayed into
the encrypted file), ``sqlcipher_export`` copies it into ``<store>.encrypting`` under the key,
the copy is fsynced and checked (same schema version, same number of records), and only then
an atomic rename puts it in the store's place. A kill before the rename leaves the old store
(the half-written copy is discarded at the next attempt); a kill after it leaves the new one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import sqlite3
import time
from pathlib import Path

from app.core.store import driver
from app.core.vault import perms

log = logging.getLogger(__name__)
SUFFIX = ".encrypting"


class EncryptCheckFailed(RuntimeError):
    """The encrypted copy does not match the plaintext store; the plaintext one is kept."""


def _discard(path: Path) -> None:
    for suffix in ("", "-journal", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{path}{suffix}")


def _counts(conn: object, schema: str = "main") -> tuple[int, int]:
    run = conn.execute  # type: ignore[attr-defined]
    version = run(f"PRAGMA {schema}.user_version").fetchone()[0]
    has_records = run(
        f"SELECT count(*) FROM {schema}.sqlite_master WHERE type = 'table' AND name = 'records'"
    ).fetchone()[0]
    records = run(f"SELECT count(*) FROM {schema}.records").fetchone()[0] if has_records else 0
    return int(version), int(records)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def encrypt_in_place(db_path: Path, key: bytes, patience: float = 60.0) -> bool:
    """Encrypt ``db_path`` under ``key`` if it is plaintext; True if it did.

    Two processes may try at once (the app and a scheduled sync): a guard connection holds the
    plaintext store's write lock for the whole migration, and whoever gets it second finds the
    store already encrypted and does nothing. Leaving WAL mode needs every other connection
    closed, so two openers that both hold a guard would refuse each other until one gave up:
    a guard that cannot leave WAL soon is closed again and retried after a random pause.
    """
    deadline = time.monotonic() + patience
    while driver.is_plaintext(db_path):
        if _migrate(db_path, key):
            log.info("store encrypted in place")
            return True
        if time.monotonic() > deadline:
            raise driver.OperationalError("database is locked")  # the CLI says: close others
        time.sleep(random.uniform(0.05, 0.25))  # let the other opener finish first
    return False


def _migrate(db_path: Path, key: bytes) -> bool:
    """One attempt under a guard connection; False when another connection kept WAL mode on
    (or finished the migration meanwhile)."""
    guard = driver.connect(db_path, None)
    try:
        guard.execute("PRAGMA busy_timeout = 60000")
        if not _leave_wal(guard):
            return False
        guard.execute("BEGIN IMMEDIATE")  # the write lock: no one changes it or migrates it too
        if not driver.is_plaintext(db_path):  # another process finished while we waited
            return False
        _export(db_path, key)
        if os.name != "posix":  # Windows cannot rename over a file that is open
            guard.close()
        os.replace(_target(db_path), db_path)
        perms.fsync_dir(db_path.parent)
        return True
    finally:
        guard.close()


def _leave_wal(conn: sqlite3.Connection, patience: float = 0.5) -> bool:
    """Checkpoint and leave WAL mode, so no plaintext ``-wal`` outlives the migration. SQLite
    refuses at once (no busy wait) while another connection has the file open in WAL mode, so
    this retries for a moment; False if it still cannot."""
    deadline = time.monotonic() + patience
    while True:
        try:
            if conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0] == "delete":
                return True
        except driver.OperationalError:
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def _target(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + SUFFIX)


def _export(db_path: Path, key: bytes) -> None:
    """Write the encrypted copy beside the store, fsync it and check it against the original."""
    target = _target(db_path)
    _discard(target)  # a copy a killed attempt left half-written
    conn = driver.connect(db_path, None)
    try:
        expected = _counts(conn)
        conn.execute(
            f"ATTACH DATABASE ? AS encrypted KEY {driver.key_literal(key)}", (str(target),)
        )
        conn.execute("SELECT sqlcipher_export('encrypted')")
        conn.execute(f"PRAGMA encrypted.user_version = {expected[0]}")
        conn.execute("DETACH DATABASE encrypted")
    finally:
        conn.close()
    perms.private_file(target)
    _fsync(target)
    check = driver.connect(target, key)
    try:
        got = _counts(check)
    finally:
        check.close()
    if got != expected:
        _discard(target)
        raise EncryptCheckFailed(f"schema/records {got} != {expected}")
