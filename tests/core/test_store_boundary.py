"""SQL on the device's store stays inside ``app.core.store`` (issue 11).

Other code asks the Store's methods and parts (``store.outbox``, ``store.replica`` for the
sync replica); only the platform server runs SQL elsewhere, on its own database.
"""

from __future__ import annotations

import re
from pathlib import Path

from app.core.store import OutboxState, Store
from tests.factories import resident

ROOT = Path(__file__).resolve().parents[2]
SQL_ON_STORE = re.compile(r"\.conn\.(execute|executemany|executescript|interrupt)\b|store\.conn\b")
DEVICE_STORE = re.compile(r"store\.conn\b")  # the server's own ``tx.conn`` is SQLAlchemy


def test_no_sql_on_the_store_outside_its_package() -> None:
    offenders = []
    for package in ("app", "sync"):
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel.startswith("app/core/store/"):
                continue
            pattern = DEVICE_STORE if rel.startswith("sync/server/") else SQL_ON_STORE
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if pattern.search(line):
                    offenders.append(f"{rel}:{number}: {line.strip()}")
    assert offenders == []


def test_outbox_states_keep_their_stored_values(store: Store) -> None:
    assert [s.value for s in OutboxState] == [
        "pending",
        "applied",
        "conflict",
        "merged",
        "rejected",
    ]
    store.save("resident", resident(seq=1))
    [(state,)] = store.conn.execute("SELECT state FROM outbox").fetchall()
    assert state == OutboxState.PENDING and type(state) is str
