"""The device store's WAL is copied by a thread of its own, never inside a commit
(``app.core.checkpoint``, ``app.core.store.db``): a sync's last stamp or a save that crosses
1 000 WAL pages does not wait for a copy of the whole WAL (issue 17), an encrypted store's
thread is keyed as the store, and the WAL stays bounded and is gone after close."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from app.core import checkpoint
from app.core.store import driver
from app.core.store.db import Database

VALUE = "网格" * 1500  # ~9 kB of UTF-8: a few WAL frames per row


def _write(db: Database, start: int, rows: int) -> None:
    """One write transaction of ``rows`` big meta rows."""
    with db.transaction():
        for n in range(start, start + rows):
            db.conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (f"k{n}", VALUE))


def _waiting(path: Path) -> int:
    return (checkpoint.waiting_frames(str(path)) or (0, 0))[1]


def _settled(path: Path, timeout: float = 20.0) -> int:
    """WAL frames still waiting once the thread has had ``timeout`` seconds to copy them."""
    end = time.monotonic() + timeout
    while _waiting(path) and time.monotonic() < end:
        time.sleep(0.02)
    return _waiting(path)


def _unthreaded(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Database, checkpoint.Checkpointer, list[int]]:
    """A store whose checkpointer notes each time it would wake its thread (the thread
    never runs: the test copies, with ``maybe``, when it wants to)."""
    pokes: list[int] = []
    monkeypatch.setattr(checkpoint.Checkpointer, "poke", lambda _cp: pokes.append(1))
    db = Database(path)
    assert db._checkpoints is not None
    return db, db._checkpoints, pokes


def test_a_commit_past_a_thousand_pages_leaves_the_copy_to_the_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commit is answered with the WAL's frames still waiting, and the thread is asked
    to copy them; SQLite's own auto-checkpoint copied them inside that commit."""
    pokes: list[str] = []
    monkeypatch.setattr(checkpoint.Checkpointer, "poke", lambda cp: pokes.append(cp.path))
    path = tmp_path / "store.db"
    db = Database(path)
    _write(db, 0, 600)  # ~1 800 frames: past SQLite's 1 000
    assert _waiting(path) > checkpoint.THRESHOLD
    assert pokes == [str(path)]
    assert db.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    db.conn.close()


@pytest.mark.parametrize("keyed", [False, True])
def test_the_thread_copies_the_wal_of_a_plain_or_encrypted_store(
    tmp_path: Path, keyed: bool
) -> None:
    """The thread's own connection opens the file as the store does (keyed when encrypted):
    the WAL is copied, every row reads back, and close leaves no WAL behind."""
    key = os.urandom(driver.KEY_BYTES) if keyed else None
    path = tmp_path / "store.db"
    db = Database(path, key)
    _write(db, 0, 600)
    assert _settled(path) == 0
    cp = db._checkpoints
    assert cp is not None
    # the wal-index shows the copy as soon as SQLite has made it, a moment before the thread
    # counts it: wait for the count too (CI once read it in between)
    end = time.monotonic() + 20.0
    while cp.runs < 1 and time.monotonic() < end:
        time.sleep(0.01)
    assert cp.runs >= 1
    db.close()
    assert not Path(f"{path}-wal").exists()
    assert driver.is_encrypted(path) is keyed
    again = driver.connect(path, key)
    assert again.execute("SELECT count(*) FROM meta WHERE key LIKE 'k%'").fetchone()[0] == 600
    again.close()


def test_the_wal_stays_bounded_when_the_thread_cannot_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no thread copying (never poked), a write transaction that finds more than the
    bound waiting copies the WAL itself first, and its write starts the WAL over."""
    monkeypatch.setattr(checkpoint.Checkpointer, "poke", lambda _cp: None)
    path = tmp_path / "store.db"
    db = Database(path)
    cp = db._checkpoints
    assert cp is not None
    largest = 0
    for n in range(12):
        _write(db, n * 200, 200)  # ~600 frames a commit
        largest = max(largest, (checkpoint.waiting_frames(str(path)) or (0, 0))[0])
    assert cp.by_writers >= 1
    assert largest <= cp.limit + 700
    db.close()


def test_bulk_writes_copy_rarely_and_what_waits_at_their_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inside ``bulk_checkpoints`` (a sync, an import) the thread is asked to copy from the
    block's threshold on, not from 1 000 frames; when the block ends, what waits is copied
    at once rather than by a later commit."""
    path = tmp_path / "store.db"
    db, cp, pokes = _unthreaded(path, monkeypatch)
    with db.bulk_checkpoints(5 * checkpoint.LIMIT, 3 * checkpoint.THRESHOLD):
        assert (cp.limit, cp.threshold) == (5 * checkpoint.LIMIT, 3 * checkpoint.THRESHOLD)
        _write(db, 0, 600)  # ~1 800 frames: past 1 000, short of 3 000
        assert _waiting(path) > checkpoint.THRESHOLD and not pokes
    assert pokes == [1]
    assert (cp.limit, cp.threshold) == (checkpoint.LIMIT, checkpoint.THRESHOLD)
    db.close()


def test_after_bulk_writes_the_next_write_leaves_the_waiting_copy_to_the_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bulk block (a 10 k push) leaves more frames in the WAL than a writer's usual bound:
    the thread is asked to copy them, and the writes right after the block (the sync's last
    stamps) do not copy them themselves (44 ms at the end of a known push, issue 17); the
    bound comes back down once the thread has copied, and a new block keeps the old one."""
    path = tmp_path / "store.db"
    db, cp, pokes = _unthreaded(path, monkeypatch)
    with db.bulk_checkpoints(5 * checkpoint.LIMIT, 5 * checkpoint.LIMIT):
        for n in range(6):
            _write(db, n * 300, 300)  # ~5 400 frames: past the usual bound
    assert _waiting(path) > checkpoint.LIMIT and pokes
    _write(db, 10_000, 1)
    assert cp.by_writers == 0 and cp.threshold == checkpoint.THRESHOLD
    with db.bulk_checkpoints(5 * checkpoint.LIMIT, 5 * checkpoint.LIMIT):  # before the copy
        _write(db, 10_001, 1)
    assert cp.by_writers == 0
    cp.maybe()  # the thread's turn
    assert cp.limit == checkpoint.LIMIT and _waiting(path) == 0
    _write(db, 10_002, 1)  # starts the WAL over
    assert (checkpoint.waiting_frames(str(path)) or (0, 0))[0] < 100
    db.close()


def test_nested_bulk_blocks_and_one_left_by_an_error_bring_the_bound_back_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A block inside a block (the inner one with a lower bound, ended by an error while more
    frames wait than the outer bound) keeps the outer bound until the outer one ends; after
    it, and after the thread's copy, the usual bound and threshold are back."""
    path = tmp_path / "store.db"
    db, cp, pokes = _unthreaded(path, monkeypatch)
    outer, inner = checkpoint.LIMIT + 500, 5 * checkpoint.LIMIT
    with db.bulk_checkpoints(outer, outer):
        with pytest.raises(RuntimeError), db.bulk_checkpoints(inner, inner):
            for n in range(8):
                _write(db, n * 300, 300)  # ~5 500 frames: past the outer bound
            raise RuntimeError
        assert (cp.limit, cp.threshold) == (inner, outer)  # down to the outer once copied
        cp.maybe()  # the thread's turn
        assert (cp.limit, cp.threshold) == (outer, outer) and _waiting(path) == 0
        _write(db, 10_000, 1)
    assert (cp.limit, cp.threshold) == (checkpoint.LIMIT, checkpoint.THRESHOLD) and pokes
    db.close()
