"""Import houses with a location and sync them to a real local platform server (issue 10,
item 1): HTTP requests, bytes on the wire and what the platform applied.

Usage: python tests/bench/bench_located_sync.py [--houses 2000] [--batch 500]

Writes a CSV of ``--houses`` complete houses, each with a location typed as "lon, lat", imports
it into a new device store with ``gridcollect import``'s code path (``transfer.import_file``:
the location is stored with its Gauss-Krüger projection), starts the platform server in its own
process on a SQLite file, and runs one ``SyncSession`` (push, then pull). Prints the session's
request count and body bytes sent/received (gzip as on the wire), the ops applied and set aside
and the houses the platform holds. It prints figures; it never asserts. Self-contained on
purpose (only APIs older versions have), so the same file measures an older checkout:
``cp tests/bench/bench_located_sync.py OLD/tests/bench/ && python OLD/tests/bench/...``.
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sqlalchemy import func, select  # noqa: E402

import tests.bench.bench_sync as bench  # noqa: E402
from app.core import transfer  # noqa: E402
from app.core.forms import load_formset  # noqa: E402
from app.core.store import Store  # noqa: E402
from sync.client import Client  # noqa: E402
from sync.server import db  # noqa: E402
from sync.server.db import make_engine  # noqa: E402
from sync.session import SyncSession  # noqa: E402
from tests.factories import id_number  # noqa: E402
from tests.sync.devicekit import GRID_A, PASSWORD, seeded_template  # noqa: E402

COLUMNS = [
    "house_code",
    "address_text",
    "grid",
    "is_rental",
    "owner_id_type",
    "owner_id_number",
    "owner_name",
    "owner_phone",
    "location",
]


def write_houses(path: Path, count: int) -> None:
    """``count`` complete houses in one grid, each at its own point in Hangzhou."""
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        for i in range(count):
            lon, lat = 120.1 + (i % 97) * 0.001, 30.2 + (i // 97) * 0.001
            writer.writerow(
                [
                    f"H-{i:06d}",
                    f"幸福路{i // 20 + 1}号{i % 20 + 1}室",
                    GRID_A,
                    "否",
                    "111",
                    id_number(seq=(2 * i + 1) % 1000),
                    "张三",
                    "13800138000",
                    f"{lon:.7f}, {lat:.7f}",
                ]
            )


def count_ops(client: Client) -> list[int]:
    """A one-item list that counts the ops every push request carries (resends included)."""
    carried = [0]
    real = client.push

    def push(ops: Any) -> Any:
        carried[0] += len(ops)
        return real(ops)

    client.push = push  # type: ignore[method-assign]
    return carried


def main() -> None:
    logging.getLogger("gridcollect").setLevel(logging.ERROR)  # one warning per set-aside op
    parser = argparse.ArgumentParser()
    parser.add_argument("--houses", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=500, help="ops per push request")
    args = parser.parse_args()
    formset = load_formset()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        db_path = seeded_template(root / "platform.db", formset)
        source = root / "houses.csv"
        write_houses(source, args.houses)
        store = Store(root / "device.sqlite", formset)
        report = transfer.import_file(source, formset.form("house"), store, author="wang")
        print(f"imported {report.created} houses ({len(report.errors)} rows rejected)")
        served = bench.ServerProcess(db_path)
        try:
            client = Client(served.url, store.device_id)
            client.login("wang", PASSWORD)
            carried = count_ops(client)
            start = time.perf_counter()
            s = SyncSession(store, client, batch=args.batch).run()
            elapsed = time.perf_counter() - start
            client.close()
        finally:
            served.stop()
        engine = make_engine(f"sqlite:///{db_path}")
        with engine.connect() as conn:
            houses = conn.execute(
                select(func.count()).select_from(db.records).where(db.records.c.form == "house")
            ).scalar_one()
        engine.dispose()
        store.close()
        print(
            f"sync: {s.requests} HTTP requests, sent {s.bytes_sent:,} B "
            f"({s.bytes_sent / 1e6:.2f} MB), received {s.bytes_received:,} B "
            f"({s.bytes_received / 1e6:.2f} MB), {elapsed:.1f} s"
        )
        print(
            f"ops pushed {s.pushed}, applied {s.applied}, set aside {s.rejected}; "
            f"ops carried by push requests {carried[0]}; pulled {s.pulled}; "
            f"houses on the platform: {houses}"
        )


if __name__ == "__main__":
    main()
