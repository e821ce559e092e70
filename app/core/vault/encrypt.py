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


def encrypt_in_place(db_path: Path, key: bytes) -> bool:
    """Encrypt ``db_path`` under ``key`` if it is plaintext; True if it did."""
    target = db_path.with_name(db_path.name + SUFFIX)
    _discard(target)  # a copy a killed attempt left half-written
    if not driver.is_plaintext(db_path):
        return False
    conn = driver.connect(db_path, None)
    try:
        conn.execute("PRAGMA journal_mode = DELETE")  # checkpoints and removes the plaintext WAL
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
    os.replace(target, db_path)
    perms.fsync_dir(db_path.parent)
    log.info("store encrypted in place: %s records", expected[1])
    return True
