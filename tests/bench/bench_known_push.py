"""The platform's cost of a push of residents it already knows against a push of new ones (issue 17).

Usage: python tests/bench/bench_known_push.py [--count 10000] [--rounds 2]
       [--backend pg|sqlite|both]

Seeds a fresh platform (a throwaway PostgreSQL cluster, fsync on, autovacuum off, ANALYZE after
the seed; or a SQLite file) with ``--count`` residents from one device, then per round pushes
``--count`` new residents from one device and the seeded residents again from another (every
create echoes a held record: ``merged_into``), in chunks of a push request, alternating which
goes first. In this process (``Service.apply``: no HTTP, no login), so the figures are the
platform's own: this process's CPU (``time.process_time``) and PostgreSQL's (every process of
the cluster, /proc). The baseline is the new push of the same round: the ratio line divides
the known push's CPU by it. It prints figures; it never asserts.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.core import ids  # noqa: E402
from app.core.forms import FormSet, load_formset  # noqa: E402
from sync import protocol as p  # noqa: E402
from sync.server import admin, db  # noqa: E402
from sync.server.auth import User  # noqa: E402
from sync.server.service import CHUNK, Service  # noqa: E402
from tests.bench.bench_push_writes import cluster_cpu  # noqa: E402
from tests.bench.bench_sync import GRID, residents  # noqa: E402

COMMUNITY = GRID.split("-")[0][:9]
WORKER = User("bench", "worker", None, frozenset({GRID}))


def creates(rows: list[dict[str, Any]], device: str) -> list[p.Op]:
    """Creates of ``rows`` as draft residents under new record ids, as a device sends them."""
    stamp = ids.now_iso()
    return [
        p.Op(
            op_id=f"{device}:{i}",
            record_id=ids.uuid7(),
            form="resident",
            kind="create",
            fields={**r, "_status": "draft"},
            edited_at=f"{stamp}#0000",
            author="bench",
        )
        for i, r in enumerate(rows)
    ]


def push(
    service: Service, device: str, ops: list[p.Op], postmaster: int | None
) -> tuple[float, float]:
    """(server CPU, PostgreSQL CPU) of pushing ``ops``, a request's worth at a time."""
    db0 = cluster_cpu(postmaster)[0] if postmaster else 0.0
    cpu = time.process_time()
    for start in range(0, len(ops), CHUNK):
        service.apply(WORKER, device, ops[start : start + CHUNK])
    cpu = time.process_time() - cpu
    return cpu, (cluster_cpu(postmaster)[0] if postmaster else 0.0) - db0


def run(url: str, formset: FormSet, args: argparse.Namespace, postmaster: int | None) -> None:
    engine = db.make_engine(url)
    db.init_db(engine)
    admin.put_community(engine, COMMUNITY, "社区")
    admin.put_grid(engine, GRID, "网格", COMMUNITY)
    service = Service(engine, formset)
    held = residents(args.count, 0)
    push(service, "seed", creates(held, "seed"), None)
    if postmaster:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    name = "PostgreSQL" if postmaster else "SQLite"
    for n in range(args.rounds):
        fresh = residents(args.count, (n + 1) * args.count)
        order = [("new", fresh), ("known", held)]
        took: dict[str, tuple[float, float]] = {}
        for label, rows in order if n % 2 == 0 else order[::-1]:
            took[label] = push(service, f"{label}-{n}", creates(rows, f"{label}-{n}"), postmaster)
        (new, new_db), (known, known_db) = took["new"], took["known"]
        line = f"{name} round {n + 1}, {args.count} residents: new push server {new:5.2f} s"
        if postmaster:
            line += f" + database {new_db:5.2f} s"
        line += f", known push server {known:5.2f} s"
        if postmaster:
            line += f" + database {known_db:5.2f} s"
        line += f"; known / new: server x{known / new:.2f}"
        if postmaster:
            line += f", with the database x{(known + known_db) / (new + new_db):.2f}"
        print(line)
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--backend", choices=("pg", "sqlite", "both"), default="both")
    args = parser.parse_args()
    formset = load_formset()
    if args.backend in ("pg", "both"):
        from tests.sync.conftest import _start_cluster

        cluster = _start_cluster(durable=True, options="-c autovacuum=off")
        try:
            maint = create_engine(f"{cluster.url}/postgres", isolation_level="AUTOCOMMIT")
            with maint.connect() as conn:
                conn.execute(text("CREATE DATABASE bench_known"))
                data = conn.execute(text("SHOW data_directory")).scalar()
            maint.dispose()
            postmaster = int(Path(str(data), "postmaster.pid").read_text().split()[0])
            run(f"{cluster.url}/bench_known", formset, args, postmaster)
        finally:
            cluster.stop()
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="gc-bench-known-") as tmp:
            run(f"sqlite:///{tmp}/platform.db", formset, args, None)


if __name__ == "__main__":
    main()
