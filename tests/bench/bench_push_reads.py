"""The reads of a push: CPU and statements of the whole-request check and the prefetch.

    python tests/bench/bench_push_reads.py [--size 20000] [--pushes 40] [--ops 50]
        [--backend sqlite|pg|both] [--no-http]

A nightly device sync pushes ~50 new residents into a loaded platform (issue 19). This loads
the demo street office (``--size`` records, through the push path; PostgreSQL on a throwaway
cluster as the tests start it, then ANALYZE as ``server-admin load-base`` does), then runs
``--pushes`` sequential pushes of ``--ops`` new residents of one grid, in this process through
``Service.push_all`` (the route's work without HTTP), and prints per push: CPU ms
(``time.process_time``) in ``checks.check_push``, in ``Service._prefetch`` and in the whole
``push_all``, and the SQL statements run in each (``statements_run``). The baseline of the same
run: CPU per statement of ``SELECT 1`` through the same engine, times the push's statement
count (the floor of SQLAlchemy + driver overhead for that many round trips).
Unless ``--no-http``, the same pushes then go through the real route (``gridcollect server``
in its own process, one device): the server process's CPU per push from ``/proc/PID/stat``.
It prints figures; it never asserts.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sqlalchemy import event, text  # noqa: E402

from app.core import ids  # noqa: E402
from app.core.forms import load_formset  # noqa: E402
from sync import protocol as p  # noqa: E402
from sync.client import Client  # noqa: E402
from sync.server import auth, checks, db  # noqa: E402
from sync.server.app import create_app  # noqa: E402
from sync.server.demo import load_demo  # noqa: E402
from sync.server.service import Service  # noqa: E402
from tests.bench import bench_console  # noqa: E402
from tests.bench.bench_city import Servers  # noqa: E402
from tests.bench.bench_sync import residents  # noqa: E402

PASSWORD = bench_console.PASSWORD


class Meter:
    """CPU seconds and statements spent inside wrapped functions, by name."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = {}
        self.statements: dict[str, int] = {}
        self.inside: list[str] = []
        self.total_statements = 0

    def note(self, *_args: Any) -> None:
        self.total_statements += 1
        for name in set(self.inside):
            self.statements[name] = self.statements.get(name, 0) + 1

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            self.inside.append(name)
            start = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.cpu[name] = self.cpu.get(name, 0.0) + time.process_time() - start
                self.inside.pop()

        return timed

    def reset(self) -> None:
        self.cpu, self.statements, self.total_statements = {}, {}, 0


@contextmanager
def metered(service: Service) -> Iterator[Meter]:
    """Wrap check, prefetch and the whole push of ``service`` (restored afterwards)."""
    meter = Meter()
    saved = (checks.check_push, Service._prefetch, service.push_all)
    checks.check_push = meter.wrap("check", checks.check_push)  # type: ignore[assignment]
    Service._prefetch = meter.wrap("prefetch", Service._prefetch)  # type: ignore[method-assign]
    service.push_all = meter.wrap("push", service.push_all)  # type: ignore[method-assign]
    event.listen(service.engine, "before_cursor_execute", meter.note)
    try:
        yield meter
    finally:
        event.remove(service.engine, "before_cursor_execute", meter.note)
        checks.check_push, Service._prefetch = saved[0], saved[1]  # type: ignore[assignment]
        service.push_all = saved[2]  # type: ignore[method-assign]


def new_ops(grid: str, count: int, number: int, device: str) -> list[p.Op]:
    """``count`` creates of new residents of ``grid`` (drafts, as bench_city's devices push)."""
    stamp = ids.now_iso() + "#0000"
    rows = residents(count, offset=2_000_000 + number * 1000)
    return [
        p.Op(
            op_id=f"{device}:{number}:{i}",
            record_id=ids.uuid7(),
            form="resident",
            kind="create",
            fields={**row, "grid": grid, "_status": "draft"},
            edited_at=stamp,
            author="bench",
        )
        for i, row in enumerate(rows)
    ]


def request(ops: list[p.Op]) -> p.PushRequest:
    return p.PushRequest(protocol=p.SUPPORTED_PROTOCOLS[-1], device_id="bench-dev-1", ops=ops)


def select_one_cpu(service: Service, runs: int = 2000) -> float:
    """CPU seconds per ``SELECT 1`` through the engine (one connection, one transaction)."""
    with db.read(service.engine) as conn:
        stmt = text("SELECT 1")
        start = time.process_time()
        for _ in range(runs):
            conn.execute(stmt).scalar()
        return (time.process_time() - start) / runs


