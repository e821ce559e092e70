"""WAL checkpoints of a SQLite file, on a thread of their own instead of in a commit: the
platform's (``sync.server.db``) and the device store's (``app.core.store.db``).

Why, on the platform: SQLite checkpoints inside the commit that takes its WAL past ``wal_autocheckpoint``
pages (1 000). A push request of 1 000 new residents writes ~650 pages, so every other one
copied ~1 300 pages (5 MB) into the database file and waited for its fsync before it was
answered. The platform's connections turn that off (``db._sqlite_events``); after each commit
the committing thread reads how many frames wait in the WAL (the wal-index header in the
``-shm`` file, https://www.sqlite.org/walformat.html, ~2 us) and, from ``threshold`` on
(SQLite's own 1 000), pokes a ``Checkpointer``, whose thread copies them on a connection of
its own. sqlite3 releases the GIL while it copies, so the copy runs on the second core while
the request is answered.

Bounded as before: the WAL starts again from its beginning at the first write transaction
after a checkpoint that copied all of it, which the copy, started as soon as a commit lands,
normally finishes before the device's next request. Writers that never leave it that gap
would keep the WAL growing, so a write transaction that finds more than ``limit`` frames in
it first copies them itself, on its own connection, as SQLite did in every commit
(``before_write``), and then starts the WAL over. Durable as before: a commit is on disk
(``synchronous = FULL``) before it is answered; a checkpoint syncs the WAL before it copies
and the database file after (its connection is FULL too). The thread ends after ``idle``
seconds without work and when the engine is disposed (copying what waits first); the
last connection closed removes the WAL, as before.

Why, on the device: a sync or an import writes under ``bulk_writes``, which checkpointed only
past 20 000 pages so that the copy did not sit in every batch; the next commit after it (the
sync's own "last synced" stamp) then copied the whole WAL, 35-50 ms at the end of a 10 k push
(issue 17), and a save in the app paid the same whenever its commit crossed 1 000 pages. Its
connection is SQLCipher's (``connect``, ``errors``): the thread's own is keyed as the store's.
"""

from __future__ import annotations

import os
import sqlite3
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

THRESHOLD = 1000  # WAL frames not yet copied from which a commit has the thread copy them
LIMIT = 4 * THRESHOLD  # WAL frames (16 MB at 4 kB pages) past which a writer copies first
IDLE = 10.0  # seconds without a commit after which the thread ends (a commit starts it again)
# wal-index header (native byte order): version at 0, isInit at 12, mxFrame at 16; the
# checkpoint info after the header's two 48-byte copies: nBackfill at 96
_HEADER = struct.Struct("=I8xBxxxI")
_BACKFILL = struct.Struct("=I")
_WAL_VERSION = 3007000


def waiting_frames(path: str) -> tuple[int, int] | None:
    """(frames in the WAL, frames of it not copied yet) of the SQLite file ``path``, from its
    wal-index; None when that cannot be read (no ``-shm``: no connection is open)."""
    head = _read_shm_header(f"{path}-shm")
    if head is None:
        return None
    if len(head) < 100:
        return None
    version, ready, frames = _HEADER.unpack_from(head, 0)
    if version != _WAL_VERSION or not ready:
        return None
    (copied,) = _BACKFILL.unpack_from(head, 96)
    return frames, max(frames - copied, 0)


# POSIX: one read-only descriptor per ``-shm`` file, kept open. Why: closing ANY descriptor of
# a file drops every fcntl lock the process holds on it, SQLite's wal-index locks included
# (https://www.sqlite.org/howtocorrupt.html, 2.2). Opened and closed at each look, another
# process that opened the database meanwhile (a second ``server-admin``, an upgrade's
# ``--check``, a backup) found the wal-index unlocked while this one wrote: both failed with
# "locking protocol" (an upgrade rolled back at its commit), or worse. A descriptor is only
# replaced when its file was removed (the last connection closed it), whose locks nobody holds.
_SHM_FDS: dict[str, int] = {}
_SHM_LOCK = threading.Lock()
_SHM_KEEP = 64  # kept descriptors from which those of removed files are closed


def _same_file(path: str, fd: int) -> bool:
    """``fd`` is still the file at ``path`` (not one removed since, or replaced)."""
    try:
        now, kept = os.stat(path), os.fstat(fd)
    except OSError:
        return False
    return (kept.st_dev, kept.st_ino) == (now.st_dev, now.st_ino)


