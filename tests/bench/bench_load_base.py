"""Time and peak memory of ``gridcollect server-admin load-base`` of a city mirror (prints;
asserts nothing).

Usage: python tests/bench/bench_load_base.py [--records 1630000] [--backend sqlite|postgresql|both]
       [--pg-url postgresql://postgres@127.0.0.1:55433] [--work DIR]

Writes a city-mirror CSV of ``--records`` residents (deterministic: distinct ID numbers, names,
addresses, spread over grids of 2,000 people), then runs the real command as a child process
into a fresh SQLite file and a fresh PostgreSQL database, at N/8 and at N records: wall time,
rows/s and the child's peak resident memory (``getrusage(RUSAGE_CHILDREN)`` of a wrapper
process per run). Peak memory at the two sizes shows whether the load streams. The baseline
measured in the same run is a plain load of the same rows into one table of the records'
shape, a chunk of 1,000 per transaction (SQLite: ``executemany``; PostgreSQL: ``COPY``):
``load / raw`` says what validation, de-duplication, versions, op log and search index cost.
PostgreSQL: a throwaway durable cluster (Debian's binaries), or ``--pg-url``, a cluster you
keep where the bench may create and drop the database ``bench_load``.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.core import idnumber  # noqa: E402
from sync.server.db import normalize_url  # noqa: E402
from tests.bench.common import GIVEN, HEADERS, SURNAMES, resident_cells  # noqa: E402

DEFAULT_RECORDS = 1_630_000
PER_GRID = 2_000
GRIDS_PER_COMMUNITY = 10
CHUNK = 1_000
DATABASE = "bench_load"

_MEASURE = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
r = subprocess.run(sys.argv[1:], capture_output=True, text=True, encoding="utf-8")
took = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
print(json.dumps([r.returncode, r.stdout[-2000:], r.stderr[-2000:], took, peak]))
"""


# -- the mirror -------------------------------------------------------------------------------


def grid_of(i: int) -> str:
    number = i // PER_GRID
    community, grid = divmod(number, GRIDS_PER_COMMUNITY)
    return f"330106{community + 1:03d}{grid + 1:03d}-01"


def mirror_rows(count: int, seed: int = 17) -> Iterator[list[str]]:
    """``count`` valid, distinct residents as CSV cells under ``HEADERS`` (generated lazily:
    the ID number's birth date and sequence come from the row's index)."""
    rng = random.Random(seed)
    days = 80 * 365
    for i in range(count):
        birth = dt.date(1940, 1, 1) + dt.timedelta(days=(i * 7919) % days)
        seq = (i // days) % 1000
        first17 = f"330106{birth:%Y%m%d}{seq:03d}"
        name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
        number = first17 + idnumber.check_char(first17)
        yield resident_cells(i, number, name, seq, birth, grid_of(i), f"13{i % 10**9:09d}")


def write_mirror(path: Path, count: int) -> Path:
    if path.exists():
        return path
    tmp = path.with_suffix(".part")
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADERS)
        writer.writerows(mirror_rows(count))
    tmp.rename(path)
    return path


def mirror_chunks(path: Path) -> Iterator[list[tuple[str, str, str]]]:
    """(id, grid, JSON of the row) a chunk at a time: what the raw baseline stores."""
    grid = HEADERS.index("所属网格")
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        next(reader)
        chunk: list[tuple[str, str, str]] = []
        for i, row in enumerate(reader):
            chunk.append((f"r{i}", row[grid], json.dumps(dict(zip(HEADERS, row, strict=True)))))
            if len(chunk) == CHUNK:
                yield chunk
                chunk = []
        if chunk:
            yield chunk


# -- the runs ---------------------------------------------------------------------------------


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "app.cli", "server-admin", *args]


def prepare_platform(url: str, count: int) -> None:
    """Schema, communities and grids (setup, not measured)."""
    from sync.server import admin, db, migrate

    engine = db.make_engine(url)
    try:
        migrate.upgrade(engine)
        grids = sorted({grid_of(i) for i in range(0, count, PER_GRID)})
        for community in sorted({g[:9] for g in grids}):
            admin.put_community(engine, community, f"社区{community[-3:]}")
        for grid in grids:
            admin.put_grid(engine, grid, f"网格{grid[9:12]}", grid[:9])
    finally:
        engine.dispose()


def load(url: str, path: Path) -> tuple[float, int, dict[str, Any]]:
    """(wall s, peak RSS bytes, report) of the real command in a fresh wrapper process."""
    argv = cli("--db", url, "load-base", "--json", "--form", "resident", str(path))
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDCOLLECT_")}
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, *argv],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        check=True,
    )
    code, stdout, stderr, took, peak = json.loads(out.stdout)
    if code not in (0, 1):
        raise RuntimeError(f"load-base exited {code}: {stderr}")
    last = stdout.strip().splitlines()[-1]  # the summary closes the JSON report
    report = json.loads("{" + last.split("], ", 1)[1])
    return took, peak, report


