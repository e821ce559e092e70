"""A store's one-time jobs (``app.core.store.once``) on a real SQLite file: a job cut short
leaves nothing written and runs again whole; a finished one never runs again."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from app.core.store.once import flag_step, run_once


def store(tmp_path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    conn.execute("CREATE TABLE t (v TEXT)")
    conn.execute("INSERT INTO t VALUES ('a'), ('b')")
    for statement in flag_step("job_pending"):
        conn.execute(statement)
    return conn


def test_a_job_cut_short_leaves_nothing_and_runs_again_whole(tmp_path: Path) -> None:
    conn = store(tmp_path)

    def broken() -> int:
        conn.execute("UPDATE t SET v = gc_up(v)")
        raise RuntimeError("power cut")

    with pytest.raises(RuntimeError):
        run_once(conn, "job_pending", broken, ("gc_up", str.upper))
    assert [v for (v,) in conn.execute("SELECT v FROM t ORDER BY v")] == ["a", "b"]
    with pytest.raises(sqlite3.OperationalError):  # the function is not left on the connection
        conn.execute("SELECT gc_up('x')")

    def work() -> int:
        return conn.execute("UPDATE t SET v = gc_up(v)").rowcount

    assert run_once(conn, "job_pending", work, ("gc_up", str.upper)) == 2
    again = sqlite3.connect(tmp_path / "s.db")  # what another open reads: committed
    assert [v for (v,) in again.execute("SELECT v FROM t ORDER BY v")] == ["A", "B"]
    assert again.execute("SELECT count(*) FROM meta").fetchone()[0] == 0
    assert run_once(conn, "job_pending", lambda: 99) == 0  # the flag is gone: never again
