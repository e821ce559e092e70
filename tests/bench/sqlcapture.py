"""Every statement a SQLite-backed SQLAlchemy engine runs, in order, for replay as a floor.

Used by the bench servers (``bench_sync.SERVER_SCRIPT`` with ``GC_BENCH_CAPTURE=<file>``): the
platform's own statements and values, with its transaction boundaries, pickled when the server
stops. ``replay`` runs them again on a plain ``sqlite3`` connection: what SQLite alone costs for
the same work, with no Python of the platform around it.
"""

from __future__ import annotations

import pickle
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

Step = tuple[str, Any, bool]  # (SQL or "COMMIT"/"ROLLBACK", parameters, executemany)


class Capture:
    """Listens on ``engine`` from now on; ``dump`` writes what it saw."""

    def __init__(self, engine: Engine) -> None:
        self.steps: list[Step] = []
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "commit", lambda _conn: self.steps.append(("COMMIT", None, False)))
        event.listen(engine, "rollback", lambda _conn: self.steps.append(("ROLLBACK", None, False)))

    def _statement(
        self, _conn: Any, _cursor: Any, sql: str, params: Any, _context: Any, many: bool
    ) -> None:
        kept = [tuple(p) for p in params] if many else tuple(params or ())
        self.steps.append((sql, kept, many))

    def dump(self, path: str) -> None:
        Path(path).write_bytes(pickle.dumps(self.steps))


def load(path: Path) -> list[Step]:
    steps: list[Step] = pickle.loads(path.read_bytes())
    return steps


def replay(
    steps: list[Step],
    db: Path,
    only: Callable[[str], bool] | None = None,
    setup: Sequence[str] = (),
) -> int:
    """Run ``steps`` on ``db`` as the platform's connections set it up (WAL, synchronous FULL,
    transactions opened by the captured BEGINs); reads are fetched whole. ``only``: just the
    statements it accepts (with the transaction boundaries); ``setup``: statements run first
    (e.g. ``DROP INDEX``, to see what an index costs). Returns the number of statements run."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    for sql in setup:
        conn.execute(sql)
    ran = 0
    for sql, params, many in steps:
        if sql in ("COMMIT", "ROLLBACK"):
            if conn.in_transaction:
                conn.execute(sql)
            continue
        if only is not None and not sql.startswith("BEGIN") and not only(sql):
            continue
        if many:
            conn.executemany(sql, params)
        else:
            conn.execute(sql, params).fetchall()
        ran += 1
    conn.close()
    return ran
