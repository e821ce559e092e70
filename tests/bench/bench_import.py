"""Import of N resident rows from CSV vs a raw executemany of the same rows (same run).

Usage: python tests/bench/bench_import.py [--rows 20000]
Prints rows/s for both and the ratio import/raw (the issue's aim: >= 0.3, then >= 0.5), in
wall time and in CPU time (on a shared machine the CPU figure is the steadier one), for a
cold process (the first import loads the pinyin dictionary, area codes and phone metadata)
and a warm one. The "SQL floor" line replays the very statements the warm import ran into a
fresh store: the ratio no Python-side work can beat. The "floor, record + key only" line
replays just the records and natural-key inserts: what any import that keeps records listable
and de-duplicated must write, without history, outbox op, person row or search terms. The
"read + check only" line reads and checks the file as the import does (``validate_file``) and
writes nothing: the Python floor below any store. The two "best on 2 cores" lines are no
timing but a bound worked out from this run's lines (``two_core_bound``): the fastest any
import with today's checks could be on two cores, the checks spread over both and the writes
on one (SQLite's single writer) with nothing else at all, writing every table (the SQL
floor) or only records and keys. "import, encrypted store" is the warm import
into a SQLCipher-keyed store, as the app's store is (the other lines write plaintext SQLite
through the same driver).

"import, checked in 2nd process" is the warm import with the file read and checked in a
second process (``app.core.import_worker``) while this one writes: its CPU column counts both
processes, so its CPU ratio is the work done, its wall ratio what the two cores buy (on a
machine busy with other work, nothing: read the two lines below it). "its writer process
alone" and "its checking process alone" split that CPU: on two free cores the wall is about
the larger of the two plus the child's start, and the writer's is the limit as long as it is
the larger (compare it with the SQL floor). The
"import, warm process" line checks in-process (``worker=False``), the cold one takes the
default (a second process from ``import_worker.MIN_BYTES``). ``--sizes`` imports files of a
few sizes both ways (the threshold's measurement), ``--pairs N`` alternates N imports of
``--rows`` each way and prints the medians. ``--what-if`` replays the SQL floor as two lighter
designs of the writer would write it: outbox create ops pointing at their records instead of
carrying a copy of the values, and one history row per import instead of one per record (the
SQL those designs save; neither is what the store writes today).
"""

from __future__ import annotations

import argparse
import csv
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.core.forms import FormSet, load_formset  # noqa: E402
from app.core.store import Store  # noqa: E402
from app.core.transfer import import_file, validate_file  # noqa: E402
from tests.bench.common import HEADERS, resident_rows, write_csv  # noqa: E402

Statements = list[tuple[str, list[Any]]]


def raw_executemany(csv_path: Path, db: Path) -> None:
    """The baseline: read the CSV and executemany into a plain table of the same shape."""
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode = WAL")
    cols = ", ".join(f"c{i} TEXT" for i in range(len(HEADERS)))
    conn.execute(f"CREATE TABLE plain (id INTEGER PRIMARY KEY, {cols})")
    with csv_path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        next(reader)
        marks = ", ".join("?" * len(HEADERS))
        with conn:
            conn.executemany(
                f"INSERT INTO plain ({', '.join(f'c{i}' for i in range(len(HEADERS)))}) "
                f"VALUES ({marks})",
                reader,
            )
    conn.close()


def one_step_per_value(csv_path: Path) -> None:
    """The floor of any check written in Python: read the CSV and make each row the record
    it will be (field -> stripped text), one interpreter step per value and no rule at all.
    A checked import cannot touch its values less than this."""
    with csv_path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        names = next(reader)
        for row in reader:
            {name: value.strip() for name, value in zip(names, row, strict=False)}


def _cpu() -> float:
    """CPU seconds of this process (ns clock) and of its finished children (the import's
    checker; ``os.times`` counts them in clock ticks)."""
    t = os.times()
    return time.process_time() + t.children_user + t.children_system


def _own_cpu() -> float:
    return time.process_time()


def split(fn: Callable[[], object]) -> tuple[tuple[float, float], tuple[float, float]]:
    """((wall, CPU of this process), (wall, CPU of its children)) of one call: the writer's
    and the checking process's shares of a pipelined import (the wall on two free cores is
    about the larger CPU, plus the child's start)."""
    wall, own, every = time.perf_counter(), _own_cpu(), _cpu()
    fn()
    wall, own, every = time.perf_counter() - wall, _own_cpu() - own, _cpu() - every
    return (wall, own), (wall, every - own)


