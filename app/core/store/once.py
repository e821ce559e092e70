"""A store's one-time jobs: work a schema step left for the first open, marked by a meta flag.

Why at open and not in the step: some jobs need Python (sort keys, ID-number keys from the
forms' field types, address text), which a step's SQL cannot call. The job and the flag's
removal share one write transaction, so a job cut short runs again whole on the next open.

Part of ``app.core.store``: SQL stays in this package.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

Function = tuple[str, Callable[[str], str]]  # an SQL function the job's statements call


def flag_step(flag: str) -> list[str]:
    """The schema step's statement that leaves ``flag`` for the first open."""
    return [f"INSERT OR REPLACE INTO meta (key, value) VALUES ('{flag}', '1')"]


def run_once(
    conn: sqlite3.Connection,
    flag: str,
    work: Callable[[], int],
    function: Function | None = None,
) -> int:
    """Run ``work`` if the meta ``flag`` is still there, and remove the flag in the same
    transaction; returns what ``work`` returned, else 0. ``function`` is registered on the
    connection for the job's SQL and unregistered after."""
    if function:
        conn.create_function(function[0], 1, function[1], deterministic=True)
    conn.execute("BEGIN IMMEDIATE")
    try:
        if conn.execute("SELECT 1 FROM meta WHERE key = ?", (flag,)).fetchone() is None:
            conn.execute("COMMIT")
            return 0
        done = work()
        conn.execute("DELETE FROM meta WHERE key = ?", (flag,))
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    finally:
        if function:
            conn.create_function(function[0], 1, None)
    conn.execute("COMMIT")
    return done
