"""Time ``server-admin upgrade`` of a platform holding the demo street office (prints; asserts
nothing).

Usage: python tests/bench/bench_upgrade.py [--size 1630000] [--seed 7]
       [--backend sqlite|postgresql|pg|both] [--db URL] [--per-revision]

Builds the demo community of ``--size`` records once (cached in /tmp/gridcollect-bench-<size>-
<seed>, shared with bench_search), loads it into a platform database at the baseline revision
(0001, the schema of the last release without migrations) with one version and one op-log row
per record, its natural keys and its people index, then times ``migrate.upgrade`` to head.
The baseline measured in the same run is a plain copy of the same data (SQLite: ``VACUUM
INTO``; PostgreSQL: ``CREATE TABLE ... AS`` of the big tables), so ``upgrade / copy`` says how
many full copies an upgrade costs. PostgreSQL runs on a throwaway cluster (Debian's binaries),
or in ``--db``, an empty database of a cluster you keep. ``--per-revision`` upgrades one
revision at a time and prints each one's time (which one dominates).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sqlalchemy import text  # noqa: E402

from sync.server import db, migrate  # noqa: E402

DEFAULT_SIZE = 1_630_000
CHUNK = 20_000
AT = "2026-12-01T08:00:00+08:00"
DEVICE = "bench-device-0001"


def demo_store(size: int, seed: int) -> Path:
    """The cached demo store (generated once with ``gridcollect demo``)."""
    folder = Path(f"/tmp/gridcollect-bench-{size}-{seed}")
    path = folder / "gridcollect.sqlite"
    if not path.exists():
        import subprocess

        cli = [sys.executable, "-m", "app.cli", "--data-dir", str(folder), "demo"]
        subprocess.run([*cli, "--size", str(size), "--seed", str(seed)], check=True)
    return path


def open_demo(store: Path) -> sqlite3.Connection:
    """The cached demo store, to read from: demo stores are encrypted like any other, and
    their data dir holds the passphrase (``gridcollect demo``), so the store's own driver
    opens them with the key the app would use."""
    from app.core.store import driver
    from app.core.vault import access

    return driver.connect(store, access.key_for_store(store))


def _rows(store: Path) -> Iterator[dict[str, list[tuple[Any, ...]]]]:
    """Chunks of platform rows (records, record_versions, ops) made from the device store."""
    conn = open_demo(store)
    cur = conn.execute(
        "SELECT rid, id, form, form_version, grid, title, data, status, deleted FROM records"
    )
    seq = 0
    while batch := cur.fetchmany(CHUNK):
        out: dict[str, list[tuple[Any, ...]]] = {"records": [], "record_versions": [], "ops": []}
        for _rid, rid, form, fv, grid, title, data, status, deleted in batch:
            seq += 1
            op = f"{DEVICE}:{seq}"
            out["records"].append(
                (
                    rid,
                    form,
                    fv,
                    grid,
                    title,
                    data,
                    status,
                    bool(deleted),
                    1,
                    None,
                    "{}",
                    seq,
                    AT,
                    "wang",
                    AT,
                    "wang",
                )
            )
            out["record_versions"].append(
                (
                    rid,
                    1,
                    form,
                    grid,
                    data,
                    status,
                    bool(deleted),
                    None,
                    "create",
                    op,
                    DEVICE,
                    "wang",
                    "wang",
                    AT,
                    AT,
                )
            )
            result = json.dumps({"op_id": op, "status": "applied", "version": 1})
            out["ops"].append((op, DEVICE, "wang", rid, 1, result, AT))
        yield out
    conn.close()


def _side_rows(store: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = open_demo(store)
    keys = conn.execute(
        "SELECT k.form, k.key, r.id FROM record_keys k JOIN records r ON r.rid = k.rid"
    ).fetchall()
    people = conn.execute(
        "SELECT r.id, p.form, p.name, p.pinyin, coalesce(p.birth, '') "
        "FROM people p JOIN records r ON r.rid = p.rid"
    ).fetchall()
    conn.close()
    return {"record_keys": keys, "people": people}


def load(engine: Any, store: Path) -> int:
    """Fill a baseline platform; returns the number of records."""
    migrate.upgrade(engine, migrate.BASELINE)
    count = 0
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        sqlite = engine.dialect.name == "sqlite"
        if sqlite:
            cur.execute("BEGIN")
        for chunk in _rows(store):
            for table, rows in chunk.items():
                _insert(cur, engine, table, rows)
            count += len(chunk["records"])
        for table, rows in _side_rows(store).items():
            _insert(cur, engine, table, rows)
        cur.execute(f"UPDATE counters SET value = {count} WHERE name = 'seq'")
        if sqlite:
            cur.execute("COMMIT")
        else:
            raw.commit()
    finally:
        raw.close()
    return count


_BASELINE_COLUMNS = {
    "records": "id, form, form_version, grid, title, data, status, deleted, version, conflict, "
    "stamps, seq, created_at, created_by, updated_at, updated_by",
    "record_versions": "record_id, version, form, grid, data, status, deleted, conflict, kind, "
    "op_id, device_id, username, author, edited_at, at",
    "ops": "op_id, device_id, username, record_id, version, result, at",
    "record_keys": "form, key, record_id",
    "people": "record_id, form, name, pinyin, birth",
}


def _insert(cur: Any, engine: Any, table: str, rows: list[tuple[Any, ...]]) -> None:
    cols = _BASELINE_COLUMNS[table]
    if engine.dialect.name == "postgresql":
        with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    marks = ", ".join("?" for _ in cols.split(","))
    cur.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", rows)


def copy_baseline(engine: Any, path: Path | None) -> float:
    """A plain copy of the same data: the yardstick for the upgrade."""
    start = time.perf_counter()
    if path is not None:
        target = path.with_suffix(".copy")
        target.unlink(missing_ok=True)
        con = sqlite3.connect(path)
        con.execute("VACUUM INTO ?", (str(target),))
        con.close()
        target.unlink()
    else:
        with engine.begin() as conn:
            for table in ("records", "record_versions", "ops"):
                conn.execute(text(f"CREATE TABLE copy_{table} AS SELECT * FROM {table}"))
                conn.execute(text(f"DROP TABLE copy_{table}"))
    return time.perf_counter() - start


def revisions_after(start: str) -> list[str]:
    """The revision ids from ``start`` (exclusive) to head, oldest first."""
    chain = [rev.revision for rev in migrate.scripts().walk_revisions()]
    chain.reverse()
    return chain[chain.index(start) + 1 :]


def upgrade_timed(engine: Any) -> tuple[str | None, str, float]:
    """Upgrade one revision at a time, printing each revision's time (which one dominates);
    returns (from, to, total seconds). Each step is its own transaction, unlike
    ``server-admin upgrade``: the sum equals one run to head up to the per-step ANALYZE."""
    with engine.connect() as conn:
        before = migrate.current_revision(conn)
    total = 0.0
    for revision in revisions_after(before or migrate.BASELINE):
        start = time.perf_counter()
        migrate.upgrade(engine, revision)
        took = time.perf_counter() - start
        total += took
        print(f"  revision {revision}: {took:8.1f} s", flush=True)
    return before, revisions_after(migrate.BASELINE)[-1], total


def run(
    backend: str, store: Path, work: Path, url: str | None = None, per_revision: bool = False
) -> None:
    cluster = None
    path: Path | None = None
    if url is not None:
        pass  # an empty database of a cluster kept by the caller (--db)
    elif backend == "sqlite":
        path = work / "platform.db"
        url = f"sqlite:///{path}"
    else:
        from tests.sync.conftest import _start_cluster

        cluster = _start_cluster()
        from sqlalchemy import create_engine

        maint = create_engine(f"{cluster.url}/postgres", isolation_level="AUTOCOMMIT")
        with maint.connect() as conn:
            conn.execute(text("CREATE DATABASE bench_upgrade"))
        maint.dispose()
        path, url = None, f"{cluster.url}/bench_upgrade"
    engine = db.make_engine(url)
    try:
        start = time.perf_counter()
        count = load(engine, store)
        loaded = time.perf_counter() - start
        copy = copy_baseline(engine, path)
        start = time.perf_counter()
        if per_revision:
            before, after, _total = upgrade_timed(engine)
        else:
            before, after = migrate.upgrade(engine)
        took = time.perf_counter() - start
        print(
            f"{backend}: {count:,} records (load {loaded:.0f} s); upgrade {before} -> {after} "
            f"{took:.1f} s; copy of the data {copy:.1f} s; upgrade/copy = {took / copy:.2f}"
        )
    finally:
        engine.dispose()
        if cluster is not None:
            cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "pg", "both"], default="both")
    parser.add_argument("--db", help="an empty database URL to use instead of a throwaway one")
    parser.add_argument("--per-revision", action="store_true", help="time each revision")
    args = parser.parse_args()
    if args.backend == "pg":
        args.backend = "postgresql"
    store = demo_store(args.size, args.seed)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    with tempfile.TemporaryDirectory(prefix="gc-bench-upgrade-") as tmp:
        for backend in backends:
            run(backend, store, Path(tmp), args.db, args.per_revision)


if __name__ == "__main__":
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    main()