def raw_sqlite(path: Path, mirror: Path) -> float:
    """Rows/s of a plain executemany of the same rows, a chunk per transaction."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")  # as the platform commits
    conn.execute("CREATE TABLE raw (id TEXT PRIMARY KEY, grid TEXT, data TEXT)")
    count, start = 0, time.perf_counter()
    for chunk in mirror_chunks(mirror):
        with conn:
            conn.executemany("INSERT INTO raw VALUES (?, ?, ?)", chunk)
        count += len(chunk)
    took = time.perf_counter() - start
    conn.close()
    return count / took


def raw_postgresql(url: str, mirror: Path) -> float:
    """Rows/s of a plain COPY of the same rows, a chunk per transaction."""
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        conn.execute("CREATE TABLE raw (id TEXT PRIMARY KEY, grid TEXT, data JSONB)")
        conn.commit()
        count, start = 0, time.perf_counter()
        for chunk in mirror_chunks(mirror):
            with conn.cursor() as cur, cur.copy("COPY raw (id, grid, data) FROM STDIN") as copy:
                for row in chunk:
                    copy.write_row(row)
            conn.commit()
            count += len(chunk)
        took = time.perf_counter() - start
        conn.execute("DROP TABLE raw")
        conn.commit()
    return count / took


class Backend:
    """Fresh databases of one kind, one per run."""

    def __init__(self, kind: str, work: Path, pg_url: str | None) -> None:
        self.kind, self.work, self.cluster = kind, work, None
        self.base = normalize_url(pg_url) if pg_url else None
        if kind == "postgresql" and pg_url is None:
            from tests.sync.conftest import _start_cluster

            self.cluster = _start_cluster(durable=True)
            self.base = self.cluster.url

    def fresh(self) -> str:
        if self.kind == "sqlite":
            self.drop()
            return f"sqlite:///{self.work / 'platform.db'}"
        self._admin(f"DROP DATABASE IF EXISTS {DATABASE}")
        self._admin(f"CREATE DATABASE {DATABASE}")
        return f"{self.base}/{DATABASE}"

    def size(self) -> int:
        if self.kind == "sqlite":
            return sum(p.stat().st_size for p in self.work.glob("platform.db*"))
        from sqlalchemy import create_engine, text

        engine = create_engine(f"{self.base}/postgres")
        with engine.connect() as conn:
            size = conn.execute(text(f"SELECT pg_database_size('{DATABASE}')")).scalar_one()
        engine.dispose()
        return int(size)

    def drop(self) -> None:
        if self.kind == "sqlite":
            for p in self.work.glob("platform.db*"):
                p.unlink()
        else:
            self._admin(f"DROP DATABASE IF EXISTS {DATABASE}")

    def stop(self) -> None:
        self.drop()
        if self.cluster is not None:
            self.cluster.stop()

    def _admin(self, sql: str) -> None:
        from sqlalchemy import create_engine, text

        engine = create_engine(f"{self.base}/postgres", isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(sql))
        engine.dispose()

    def raw(self, mirror: Path) -> float:
        if self.kind == "sqlite":
            path = self.work / "raw.db"
            try:
                return raw_sqlite(path, mirror)
            finally:
                for p in self.work.glob("raw.db*"):
                    p.unlink()
        url = self.fresh()
        try:
            return raw_postgresql(url, mirror)
        finally:
            self.drop()


def run(backend: Backend, mirror: Path, count: int, say: Callable[[str], None]) -> int:
    """One measured load into a fresh database; returns the child's peak RSS."""
    url = backend.fresh()
    prepare_platform(url, count)
    raw = backend.raw(mirror) if backend.kind == "sqlite" else None
    took, peak, report = load(url, mirror)
    size = backend.size()
    backend.drop()
    if raw is None:  # PostgreSQL's baseline needs its own database: after the load
        raw = backend.raw(mirror)
    rate = count / took
    say(
        f"{backend.kind:<10} {count:>9,} rows  load-base {took:8.1f} s {rate:7.0f} rows/s  "
        f"peak RSS {peak / 2**20:6.0f} MB  raw {raw:8.0f} rows/s  load/raw {rate / raw:.3f}  "
        f"db {size / 2**30:5.1f} GB  {report}"
    )
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=DEFAULT_RECORDS)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--pg-url", help="a cluster to create the database bench_load in")
    parser.add_argument("--work", type=Path, help="where the mirror and SQLite files go")
    args, _rest = parser.parse_known_args()
    kinds = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    if "postgresql" in kinds and args.pg_url is None:
        from tests.sync.conftest import _pg_bin

        if _pg_bin() is None:
            print("PostgreSQL binaries not found: SQLite only")
            kinds.remove("postgresql")
    work = args.work or Path(tempfile.mkdtemp(prefix="gc-bench-load-"))
    work.mkdir(parents=True, exist_ok=True)

    def say(line: str) -> None:
        print(f"{line}  (load {os.getloadavg()[0]:.1f})", flush=True)

    sizes = sorted({max(args.records // 8, 1), args.records})
    mirrors = {n: write_mirror(work / f"mirror-{n}.csv", n) for n in sizes}
    try:
        for kind in kinds:
            backend = Backend(kind, work, args.pg_url)
            try:
                peaks = [run(backend, mirrors[n], n, say) for n in sizes]
            finally:
                backend.stop()
            if len(peaks) == 2:
                say(
                    f"{kind:<10} streams: peak RSS {peaks[0] / 2**20:.0f} MB at {sizes[0]:,} "
                    f"rows, {peaks[1] / 2**20:.0f} MB at {sizes[1]:,} "
                    f"(x{peaks[1] / peaks[0]:.2f} for x{sizes[1] / sizes[0]:.0f} the rows)"
                )
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    main()