def measured(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process and its children) of one call."""
    wall, cpu = time.perf_counter(), _cpu()
    fn()
    return time.perf_counter() - wall, _cpu() - cpu


class _Recorder:
    """The store's connection, noting every executemany (for the SQL floor)."""

    def __init__(self, conn: sqlite3.Connection, into: Statements) -> None:
        self._conn, self._into = conn, into

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def executemany(self, sql: str, rows: Iterable[Any]) -> sqlite3.Cursor:
        kept = list(rows)
        self._into.append((sql, kept))
        return self._conn.executemany(sql, kept)


def run_import(
    csv_path: Path,
    db: Path,
    formset: FormSet,
    rows: int,
    into: Statements,
    key: bytes | None = None,
    worker: bool | None = False,
) -> None:
    store = Store(db, formset, key)
    store.writes.conn = _Recorder(store.writes.conn, into)  # type: ignore[assignment]
    report = import_file(csv_path, formset.form("resident"), store, worker=worker)
    assert report.created == rows, report.errors[:3]
    store.close()


MINIMAL_TABLES = ("INTO records ", "INTO record_keys ")  # what every import must write
# each table an import writes, for ``--tables`` (the trailing space tells search from
# address_search, and records from record_keys)
TABLES = (
    "records",
    "record_keys",
    "people",
    "search",
    "address_search",
    "history",
    "outbox",
)


def replay(statements: Statements, db: Path, formset: FormSet, only: tuple[str, ...] = ()) -> None:
    """The warm import's inserts again, values ready: SQLite's share of the import (``only``:
    just the statements naming one of these)."""
    store = Store(db, formset)
    conn = store.writes.conn
    conn.execute("BEGIN IMMEDIATE")
    for sql, rows in statements:
        if not only or any(table in sql for table in only):
            conn.executemany(sql, rows)
    conn.execute("COMMIT")
    store.close()


def lighter(statements: Statements, outbox: bool, history: bool) -> Statements:
    """The warm import's inserts as a lighter design would write them (``--what-if``):
    ``outbox``: each create op pointing at its record (no copy of its values: ``fields``
    empty); ``history``: one history row for the whole import instead of one per record."""
    out: Statements = []
    for sql, rows in statements:
        if outbox and "INTO outbox " in sql:
            rows = [(*row[:3], "", *row[4:]) for row in rows]
        if history and "INTO history " in sql:
            if any("INTO history " in kept for kept, _ in out):
                continue
            rows = rows[:1]
        out.append((sql, rows))
    return out


def two_core_bound(check: tuple[float, float], write: tuple[float, float]) -> tuple[float, float]:
    """The least (wall, CPU) time any import that checks the file with today's checks and
    writes ``write``'s inserts could take on two cores: the check can be split across both
    cores, the writes cannot (a SQLite store has one writer), so neither less than the
    writes alone nor less than half of checks plus writes. A figure of this run's own
    measurements, not a timing."""
    return (
        max(write[0], (check[0] + write[0]) / 2),
        max(write[1], (check[1] + write[1]) / 2),
    )


