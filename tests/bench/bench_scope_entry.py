"""What a grid entering a worker's scope costs the device and the server (PROTOCOL.md §8.1).

Usage: python tests/bench/bench_scope_entry.py [--records 10000] [--new 500] [--chunk 1000]

A platform (SQLite, its own process as deployed) holds ``--records`` residents in the worker's
grid and ``--new`` in another grid. The worker's device pulls everything, then the worker is
given the other grid (``admin.set_user_grids``) and the device syncs: it fetches only the new
grid's records (``entered``). The baseline, measured in the same run, is what the README told
an administrator to do before: set the device up afresh (a full pull of the whole scope from
0). Prints records, bytes and requests of each, the device's CPU seconds (``process_time``)
and the server process's (``/proc/<pid>/stat``), and the ratios baseline / this. It prints
figures; it never asserts.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.core.forms import load_formset  # noqa: E402
from sync.server import admin  # noqa: E402
from sync.server.db import make_engine  # noqa: E402
from sync.session import SyncSession, SyncSummary  # noqa: E402
from tests.bench.bench_sync import (  # noqa: E402
    GRID,
    ServerProcess,
    device,
    platform_db,
    residents,
    seed_server,
)

NEW_GRID = "330106001001-02"  # the seeded template's second grid of the same community


def measured(server: ServerProcess, run: SyncSession) -> tuple[SyncSummary, float, float]:
    """The run's summary, the device's CPU seconds and the server's, for one session."""
    cpu, served = time.process_time(), server.cpu_s()
    summary = run.run()
    return summary, time.process_time() - cpu, server.cpu_s() - served


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=10000)
    ap.add_argument("--new", type=int, default=500)
    ap.add_argument("--chunk", type=int, default=1000)
    args = ap.parse_args()
    formset = load_formset()
    with tempfile.TemporaryDirectory(prefix="bench-scope-") as tmp:
        root = Path(tmp)
        db_path = platform_db(root / "platform.db", formset)
        mine = residents(args.records, 0)
        other = [{**r, "grid": NEW_GRID} for r in residents(args.new, args.records)]
        seed_server(db_path, formset, mine + other)
        server = ServerProcess(db_path)
        try:
            store, client = device(server.url, root / "device.sqlite", formset)
            first = SyncSession(store, client, chunk=args.chunk).run()
            assert first.pulled == args.records, first
            engine = make_engine(f"sqlite:///{db_path}")
            admin.set_user_grids(engine, "bench", [GRID, NEW_GRID])
            engine.dispose()
            new, new_cpu, new_srv = measured(server, SyncSession(store, client, chunk=args.chunk))
            store.close()
            fresh_store, fresh_client = device(server.url, root / "fresh.sqlite", formset)
            full, full_cpu, full_srv = measured(
                server, SyncSession(fresh_store, fresh_client, chunk=args.chunk)
            )
            fresh_store.close()
        finally:
            server.stop()
    got = new.new_grid_records + new.pulled
    print(f"worker's grid {args.records:,} records, new grid {args.new:,} records")
    print(
        f"{'new grid (entered)':<22} records {got:7,d}  requests {new.requests:4d}  received "
        f"{new.bytes_received / 1e6:7.2f} MB  device CPU {new_cpu:6.2f} s  server CPU "
        f"{new_srv:6.2f} s"
    )
    print(
        f"{'fresh device (before)':<22} records {full.pulled:7,d}  requests {full.requests:4d}  "
        f"received {full.bytes_received / 1e6:7.2f} MB  device CPU {full_cpu:6.2f} s  server CPU "
        f"{full_srv:6.2f} s"
    )
    ratio = (full_cpu / new_cpu) if new_cpu else float("inf")
    srv = (full_srv / new_srv) if new_srv else float("inf")
    mb = full.bytes_received / max(1, new.bytes_received)
    print(f"ratio before/this: device CPU {ratio:.1f}x  server CPU {srv:.1f}x  bytes {mb:.1f}x")


if __name__ == "__main__":
    main()
