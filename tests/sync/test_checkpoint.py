"""SQLite's WAL checkpoints run on the checkpointer's thread, never in a request's commit
(``app.core.checkpoint``); the WAL stays bounded, a disposed engine leaves a tidy file, and
a killed server loses no committed write."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert

from app.core import checkpoint
from sync.server import db

ROOT = Path(__file__).resolve().parents[2]
VALUE = "网格" * 1500  # ~9 kB of UTF-8: a few WAL frames per row


def _engine(path: Path) -> Engine:
    engine = db.make_engine(f"sqlite:///{path}")
    db.init_db(engine)
    return engine


def _write(engine: Engine, start: int, count: int, rows: int = 20) -> None:
    """``count`` write transactions of ``rows`` big rows each (~60 WAL frames a commit)."""
    for n in range(start, start + count):
        with db.write(engine) as conn:
            values = [{"key": f"k{n}-{i}", "value": VALUE} for i in range(rows)]
            conn.execute(insert(db.meta), values)


def _copied(path: Path) -> int:
    """WAL frames already copied into the database file (the wal-index's nBackfill)."""
    found = checkpoint.waiting_frames(str(path))
    assert found is not None
    return found[0] - found[1]


def _settle(engine: Engine) -> None:
    """Let the checkpointer finish what the last commits gave it."""
    found = db.checkpointer(engine)
    assert found is not None
    deadline = time.monotonic() + 30
    while found._thread is not None and found._poked.is_set() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)


def _until(done: Callable[[], bool], timeout: float = 30.0) -> bool:
    """``done()`` once it holds, or after ``timeout`` seconds: the thread counts a copy a
    moment after SQLite made it, so a loaded machine can read the count in between."""
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        time.sleep(0.01)
    return done()


def test_a_request_commit_copies_no_wal_into_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the checkpointer held back, 3 000 frames of commits leave every frame in the WAL
    and the database file as it was: no commit checkpointed on its own (before, SQLite did in
    the commit that took the WAL past 1 000 frames)."""
    path = tmp_path / "p.db"
    engine = _engine(path)
    monkeypatch.setattr(checkpoint.Checkpointer, "poke", lambda _self: None)
    size = path.stat().st_size
    _write(engine, 0, 50)
    frames, waiting = checkpoint.waiting_frames(str(path)) or (0, 0)
    assert frames > 2 * checkpoint.THRESHOLD
    assert waiting == frames  # nothing copied
    assert path.stat().st_size == size
    engine.dispose()


def test_small_commits_do_not_wake_the_thread(tmp_path: Path) -> None:
    """Commits that leave fewer than ``threshold`` frames waiting start no thread and run no
    checkpoint: waking it for each commit cost a small sync's requests ~0.1 ms of CPU."""
    path = tmp_path / "p.db"
    engine = _engine(path)
    found = db.checkpointer(engine)
    assert found is not None
    _write(engine, 0, 10, rows=2)
    assert (checkpoint.waiting_frames(str(path)) or (0, 0))[1] < checkpoint.THRESHOLD
    assert found._thread is None and found.runs == 0
    engine.dispose()


def test_the_checkpointer_copies_the_wal_on_its_own_thread(tmp_path: Path) -> None:
    """Commits past the threshold are copied soon after, by a thread that is not the one that
    committed, and the data reads back the same."""
    path = tmp_path / "p.db"
    engine = _engine(path)
    found = db.checkpointer(engine)
    assert found is not None
    threads: list[int] = []
    plain = found.checkpoint

    def spied() -> tuple[int, int, int]:
        threads.append(threading.get_ident())
        return plain()

    found.checkpoint = spied  # type: ignore[method-assign]
    size = path.stat().st_size
    _write(engine, 0, 50)
    _settle(engine)
    assert threads and threading.get_ident() not in threads
    assert path.stat().st_size > size + 1_000_000
    assert _copied(path) > 2 * checkpoint.THRESHOLD
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT count(*) FROM meta WHERE key LIKE 'k%'").fetchone()[0] == 1000
    engine.dispose()


def test_waiting_frames_reads_what_sqlite_reports(tmp_path: Path) -> None:
    """The wal-index header read from ``-shm`` gives the frames SQLite's own checkpoint reports."""
    path = tmp_path / "p.db"
    engine = _engine(path)
    db.checkpointer(engine).threshold = 10**9  # type: ignore[union-attr]
    _write(engine, 0, 5)
    frames, waiting = checkpoint.waiting_frames(str(path)) or (0, 0)
    with sqlite3.connect(path) as raw:
        busy, log, copied = raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert (busy, log) == (0, frames) and waiting == frames and frames > 100
    assert checkpoint.waiting_frames(str(path)) == (frames, 0) and copied == frames
    engine.dispose()


