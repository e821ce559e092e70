"""What one nightly push of 50 new residents costs the server and the database (issue 19).

Usage: python tests/bench/bench_push_writes.py [--size 20000] [--pushes 40] [--ops 50]
       [--backend pg|sqlite|both] [--top 20] [--profile]

Loads the demo street office of ``--size`` records through the push path into a throwaway
PostgreSQL cluster (fsync on, ``pg_stat_statements`` preloaded) and into a SQLite file, then
runs ``--pushes`` sequential pushes of ``--ops`` new residents of one grid as that grid's
worker, in this process (``Service.push_all``: no HTTP, no login). Per push it prints the
server's CPU (``time.process_time`` of this process, which only serves), PostgreSQL's CPU
(user + system ticks of every process of the throwaway cluster, from /proc: backends, WAL
writer, checkpointer...), the statements the server sent (``pg_stat_statements`` calls,
BEGIN/COMMIT and COPY included) and PostgreSQL's top statements by total execution time,
with rows, shared blocks hit/read/dirtied and WAL bytes. The ratio line divides the push's
server CPU by the CPU of a baseline measured in the same run: ``BASELINE`` one-statement
transactions (``SELECT 1``). Autovacuum is off in the cluster (the load ends with ANALYZE),
so PostgreSQL's CPU is the pushes' own. It prints figures; it never asserts.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.core import ids  # noqa: E402
from app.core.forms import load_formset  # noqa: E402
from sync import protocol as p  # noqa: E402
from sync.server import auth, db  # noqa: E402
from sync.server.app import create_app  # noqa: E402
from sync.server.demo import load_demo  # noqa: E402
from tests.bench.bench_sync import residents  # noqa: E402
from tests.bench.common import median  # noqa: E402

PG_STATEMENTS = (
    "-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all "
    "-c pg_stat_statements.track_utility=on -c pg_stat_statements.track_planning=on"
)
PG_OPTIONS = PG_STATEMENTS + " -c autovacuum=off"  # the load ends with ANALYZE
BASELINE = 50  # one-statement transactions of the baseline
_TICK = os.sysconf("SC_CLK_TCK")


def cluster_cpu(postmaster: int) -> tuple[float, float]:
    """CPU seconds so far of a cluster's processes, and of its backends serving the bench's
    database alone (Linux /proc; the rest: WAL writer, checkpointer, background writer)."""
    total = backends = 0
    for path in Path("/proc").glob("[0-9]*/stat"):
        try:
            stat = path.read_text()
            fields = stat.rsplit(")", 1)[1].split()
            pid, ppid = int(path.parent.name), int(fields[1])
            if pid != postmaster and ppid != postmaster:
                continue
            ticks = int(fields[11]) + int(fields[12])
            cmdline = (path.parent / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        total += ticks
        if b"bench_push" in cmdline:
            backends += ticks
    return total / _TICK, backends / _TICK


def _perf(path: str, postmaster: int) -> subprocess.Popen[bytes]:
    """``perf record`` of the cluster's processes while the pushes run (``perf report -i``)."""
    pids = [
        p.parent.name
        for p in Path("/proc").glob("[0-9]*/stat")
        if p.read_text().rsplit(")", 1)[1].split()[1] == str(postmaster)
    ]
    cmd = ["perf", "record", "-F", "1999", "-g", "-o", path, "-p", ",".join(pids)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    return proc


def push_request(device: str, grid: str, count: int, offset: int) -> p.PushRequest:
    stamp = ids.now_iso()
    ops = [
        {
            "op_id": f"{device}:{offset + i}",
            "record_id": ids.uuid7(),
            "form": "resident",
            "kind": "create",
            "base_version": None,
            "fields": {**row, "grid": grid, "_status": "draft"},
            "edited_at": f"{stamp}#0000",
            "author": "bench",
        }
        for i, row in enumerate(residents(count, offset=offset))
    ]
    return p.PushRequest.model_validate({"protocol": 1, "device_id": device, "ops": ops})


def statements(engine: Any) -> list[Any]:
    sql = (
        "SELECT calls, total_exec_time, total_plan_time, rows, shared_blks_hit, shared_blks_read, "
        "shared_blks_dirtied, wal_bytes, left(regexp_replace(query, '\\s+', ' ', 'g'), 110) q "
        "FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database "
        "WHERE datname = current_database()) ORDER BY total_exec_time DESC"
    )
    with engine.connect() as conn:
        return list(conn.execute(text(sql)))


def print_statements(engine: Any, n: int, top: int) -> None:
    """Statements, execution and planning time and WAL per push (``n`` pushes), then the
    ``top`` statements by execution time."""
    rows = statements(engine)
    mine = [r for r in rows if "pg_stat_statements" not in r.q]
    calls = sum(r.calls for r in mine)
    exec_ms = sum(r.total_exec_time for r in mine)
    plan_ms = sum(r.total_plan_time for r in mine)
    wal = sum(int(r.wal_bytes) for r in rows)
    print(
        f"statements per push {calls / n:.1f}; PostgreSQL execution {exec_ms / n:.2f} ms, "
        f"planning {plan_ms / n:.2f} ms per push; WAL {wal / n / 1024:.0f} kB per push"
    )
    head = f"{'calls/push':>10} {'ms/push':>8} {'plan ms':>7} {'rows/call':>9} {'hit':>6}"
    print(head + f" {'read':>5} {'dirtied':>7} {'WAL kB':>7}  statement (per push)")
    for r in mine[:top]:
        print(
            f"{r.calls / n:10.1f} {r.total_exec_time / n:8.3f} {r.total_plan_time / n:7.3f}"
            f" {r.rows / max(r.calls, 1):9.1f} {r.shared_blks_hit / n:6.0f}"
            f" {r.shared_blks_read / n:5.0f} {r.shared_blks_dirtied / n:7.0f}"
            f" {int(r.wal_bytes) / n / 1024:7.1f}  {r.q}"
        )


def reset_statements(engine: Any) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_stat_statements_reset()"))
        conn.commit()


def baseline_cpu(engine: Any, count: int) -> float:
    """Server CPU seconds of ``count`` one-statement transactions (the ratio's baseline)."""
    start = time.process_time()
    for _ in range(count):
        with db.write(engine) as conn:
            conn.execute(text("SELECT 1"))
    return time.process_time() - start


def run(url: str, args: argparse.Namespace, postmaster: int | None) -> None:
    formset = load_formset()
    app = create_app(url, forms=formset, secret="bench")
    engine, service = app.state.engine, app.state.service
    start = time.perf_counter()
    loaded = load_demo(service, "bench password", size=args.size)
    db.analyze(engine)
    print(
        f"{engine.dialect.name}: {loaded.records} records loaded in "
        f"{time.perf_counter() - start:.0f} s"
    )
    grid = loaded.grids[0]
    user = auth.User(f"w-{grid}", "worker", None, frozenset({grid}), "bench-device")
    requests = [
        push_request("bench-device", grid, args.ops, 10_000_000 + i * args.ops)
        for i in range(args.pushes + 3)
    ]
    for req in requests[:3]:  # warm caches, pools and the statement cache
        service.push_all(user, req, "bench-device")
    pg = engine.dialect.name == "postgresql"
    if pg:
        reset_statements(engine)
    profile = cProfile.Profile(time.process_time) if args.profile else None
    server: list[float] = []
    db0 = cluster_cpu(postmaster) if postmaster else (0.0, 0.0)
    perf = _perf(args.perf, postmaster) if args.perf and postmaster else None
    for req in requests[3:]:
        cpu0 = time.process_time()
        if profile:
            profile.enable()
        service.push_all(user, req, "bench-device")
        if profile:
            profile.disable()
        server.append(time.process_time() - cpu0)
    db1 = cluster_cpu(postmaster) if postmaster else (0.0, 0.0)
    if perf is not None:
        perf.send_signal(signal.SIGINT)
        perf.wait()
    n = len(server)
    line = f"{engine.dialect.name}: {n} pushes of {args.ops} new residents: server CPU per push"
    line += f" {1000 * sum(server) / n:.1f} ms (median {1000 * median(server):.1f})"
    if pg:
        line += f"; PostgreSQL CPU per push {1000 * (db1[0] - db0[0]) / n:.1f} ms"
        line += f" (its backends {1000 * (db1[1] - db0[1]) / n:.1f})"
    print(line)
    if pg:
        print_statements(engine, n, args.top)
    base = baseline_cpu(engine, BASELINE)
    print(
        f"baseline: {BASELINE} one-statement transactions {1000 * base:.1f} ms server CPU; "
        f"push / baseline = {sum(server) / n / base:.2f}"
    )
    if profile:
        stats = pstats.Stats(profile)
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats("sync/server", 45)
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=20_000)
    parser.add_argument("--pushes", type=int, default=40)
    parser.add_argument("--ops", type=int, default=50)
    parser.add_argument("--backend", choices=("pg", "sqlite", "both"), default="both")
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--profile", action="store_true", help="cProfile the pushes")
    parser.add_argument("--perf", help="perf record PostgreSQL's processes into this file")
    args = parser.parse_args()
    if args.backend in ("pg", "both"):
        from tests.sync.conftest import _start_cluster

        cluster = _start_cluster(durable=True, options=PG_OPTIONS)
        try:
            maint = create_engine(f"{cluster.url}/postgres", isolation_level="AUTOCOMMIT")
            with maint.connect() as conn:
                conn.execute(text("CREATE DATABASE bench_push"))
                data = conn.execute(text("SHOW data_directory")).scalar()
            maint.dispose()
            postmaster = int(Path(str(data), "postmaster.pid").read_text().split()[0])
            with create_engine(f"{cluster.url}/bench_push").connect() as conn:
                conn.execute(text("CREATE EXTENSION pg_stat_statements"))
                conn.commit()
            run(f"{cluster.url}/bench_push", args, postmaster)
        finally:
            cluster.stop()
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="gc-bench-push-") as tmp:
            run(f"sqlite:///{tmp}/platform.db", args, None)


if __name__ == "__main__":
    main()
