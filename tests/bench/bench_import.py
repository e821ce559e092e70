"""Import of N resident rows from CSV vs a raw executemany of the same rows (same run).

Usage: python tests/bench/bench_import.py [--rows 100000]
Prints rows/s for both and the ratio import/raw (the issue's aim: >= 0.3).
"""

from __future__ import annotations

import argparse
import csv
import sqlite3
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.core.forms import load_formset  # noqa: E402
from app.core.store import Store  # noqa: E402
from app.core.transfer import import_file  # noqa: E402
from tests.bench.common import HEADERS, resident_rows, timed, write_csv  # noqa: E402


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    formset = load_formset()
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        csv_path = write_csv(tmpdir / "residents.csv", resident_rows(args.rows))
        raw_s = timed(lambda: raw_executemany(csv_path, tmpdir / "raw.sqlite"))
        store = Store(tmpdir / "store.sqlite", formset)
        report = None

        def run() -> None:
            nonlocal report
            report = import_file(csv_path, formset.form("resident"), store)

        import_s = timed(run)
        assert report is not None and report.created == args.rows, report and report.errors[:3]
    raw_rate, import_rate = args.rows / raw_s, args.rows / import_s
    print(f"rows                      {args.rows}")
    print(f"raw executemany           {raw_rate:12,.0f} rows/s ({raw_s:.2f} s)")
    print(
        f"import (validate+dedup+index+history+outbox) {import_rate:12,.0f} rows/s ({import_s:.2f} s)"
    )
    print(f"ratio import/raw          {import_rate / raw_rate:.3f}   (aim >= 0.3)")


if __name__ == "__main__":
    main()
