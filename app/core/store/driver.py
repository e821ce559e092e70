"""The one SQLite driver the device store uses: SQLCipher (``sqlcipher3``), keyed or not.

Why one driver for both: an encrypted store and a plaintext one (a test's scratch file, a store
not yet migrated) then raise the same exception classes, so ``except driver.Error`` holds
everywhere. SQLCipher without a key reads and writes ordinary SQLite files.

The key is given raw (``x'…'``, 256 bits): SQLCipher then skips its own PBKDF2, because the slow
derivation already happened once, when the passphrase unwrapped the key (``app.core.vault``).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import cast

from sqlcipher3 import dbapi2 as _sqlcipher

Error: type[Exception] = _sqlcipher.Error
OperationalError: type[Exception] = _sqlcipher.OperationalError
IntegrityError: type[Exception] = _sqlcipher.IntegrityError
ProgrammingError: type[Exception] = _sqlcipher.ProgrammingError
DatabaseError: type[Exception] = _sqlcipher.DatabaseError

PLAIN_HEADER = b"SQLite format 3\x00"
KEY_BYTES = 32
ENCRYPTED_CACHE_KIB = -65536  # 64 MiB of decrypted pages per keyed connection


def key_literal(key: bytes) -> str:
    """The PRAGMA/ATTACH form of a raw 256-bit key (hex digits only: no quoting hazards)."""
    if len(key) != KEY_BYTES:
        raise ValueError("a store key is 32 bytes")
    return f"\"x'{key.hex()}'\""


def connect(path: Path | str, key: bytes | None) -> sqlite3.Connection:
    """An autocommit connection on ``path``; keyed when ``key`` is given.

    Typed as ``sqlite3.Connection``: sqlcipher3 is pysqlite's API over SQLCipher, which is what
    sqlite-utils and the store's parts rely on.
    """
    conn = _sqlcipher.connect(str(path), isolation_level=None, check_same_thread=False)
    if key is not None:
        conn.execute(f"PRAGMA key = {key_literal(key)}")
        # A page read from the OS cache costs an AES + HMAC pass when encrypted; a larger page
        # cache keeps the hot pages (indexes, FTS) decrypted. Measured: it brings a 50 k pull
        # back within 25 % of plaintext (tests/bench/bench_encryption.py).
        conn.execute(f"PRAGMA cache_size = {ENCRYPTED_CACHE_KIB}")
        # SQLCipher reads the first page lazily: a wrong key shows here, not at a later query.
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    return cast(sqlite3.Connection, conn)


def is_plaintext(path: Path) -> bool:
    """True if ``path`` is an ordinary (unencrypted) SQLite file; False if absent or encrypted."""
    try:
        with path.open("rb") as fh:
            return fh.read(len(PLAIN_HEADER)) == PLAIN_HEADER
    except FileNotFoundError:
        return False


def is_encrypted(path: Path) -> bool:
    """True if ``path`` exists, is not empty and is not a plaintext SQLite file."""
    try:
        return path.stat().st_size > 0 and not is_plaintext(path)
    except FileNotFoundError:
        return False
