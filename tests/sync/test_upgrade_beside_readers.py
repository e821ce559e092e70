"""An upgrade of a SQLite platform while another process reads the file.

Why: the upgrade's engine looks at the WAL's frame count by opening and closing the ``-shm``
file (``app.core.checkpoint.waiting_frames``). On POSIX, closing any descriptor of a file
drops every fcntl lock the process holds on it, SQLite's wal-index locks included
(https://www.sqlite.org/howtocorrupt.html §2.2), so another process that opened the file
during the upgrade (a second upgrade, ``upgrade --check``, a server started too early, a
backup) found the wal-index unlocked: both failed with "locking protocol" and the upgrade was
rolled back at its commit.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from sync.server import db, migrate
from tests.sync.test_migrations import (  # noqa: F401 (old_platform: a fixture)
    FIXTURE,
    ROOT,
    _snapshot,
    _sqlite_from_dump,
    old_platform,
)

READER = (
    "import sqlite3, sys\n"
    "conn = sqlite3.connect(sys.argv[1], timeout=30)\n"
    "print(conn.execute('SELECT count(*) FROM records').fetchone()[0])\n"
)


@pytest.mark.skipif(os.name != "posix", reason="fcntl locks are per process on POSIX only")
def test_another_process_reads_during_an_upgrade_and_the_upgrade_commits(
    tmp_path: Path,
) -> None:
    path = _sqlite_from_dump(FIXTURE / "platform.sql", tmp_path / "old.db")
    engine = db.make_engine(f"sqlite:///{path}")
    before = _snapshot(engine)
    answers: list[subprocess.CompletedProcess[str]] = []

    def read_meanwhile(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        # after each revision, in the upgrade's one open transaction
        if statement.lstrip().upper().startswith("UPDATE ALEMBIC_VERSION"):
            answers.append(
                subprocess.run(
                    [sys.executable, "-c", READER, str(path)],
                    capture_output=True,
                    text=True,
                    timeout=60,
                )
            )

    event.listen(Engine, "before_cursor_execute", read_meanwhile)
    try:
        assert migrate.upgrade(engine) == (migrate.BASELINE, migrate.head())
    finally:
        event.remove(Engine, "before_cursor_execute", read_meanwhile)
    try:
        assert len(answers) > 1  # a read after every revision
        for reader in answers:  # each saw the old platform, as a WAL reader beside a writer
            assert (reader.returncode, reader.stdout.strip()) == (
                0,
                str(len(before["records"])),
            ), reader.stderr[-300:]
        assert migrate.state(engine).current == migrate.head()
        assert _snapshot(engine) == before
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
    finally:
        engine.dispose()


def test_three_upgrades_at_once_make_one_upgrade(old_platform: str) -> None:  # noqa: F811
    """One upgrades, the others wait for it and find the schema current (SQLite: its write
    lock; PostgreSQL: the advisory lock); the platform's rows are as they were."""
    engine = db.make_engine(old_platform)
    before = _snapshot(engine)
    engine.dispose()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "sync.server.cli", "--lang", "en", "server-admin"]
    procs = [
        subprocess.Popen(
            [*cmd, "--db", old_platform, "upgrade"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    said = sorted(out.split(" (")[0].split(" from ")[0] for out, _err in outs)
    assert said == ["schema is current", "schema is current", "schema upgraded"], outs
    engine = db.make_engine(old_platform)
    try:
        assert migrate.state(engine).current == migrate.head()
        assert _snapshot(engine) == before
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), db.metadata) == []
    finally:
        engine.dispose()
