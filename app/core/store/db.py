"""The store's connection: one SQLite file (WAL, SQLCipher-encrypted when keyed), its
transactions, its meta table and clocks.

Why its own part: reads, writes, autosave, grids and the sync replica's queries all share one
connection and one transaction depth, so a save, a pushed batch's answers or a pulled chunk is
one transaction whichever part runs it. Nothing outside ``app.core.store`` runs SQL on it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from app.core import ids
from app.core.checkpoint import Checkpointer
from app.core.store import driver
from app.core.store.schema import migrate


def _create_private(path: Path) -> None:
    """Create a new store file 0600 before SQLite does: its -wal and -shm take the same mode,
    so no moment exists where another OS user could open them."""
    if not path.exists() and str(path) != ":memory:":
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _checkpointer(conn: sqlite3.Connection, path: Path, key: bytes | None) -> Checkpointer | None:
    """The thread that copies this file's WAL instead of the commits (``app.core.checkpoint``:
    a sync's or a save's commit never waits for a copy); None in memory."""
    if str(path) == ":memory:":
        return None
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    connect = functools.partial(driver.connect, path, key)
    return Checkpointer(str(path), connect=connect, errors=(driver.Error,))


class Database:
    """One open store file. Thread-safe enough for one writer: use one per thread."""

    def __init__(self, path: Path, key: bytes | None = None) -> None:
        _create_private(path)
        self.conn = driver.connect(path, key)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.conn.execute("PRAGMA foreign_keys = ON")
        self.conn.execute("PRAGMA busy_timeout = 10000")
        migrate(self.conn)
        self._depth = 0
        self._lock = threading.RLock()
        self._checkpoints = _checkpointer(self.conn, path, key)
        self._device_id = self._meta_default("device_id", ids.new_device_id())

    @property
    def device_id(self) -> str:
        """This data dir's device id, read each time: the sync replaces it when the platform
        finds the data dir was copied or restored (``sync.replica.identity``), and every Store
        open on the file must then number new ops under the new id."""
        with contextlib.suppress(driver.ProgrammingError):  # closed: the id it had last
            self._device_id = self.meta("device_id") or self._device_id
        return self._device_id

    def close(self) -> None:
        """Checkpoint and close the file."""
        if self._checkpoints is not None:
            self._checkpoints.stop()  # copies what waits; the close then removes the WAL
        self.conn.close()

    @contextmanager
    def bulk_checkpoints(self, limit: int, threshold: int) -> Iterator[None]:
        """Inside the block the thread copies the WAL from ``threshold`` waiting frames on, and
        a write transaction copies it itself only past ``limit``; afterwards both are
        restored and the thread copies what waits at once, not at the next commit (the
        bound comes back down once it has: ``Checkpointer.lower_limit``)."""
        cp = self._checkpoints
        if cp is None:
            yield
            return
        before = cp.raise_limit(limit), cp.threshold
        cp.threshold = max(cp.threshold, threshold)
        try:
            yield
        finally:
            cp.threshold = before[1]
            cp.lower_limit(before[0])

    def interrupt(self) -> None:
        """Stop the query running on this connection (from another thread: a cancelled task)."""
        self.conn.interrupt()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction; nested calls join the outer one (all or nothing)."""
        with self._lock:
            if self._depth == 0:
                if self._checkpoints is not None:
                    self._checkpoints.before_write(self.conn)
                self.conn.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if self._depth == 0:
                    self.conn.execute("ROLLBACK")
                raise
            self._depth -= 1
            if self._depth == 0:
                self.conn.execute("COMMIT")
                if self._checkpoints is not None:
                    self._checkpoints.committed()

    def meta(self, key: str, default: str | None = None) -> str | None:
        """A value from the meta table (device id, cursors, worker settings)."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        """Set a meta value (joins the current transaction if any)."""
        with self.transaction():
            self.conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def _meta_default(self, key: str, value: str) -> str:
        existing = self.meta(key)
        if existing is not None:
            return existing
        self.set_meta(key, value)
        return value

    def next_seq(self, count: int = 1) -> int:
        """Reserve ``count`` local op sequence numbers; returns the first."""
        first = int(self.meta("op_seq", "0") or 0) + 1
        self.set_meta("op_seq", str(first + count - 1))
        return first

    def next_op_id(self) -> str:
        """A new outbox op id: this device's id and the next local sequence number."""
        return f"{self.device_id}:{self.next_seq()}"

    def hlc(self) -> str:
        """A hybrid-logical-clock stamp: wall time, but never behind the last one issued."""
        now = ids.now_iso()
        last = self.meta("hlc", "") or ""
        last_time, _, last_count = last.partition("#")
        stamp = f"{now}#0000" if now > last_time else f"{last_time}#{int(last_count or 0) + 1:04d}"
        self.set_meta("hlc", stamp)
        return stamp