def test_waiting_frames_needs_no_pread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows' ``os`` has no ``pread``: the header is read without it (an office server on
    Windows would otherwise fail in every commit)."""
    path = tmp_path / "p.db"
    engine = _engine(path)
    db.checkpointer(engine).threshold = 10**9  # type: ignore[union-attr]
    _write(engine, 0, 5)
    expected = checkpoint.waiting_frames(str(path))
    monkeypatch.delattr(os, "pread")
    assert checkpoint.waiting_frames(str(path)) == expected and expected is not None
    engine.dispose()


def test_a_file_under_a_folder_with_spaces_and_chinese_is_checkpointed(tmp_path: Path) -> None:
    """The checkpoint's own connection opens the very file by URI (a user's folder such as
    ``网格 数据`` included), and copies every frame that waits."""
    folder = tmp_path / "网格 数据 #1"
    folder.mkdir()
    path = folder / "p.db"
    engine = _engine(path)
    found = db.checkpointer(engine)
    assert found is not None
    found.threshold = 10**9
    _write(engine, 0, 3)
    busy, frames, copied = found.checkpoint()
    assert busy == 0 and frames > 100 and copied == frames
    assert checkpoint.waiting_frames(str(path)) == (frames, 0)
    engine.dispose()


def test_the_wal_stays_bounded_when_writers_leave_no_gap(tmp_path: Path) -> None:
    """Writers back to back never let a copied WAL start again; past ``limit`` frames a
    write transaction copies it first and the WAL starts over, so it stays small."""
    path = tmp_path / "p.db"
    engine = _engine(path)
    found = db.checkpointer(engine)
    assert found is not None
    found.threshold, found.limit = 50, 400
    stop = time.monotonic() + 4
    n = 0
    largest = 0
    while time.monotonic() < stop:  # a reader and a writer, without pause
        with db.read(engine) as conn:
            conn.execute(db.meta.select().limit(1)).all()
        _write(engine, n, 1, rows=10)
        n += 1
        largest = max(largest, (checkpoint.waiting_frames(str(path)) or (0, 0))[0])
    assert n > 50
    assert largest < 3 * found.limit, (largest, found.by_writers, found.runs)
    engine.dispose()


def test_a_connection_kept_for_many_transactions_is_checkpointed(tmp_path: Path) -> None:
    """A loader that keeps one connection for all its transactions (never checked in) is
    checkpointed from its commits, and its WAL stays bounded."""
    path = tmp_path / "p.db"
    engine = _engine(path)
    found = db.checkpointer(engine)
    assert found is not None
    found.threshold, found.limit = 50, 400
    largest = 0
    with engine.connect() as conn:
        for n in range(150):
            with conn.begin():
                rows = [{"key": f"k{n}-{i}", "value": VALUE} for i in range(10)]
                conn.execute(insert(db.meta), rows)
            largest = max(largest, (checkpoint.waiting_frames(str(path)) or (0, 0))[0])
        _settle(engine)
        assert _until(lambda: found.runs > 0) and _copied(path) > 0
    assert largest < 3 * found.limit, largest
    engine.dispose()


def test_an_engine_used_again_after_dispose_is_checkpointed(tmp_path: Path) -> None:
    """Disposal ends the thread; the next commits start it again."""
    path = tmp_path / "p.db"
    engine = _engine(path)
    _write(engine, 0, 5)
    engine.dispose()
    found = db.checkpointer(engine)
    assert found is not None and found._thread is None
    before = found.runs
    _write(engine, 5, 50)
    _settle(engine)
    assert _until(lambda: found.runs > before)
    assert (checkpoint.waiting_frames(str(path)) or (0, 0))[1] < checkpoint.THRESHOLD
    engine.dispose()


def test_a_disposed_engine_leaves_a_tidy_file(tmp_path: Path) -> None:
    """Disposing the engine (a server's end, ``server-admin``) copies what waits and removes
    the WAL, as SQLite's last close did before."""
    path = tmp_path / "p.db"
    engine = _engine(path)
    _write(engine, 0, 30)
    engine.dispose()
    assert not Path(f"{path}-wal").exists()
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT count(*) FROM meta WHERE key LIKE 'k%'").fetchone()[0] == 600
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


WRITER = textwrap.dedent(
    """
    import sys
    from sqlalchemy import insert
    from sync.server import db
    engine = db.make_engine(f"sqlite:///{sys.argv[1]}")
    db.init_db(engine)
    n = 0
    while True:
        with db.write(engine) as conn:
            rows = [{"key": f"k{n}-{i}", "value": "网格" * 1500} for i in range(20)]
            conn.execute(insert(db.meta), rows)
        print(n, flush=True)  # acknowledged: committed
        n += 1
    """
)


def test_a_killed_server_loses_no_committed_write(tmp_path: Path) -> None:
    """A server process killed (SIGKILL) while it writes and checkpoints keeps every write it
    acknowledged, in a sound file."""
    path = tmp_path / "p.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    acked = -1
    for line in proc.stdout:  # past a few checkpoints (60 frames a commit)
        acked = int(line)
        if acked >= 120:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        keys = {k for (k,) in raw.execute("SELECT key FROM meta WHERE key LIKE 'k%'")}
    assert {f"k{n}-{i}" for n in range(acked + 1) for i in range(20)} <= keys


def test_a_stopped_server_leaves_a_tidy_file(tmp_path: Path) -> None:
    """``gridcollect server`` stopped (SIGTERM) after a write disposes its engine: the
    checkpointer copies what waits and the WAL is gone, the write kept."""
    import socket

    import requests

    path = tmp_path / "p.db"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "sync.server.cli", "server", "--db", f"sqlite:///{path}"]
    proc = subprocess.Popen(
        [*cmd, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                assert requests.get(f"http://127.0.0.1:{port}/v1/info", timeout=2).ok
                break
            except requests.ConnectionError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        body = {"username": "nobody", "password": "wrong", "device_id": "dev1"}
        answer = requests.post(f"http://127.0.0.1:{port}/v1/login", json=body, timeout=10)
        assert answer.status_code == 401  # and a failure row written
        assert Path(f"{path}-wal").exists()
    finally:
        proc.terminate()
        proc.wait(30)  # uvicorn ends on the signal it caught, after its shutdown
    assert not Path(f"{path}-wal").exists()
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT count(*) FROM login_failures").fetchone()[0] > 0
