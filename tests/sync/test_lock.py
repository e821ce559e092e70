"""sync.lock: one sync per data dir, across processes; a dead holder leaves no stale lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from sync.lock import LockedError, SyncLock


def test_a_second_lock_is_refused_until_the_first_is_released(tmp_path: Path) -> None:
    first = SyncLock(tmp_path).acquire()
    with pytest.raises(LockedError) as caught:
        SyncLock(tmp_path).acquire()
    assert f"pid={os.getpid()}" in caught.value.holder
    assert "另一个同步" in caught.value.reason("zh") and "another sync" in caught.value.reason("en")
    first.release()
    with SyncLock(tmp_path) as again:
        assert again.held
    assert not again.held


def test_the_lock_is_released_when_the_body_raises(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), SyncLock(tmp_path):
        raise RuntimeError("boom")
    SyncLock(tmp_path).acquire().release()


def test_waiting_gives_up_after_the_timeout(tmp_path: Path) -> None:
    with SyncLock(tmp_path), pytest.raises(LockedError):
        SyncLock(tmp_path, wait=0.3).acquire()


def test_another_process_holds_it_and_its_death_frees_it(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    script = textwrap.dedent(
        f"""
        import pathlib, time
        from sync.lock import SyncLock
        lock = SyncLock({str(tmp_path)!r}).acquire()
        pathlib.Path({str(ready)!r}).write_text("1")
        time.sleep(60)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        with pytest.raises(LockedError) as caught:
            SyncLock(tmp_path).acquire()
        assert f"pid={proc.pid}" in caught.value.holder
        proc.send_signal(signal.SIGKILL)  # killed: no release, no cleanup
        proc.wait(timeout=30)
        with SyncLock(tmp_path) as lock:  # no stale lock left behind
            assert lock.held
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def test_not_reentrant(tmp_path: Path) -> None:
    lock = SyncLock(tmp_path).acquire()
    try:
        with pytest.raises(RuntimeError):
            lock.acquire()
    finally:
        lock.release()