def in_process(service: Service, grid: str, pushes: int, ops: int) -> dict[str, float]:
    """Sequential pushes through ``Service.push_all``: medians per push."""
    engine, key = service.engine, b"bench-secret"
    _token, _exp, user = auth.login(engine, key, f"w-{grid}", PASSWORD, "bench-dev-1")
    for n in range(3):  # warm-up: first statements, caches
        service.push_all(user, request(new_ops(grid, ops, n, "w")), "bench-dev-1")
    per: dict[str, list[float]] = {}
    statuses: dict[str, int] = {}
    with metered(service) as meter:
        for n in range(pushes):
            req = request(new_ops(grid, ops, 100 + n, "m"))
            meter.reset()
            results = service.push_all(user, req, "bench-dev-1")["results"]
            for r in results:
                statuses[r["status"]] = statuses.get(r["status"], 0) + 1
            for name in ("check", "prefetch", "push"):
                per.setdefault(f"{name} ms", []).append(meter.cpu.get(name, 0.0) * 1000)
                per.setdefault(f"{name} stmts", []).append(meter.statements.get(name, 0))
            per.setdefault("all stmts", []).append(meter.total_statements)
    out = {k: statistics.median(v) for k, v in per.items()}
    out["select1 ms"] = select_one_cpu(service) * 1000
    print(f"  results: {statuses}")
    return out


def over_http(url: str, grid: str, pushes: int, ops: int) -> float:
    """Server CPU ms per push through the real route (one server process, one device)."""
    servers = Servers(url, 1)
    try:
        client = Client(servers.urls[0], "bench-dev-2")
        client.login(f"w-{grid}", PASSWORD)
        bodies = [
            [op.model_dump() for op in new_ops(grid, ops, 5000 + n, "h")] for n in range(pushes + 3)
        ]
        for body in bodies[:3]:
            client.push(body)
        pid = servers.procs[0].pid
        start = _proc_cpu(pid)
        for body in bodies[3:]:
            client.push(body)
        return (_proc_cpu(pid) - start) / pushes * 1000
    finally:
        servers.stop()


def _proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(url: str, label: str, args: argparse.Namespace) -> None:
    formset = load_formset()
    start = time.perf_counter()
    app = create_app(url, forms=formset, secret="bench-secret")
    service: Service = app.state.service
    loaded = load_demo(service, PASSWORD, size=args.size)
    if url.startswith("postgresql"):
        with service.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
    print(f"{label}: {loaded.records} records loaded in {time.perf_counter() - start:.0f} s")
    grid = loaded.grids[0]
    m = in_process(service, grid, args.pushes, args.ops)
    floor = m["select1 ms"] * m["all stmts"]
    print(
        f"  per {args.ops}-op push (median of {args.pushes}, CPU ms): "
        f"check {m['check ms']:.2f}  prefetch {m['prefetch ms']:.2f}  "
        f"push_all {m['push ms']:.2f}"
    )
    print(
        f"  statements per push: check {m['check stmts']:.0f}  prefetch "
        f"{m['prefetch stmts']:.0f}  all {m['all stmts']:.0f}; SELECT 1 costs "
        f"{m['select1 ms'] * 1000:.0f} us -> {floor:.2f} ms for that many "
        f"(push_all / that floor: {m['push ms'] / floor:.1f}x)"
    )
    app.state.engine.dispose()
    if not args.no_http:
        ms = over_http(url, grid, args.pushes, args.ops)
        print(f"  route POST /v1/push: server process CPU {ms:.2f} ms per push")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=20_000)
    parser.add_argument("--pushes", type=int, default=40)
    parser.add_argument("--ops", type=int, default=50)
    parser.add_argument("--backend", choices=["sqlite", "pg", "both"], default="both")
    parser.add_argument("--no-http", action="store_true")
    args = parser.parse_args()
    auth.set_kdf_cost(2**8)  # logins are not measured here
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="gc-pread-") as tmp:
            run(f"sqlite:///{Path(tmp) / 'platform.db'}", "SQLite", args)
    if args.backend in ("pg", "both"):
        cluster = bench_console.pg_database()
        try:
            run(f"{cluster.url}/bench_console", "PostgreSQL", args)
        finally:
            cluster.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
