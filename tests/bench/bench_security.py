"""What issue 15's login throttling and CSV formula neutralisation cost.

Usage: python tests/bench/bench_security.py [--logins 100] [--rows 200000]
Prints, each against a baseline measured in the same run:
- a login through ``logins.login`` (throttle counted before, cleared after, in the database)
  ÷ a bare ``auth.login`` (the scrypt check and token insert), both at production scrypt cost,
  on a SQLite platform file; and a failed login (throttle + audit rows) ÷ a bare failed one;
- ``write_table`` CSV (every cell through ``neutralise``) ÷ a raw ``csv.writer`` of the same rows;
- a whole masked ``export_file`` of a demo store's residents, neutralising ÷ not (best of 3).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.core.demo import generate  # noqa: E402
from app.core.forms import load_formset  # noqa: E402
from app.core.store import Store  # noqa: E402
from app.core.tabular import write_table  # noqa: E402
from app.core.transfer import export_file  # noqa: E402
from sync.server import admin, auth, db, logins  # noqa: E402
from tests.bench.common import HEADERS, median, resident_rows  # noqa: E402

PASSWORD = "correct horse battery staple"


def per_call(fn: Callable[[int], object], count: int) -> float:
    """Median milliseconds of ``fn(i)`` over ``count`` calls."""
    times = []
    for i in range(count):
        start = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - start) * 1000)
    return median(times)


def bench_logins(folder: Path, count: int) -> None:
    engine = db.make_engine(f"sqlite:///{folder / 'platform.db'}")
    db.init_db(engine)
    admin.put_community(engine, "c1", "社区")
    admin.put_grid(engine, "g1", "网格", "c1")
    admin.put_user(engine, "wang", PASSWORD, "worker", grids=["g1"])
    key = auth.server_secret(engine, "bench")
    door = logins.Door(engine, key)

    def bare(i: int) -> None:
        auth.login(engine, key, "wang", PASSWORD, f"bare-{i}")

    def guarded(i: int) -> None:
        logins.login(door, "wang", PASSWORD, f"guarded-{i}", "10.0.0.1")

    def bare_fail(i: int) -> None:
        with contextlib.suppress(auth.AuthError):
            auth.login(engine, key, f"user{i}", "wrong password 1", f"bf-{i}")

    def guarded_fail(i: int) -> None:
        # A new name and address per attempt, so none is refused before the check.
        address = f"10.1.{i // 250}.{i % 250}"
        with contextlib.suppress(auth.AuthError):
            logins.login(door, f"user{i}", "wrong password 1", f"gf-{i}", address)

    base, new = per_call(bare, count), per_call(guarded, count)
    print(f"login ok:     bare {base:.1f} ms, throttled {new:.1f} ms, ratio {new / base:.2f}")
    base, new = per_call(bare_fail, count), per_call(guarded_fail, count)
    print(f"login failed: bare {base:.1f} ms, throttled+audit {new:.1f} ms, ratio {new / base:.2f}")
    engine.dispose()


def bench_csv(folder: Path, count: int) -> None:
    rows = resident_rows(count)
    for i in range(0, count, 10):  # every tenth row carries a formula-like value
        rows[i][10] = "=cmd|' /C calc'!A0"
    raw_path, table_path = folder / "raw.csv", folder / "table.csv"
    start = time.perf_counter()
    with raw_path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADERS)
        writer.writerows(rows)
    raw = time.perf_counter() - start
    start = time.perf_counter()
    write_table(table_path, HEADERS, iter(rows))
    table = time.perf_counter() - start
    print(
        f"CSV {count} rows: raw csv.writer {raw:.2f} s, write_table (neutralised) "
        f"{table:.2f} s, ratio {table / raw:.2f}"
    )


def bench_export(folder: Path, size: int) -> None:
    """The whole masked export of a demo store's residents, neutralised ÷ not."""
    import app.core.tabular.write as write

    store = Store(folder / "gridcollect.sqlite", load_formset())
    generate(store, size=size, seed=7)
    form = store.formset.form("resident")

    def plain(values: object) -> list[str]:
        return ["" if v is None else str(v) for v in values]  # type: ignore[attr-defined]

    real = write.csv_cells
    timings = {"plain": [], "neutralised": []}
    for _ in range(3):
        write.csv_cells = plain  # type: ignore[assignment]
        start = time.perf_counter()
        rows = export_file(folder / "plain.csv", form, store)
        timings["plain"].append(time.perf_counter() - start)
        write.csv_cells = real
        start = time.perf_counter()
        export_file(folder / "safe.csv", form, store)
        timings["neutralised"].append(time.perf_counter() - start)
    store.close()
    base, new = min(timings["plain"]), min(timings["neutralised"])
    print(
        f"masked export of {rows} residents: without neutralising {base:.2f} s, with "
        f"{new:.2f} s, ratio {new / base:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--logins", type=int, default=100)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--demo", type=int, default=30_000, help="demo store size for the export")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench_logins(Path(tmp), args.logins)
        bench_csv(Path(tmp), args.rows)
        bench_export(Path(tmp), args.demo)


if __name__ == "__main__":
    main()