def _read_shm_header(shm: str) -> bytes | None:
    if os.name != "posix":  # Windows locks belong to a handle: closing another drops none
        try:  # os.read of a new descriptor, not os.pread: Windows has no pread
            fd = os.open(shm, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        except OSError:
            return None
        try:
            return os.read(fd, 100)
        finally:
            os.close(fd)
    with _SHM_LOCK:
        held = _SHM_FDS.get(shm)
        if held is not None and not _same_file(shm, held):
            os.close(_SHM_FDS.pop(shm))  # a removed file's descriptor: nobody uses that file
            held = None
        if not os.path.exists(shm):
            return None
        if held is None:
            if len(_SHM_FDS) >= _SHM_KEEP:  # many files over a process's life (tests)
                for gone in [k for k, v in _SHM_FDS.items() if not _same_file(k, v)]:
                    os.close(_SHM_FDS.pop(gone))
            try:
                held = _SHM_FDS[shm] = os.open(shm, os.O_RDONLY)
            except OSError:
                _SHM_FDS.pop(shm, None)
                return None
        os.lseek(held, 0, os.SEEK_SET)  # not os.pread: Windows has none (one reader: the lock)
        return os.read(held, 100)


@dataclass
class Checkpointer:
    """Checkpoints of one SQLite file, run by a thread that the first commit after a quiet
    spell starts (``poke``)."""

    path: str
    threshold: int = THRESHOLD
    limit: int = LIMIT
    idle: float = IDLE
    # the thread's connection (default: plain sqlite3 on ``path``) and what its driver raises
    connect: Callable[[], sqlite3.Connection] | None = None
    errors: tuple[type[Exception], ...] = (sqlite3.Error,)
    runs: int = 0  # checkpoints run (tests)
    by_writers: int = 0  # checkpoints run by write transactions past ``limit`` (tests)
    _poked: threading.Event = field(default_factory=threading.Event)
    _stopping: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # held while a checkpoint of this process copies: a writer's own copy waits for the
    # thread's (two at once: one is busy, and the locks each takes kept the WAL from starting
    # over at the write; a writer that went on instead let writers without a gap grow it)
    _copying: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None
    _lower_to: int | None = None  # ``limit`` once the thread has copied what waits

    def committed(self) -> None:
        """A write transaction has committed: wake the thread when ``threshold`` frames wait.
        Read here (~2 us) rather than by the thread: waking it for every commit cost a
        small sync's requests ~0.1 ms of CPU each (bench_fixed_costs, SQLite)."""
        found = waiting_frames(self.path)
        if found is None or found[1] >= self.threshold:
            self.poke()

    def lower_limit(self, limit: int) -> None:
        """``limit`` goes back down to ``limit`` (the end of a bulk block) once the thread
        has copied what waits, which it is asked to do now; until then a writer copies only
        past the higher one. Why: lowered at once, the first write after the block (the
        sync's own "last synced" stamp) found a WAL of thousands of frames past it and
        copied them itself, 44 ms at the end of a 10 k known push (issue 17)."""
        found = waiting_frames(self.path)
        at_once = found is None or found[0] <= limit
        with self._lock:  # as raise_limit and the thread's lowering: one of them at a time
            self.limit = limit if at_once else self.limit
            self._lower_to = None if at_once else limit
        if at_once:
            self.committed()  # what waits is copied at once, not at the next commit
        else:
            self.poke()

    def raise_limit(self, limit: int) -> int:
        """``limit`` at least ``limit`` (a bulk block; a lowering still pending is dropped);
        returns the one to lower back to after the block (``lower_limit``)."""
        with self._lock:
            before = self.limit if self._lower_to is None else self._lower_to
            self.limit, self._lower_to = max(self.limit, limit), None
        return before

    def poke(self) -> None:
        """Frames wait to be copied: the thread (started if need be) looks at the WAL now."""
        with self._lock:
            self._poked.set()
            if self._thread is None or not self._thread.is_alive():  # (or a forked child)
                self._stopping = False
                self._thread = threading.Thread(
                    target=self._run, name="wal-checkpoint", daemon=True
                )
                self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        """Copy what waits and end the thread (the engine is disposed); a later commit
        starts it again."""
        with self._lock:
            thread = self._thread
            self._stopping = True
            self._poked.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            self._poked.wait(self.idle)
            with self._lock:
                poked, stopping = self._poked.is_set(), self._stopping
                self._poked.clear()
                if stopping or not poked:
                    self._thread = None
            if stopping:
                self.checkpoint()
                return
            if not poked:
                return
            self.maybe()

    def maybe(self) -> None:
        """Copy the WAL when ``threshold`` frames wait (or when the wal-index cannot say),
        or when a lower ``limit`` waits for a copy (``lower_limit``)."""
        found = waiting_frames(self.path)
        if found is None or found[1] >= self.threshold or self._lower_to is not None:
            self.checkpoint()
        if self._lower_to is None:
            return
        found = waiting_frames(self.path)
        if found is None or found[1] < self.threshold:  # copied: what is left is small
            with self._lock:  # not if a new bulk block raised it meanwhile
                if self._lower_to is not None:
                    self.limit, self._lower_to = self._lower_to, None

    def checkpoint(self) -> tuple[int, int, int]:
        """One PASSIVE checkpoint on a connection of its own: SQLite's (busy, WAL frames,
        frames copied)."""
        conn = self._connect()
        if conn is None:  # the file is gone (a test's temporary directory)
            return 0, 0, 0
        try:
            with self._copying:
                conn.execute("PRAGMA synchronous = FULL")
                busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            self.runs += 1
            return int(busy), int(frames), int(copied)
        except self.errors:  # e.g. the store was re-keyed: its own commits copy, as before
            return 1, 0, 0
        finally:
            conn.close()

    def _connect(self) -> sqlite3.Connection | None:
        """The thread's connection; None when the file is gone (never creates one)."""
        try:
            if self.connect is not None:
                return self.connect() if Path(self.path).exists() else None
            # ``as_uri`` spells a Windows path as SQLite reads it too
            url = f"{Path(self.path).resolve().as_uri()}?mode=rw"
            return sqlite3.connect(url, uri=True, isolation_level=None)
        except self.errors:
            return None

    def before_write(self, conn: sqlite3.Connection) -> None:
        """A write transaction is about to begin on ``conn``: past ``limit`` WAL frames (no
        gap let the WAL start over) it copies them first (PASSIVE), so that its own write
        starts the WAL over; the thread is poked from ``threshold`` waiting frames, as after
        a commit. ~2 us otherwise (the wal-index header read)."""
        found = waiting_frames(self.path)
        if found is not None and found[1] >= self.threshold:
            self.poke()  # a connection kept for many transactions (load-base) is seen here
        if found is None or found[0] <= self.limit:
            return
        try:
            with self._copying:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except self.errors:  # busy or gone: the next write tries again
            return
        self.by_writers += 1