def _replay_alone(
    statements: Statements, db: Path, formset: FormSet, table: str
) -> tuple[float, float]:
    """(wall, CPU) of replaying one table's inserts into a fresh store: its share of the floor."""
    return measured(lambda: replay(statements, db, formset, (f"INTO {table} ",)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument(
        "--tables", action="store_true", help="also replay each table's inserts alone"
    )
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="*",
        help="import files of these many rows (default: a few) in-process and in 2",
    )
    parser.add_argument(
        "--what-if",
        action="store_true",
        help="also replay the inserts as outbox ops pointing at records / one history row",
    )
    parser.add_argument(
        "--pairs", type=int, default=0, help="N alternating in-process / 2-process imports"
    )
    args = parser.parse_args()
    formset = load_formset()
    if args.sizes is not None:
        sizes(formset, args.sizes or [500, 1000, 2000, 4000, 8000, 16000])
        return
    if args.pairs:
        pairs(formset, args.rows, args.pairs)
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        csv_path = write_csv(tmpdir / "residents.csv", resident_rows(args.rows))
        raw = measured(lambda: raw_executemany(csv_path, tmpdir / "raw.sqlite"))
        cold = measured(
            lambda: run_import(csv_path, tmpdir / "a.sqlite", formset, args.rows, [], None, None)
        )
        statements: Statements = []
        warm = measured(
            lambda: run_import(csv_path, tmpdir / "b.sqlite", formset, args.rows, statements)
        )
        writer, checker = split(
            lambda: run_import(csv_path, tmpdir / "p.sqlite", formset, args.rows, [], None, True)
        )
        piped = (writer[0], writer[1] + checker[1])
        floor = measured(lambda: replay(statements, tmpdir / "c.sqlite", formset))
        minimal = measured(lambda: replay(statements, tmpdir / "d.sqlite", formset, MINIMAL_TABLES))
        checked = measured(lambda: validate_file(csv_path, formset.form("resident"), formset))
        touched = measured(lambda: one_step_per_value(csv_path))
        key = os.urandom(32)
        keyed = measured(
            lambda: run_import(csv_path, tmpdir / "e.sqlite", formset, args.rows, [], key)
        )
        tables = [
            (
                f"  {table} alone",
                _replay_alone(statements, tmpdir / f"t-{table}.sqlite", formset, table),
            )
            for table in (TABLES if args.tables else ())
        ]
        what_if = [
            (
                f"  SQL floor, {name}",
                measured(
                    lambda o=o, h=h: replay(  # type: ignore[misc]
                        lighter(statements, o, h), tmpdir / f"w-{o}-{h}.sqlite", formset
                    )
                ),
            )
            for name, o, h in (
                ("outbox -> record", True, False),
                ("1 history row", False, True),
                ("both", True, True),
            )
            if args.what_if
        ]
    n = args.rows
    print(f"rows                            {n}")
    print(f"{'':32}{'wall rows/s':>12} {'ratio':>6}   {'CPU rows/s':>12} {'ratio':>6}")
    for name, (wall, cpu) in (
        ("raw executemany", raw),
        ("import, cold process", cold),
        ("import, warm process", warm),
        ("import, checked in 2nd process", piped),
        ("  its writer process alone", writer),
        ("  its checking process alone", checker),
        ("SQL floor (replay)", floor),
        ("floor, record + key only", minimal),
        ("read + check only", checked),
        ("read + one step per value", touched),
        ("best on 2 cores, every table", two_core_bound(checked, floor)),
        ("best on 2 cores, record + key", two_core_bound(checked, minimal)),
        ("import, encrypted store", keyed),
        *tables,
        *what_if,
    ):
        print(
            f"{name:32}{n / wall:12,.0f} {raw[0] / wall:6.3f}   "
            f"{n / cpu:12,.0f} {raw[1] / cpu:6.3f}"
        )
    print("ratio = raw time / this time, i.e. rows/s relative to raw executemany (aim >= 0.3)")


def pairs(formset: FormSet, rows: int, count: int) -> None:
    """``count`` pairs of imports in one process and with a checking process, alternating
    which goes first (ABBA): medians of wall and of each process's CPU."""
    seen: dict[bool, list[tuple[tuple[float, float], tuple[float, float]]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        csv_path = write_csv(tmpdir / "residents.csv", resident_rows(rows))
        for i in range(count):
            for worker in (False, True) if i % 2 == 0 else (True, False):
                db = tmpdir / f"{i}-{worker}.sqlite"
                seen.setdefault(worker, []).append(
                    split(lambda: run_import(csv_path, db, formset, rows, [], None, worker))  # noqa: B023
                )
    for worker, runs in seen.items():
        wall = statistics.median(own[0] for own, _ in runs)
        own_cpu = statistics.median(own[1] for own, _ in runs)
        child_cpu = statistics.median(child[1] for _, child in runs)
        name = "2 processes" if worker else "1 process"
        print(
            f"{name:12} wall {wall:6.2f} s   CPU: importing process {own_cpu:5.2f} s, "
            f"checking process {child_cpu:5.2f} s   (medians of {len(runs)})"
        )


def sizes(formset: FormSet, counts: list[int]) -> None:
    """Files of a few sizes imported in-process and with a checking process, alternated
    (ABAB) so the machine's load falls on both: where the second process starts to pay."""
    print(f"{'rows':>7} {'bytes':>10} {'1 process s':>12} {'2 processes s':>14} {'2 / 1':>6}")
    for rows in counts:
        with tempfile.TemporaryDirectory() as tmp:
            tmpdir = Path(tmp)
            csv_path = write_csv(tmpdir / "residents.csv", resident_rows(rows))
            times: dict[bool, float] = {False: 0.0, True: 0.0}
            for i, worker in enumerate((False, True) * 3):
                db = tmpdir / f"{i}.sqlite"
                wall, _ = measured(
                    lambda: run_import(csv_path, db, formset, rows, [], None, worker)  # noqa: B023
                )
                times[worker] += wall / 3
            size = csv_path.stat().st_size
        print(
            f"{rows:7} {size:10,} {times[False]:12.3f} "
            f"{times[True]:14.3f} {times[True] / times[False]:6.2f}"
        )


if __name__ == "__main__":
    main()
