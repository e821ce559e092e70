"""The server CPU of one nightly sync, by phase, one sync after the other (issue 19).

    python tests/bench/bench_fixed_costs.py [--syncs 100] [--size 2000] [--pg]
        [--compare DIR] [--profile DIR]

One real ``gridcollect server`` process serves a small demo platform (SQLite, or a throwaway
PostgreSQL cluster with ``--pg``). A few devices, one per grid, log in once; then ``--syncs``
nightly syncs run one after the other as bench_city's devices make them (token request with
the sync credential, push of ``--ops`` new residents, pull of one page of ``--pull`` changes,
the same client) and two floors: ``GET /v1/info`` (no login, no database) and an
authenticated ``GET /v1/records/{id}`` (the token check and one record read).

The server's CPU per request is read from the kernel's per-thread run time
(``/proc/PID/task/*/schedstat``, nanoseconds, summed over the server's threads) before and
after each request, so every phase is measured alone although the syncs interleave; the
process's own utime+stime (10 ms ticks) over the whole run is printed as a check.

``--compare DIR``: a second server process runs the code of another checkout (e.g.
``git worktree add /tmp/base main``; with its own ``.venv`` when it has one, so a change of
dependencies is compared too) on the same database, the syncs alternating between the
two in blocks, and the ratios this ÷ that are printed: before → after in one run.
``--profile DIR``: py-spy samples the server (``--gil``, raw stacks) during the syncs; profile
runs are for reading, not for the figures (sampling costs the server CPU).
It prints figures; it never asserts.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench import bench_city, bench_console  # noqa: E402
from tests.bench.bench_city import Device, Planned, Result, Servers  # noqa: E402
from tests.bench.common import median  # noqa: E402

PHASES = ("token", "push", "pull", "info", "record")


def thread_ns(pid: int) -> dict[int, int]:
    """Run time so far of each of the process's threads (ns), from schedstat."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out[int(task.name)] = int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError):
            continue  # the thread ended
    return out


def spent_ms(before: dict[int, int], after: dict[int, int]) -> float:
    """CPU ms between two readings: threads present in both, plus threads that began meanwhile
    (a thread that ended meanwhile loses its last slice: anyio keeps workers 10 s idle)."""
    return sum(ns - before.get(tid, 0) for tid, ns in after.items()) / 1e6


class Meter:
    """CPU ms per phase of one server process."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.ms: dict[str, list[float]] = defaultdict(list)

    def timed(self, phase: str, fn: object) -> object:
        before = thread_ns(self.pid)
        out = fn()  # type: ignore[operator]
        self.ms[phase].append(spent_ms(before, thread_ns(self.pid)))
        return out


def one_sync(device: Device, planned: Planned, meter: Meter, args: argparse.Namespace) -> None:
    """bench_city's nightly sync, each request measured on its own."""
    result = Result("fixed")
    ok = meter.timed("token", lambda: bench_city.sign_in(device, result))
    push = meter.timed(
        "push", lambda: device.wire.request("POST", "/v1/push", planned.body, device.headers)
    )
    query = urlencode({"since": device.cursor, "limit": args.pull})
    pull = meter.timed(
        "pull", lambda: device.wire.request("GET", f"/v1/pull?{query}", None, device.headers)
    )
    if not ok or push.status != 200 or pull.status != 200:  # type: ignore[attr-defined]
        raise RuntimeError(f"sync failed: {result.why} {push.status} {pull.status}")  # type: ignore[attr-defined]
    page = pull.json()  # type: ignore[attr-defined]
    # a device that caught up starts again from 0, so every pull is a full page
    device.cursor = page["cursor"] if page["more"] else 0
    meter.timed("info", lambda: device.wire.request("GET", "/v1/info"))
    record = planned.record_ids[0]
    got = meter.timed(
        "record", lambda: device.wire.request("GET", f"/v1/records/{record}", None, device.headers)
    )
    if got.status != 200:  # type: ignore[attr-defined]
        raise RuntimeError(f"record read {got.status}")  # type: ignore[attr-defined]


def run(url: str, grids: list[str], args: argparse.Namespace) -> None:
    roots = {"this": bench_city.ROOT}
    if args.compare:
        roots["that"] = Path(args.compare).resolve()
    if args.compare_first:
        roots = dict(reversed(roots.items()))  # the same servers, started in the other order
    servers = {name: Servers(url, 1, root=root) for name, root in roots.items()}
    spies = []
    try:
        meters, sides = {}, {}
        for name, server in servers.items():
            devices = bench_city.make_devices(server.urls, grids, min(args.devices, len(grids)))
            for device in devices:
                device.device_id += name
                bench_city.login(device)
            count = len(devices)
            numbers = range(args.syncs + args.warmup)
            plans = [
                bench_city.plan(d, list(numbers[i::count]), args) for i, d in enumerate(devices)
            ]
            sides[name] = [(plans[n % count][n // count], devices[n % count]) for n in numbers]
            meters[name] = Meter(server.procs[0].pid)
            warm = Meter(server.procs[0].pid)
            for planned, device in sides[name][: args.warmup]:
                one_sync(device, planned, warm, args)
        if args.profile:
            for name, server in servers.items():
                out = f"{args.profile}/{name}-{'pg' if args.pg else 'sqlite'}.txt"
                cmd = ["py-spy", "record", "--gil", "-r", "200", "-f", "raw", "-o", out]
                spies.append(
                    subprocess.Popen(
                        [*cmd, "-p", str(server.procs[0].pid)],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
        ticks0 = {name: s.cpu_seconds() for name, s in servers.items()}
        block = 10
        order = list(servers)
        for start in range(args.warmup, args.warmup + args.syncs, block):
            order.reverse()  # neither server always goes first
            for name in order:
                for planned, device in sides[name][start : start + block]:
                    one_sync(device, planned, meters[name], args)
        ticks = {name: s.cpu_seconds() - ticks0[name] for name, s in servers.items()}
    finally:
        for spy in spies:
            spy.send_signal(2)
            spy.wait(30)
        for server in servers.values():
            server.stop()
    report(meters, ticks, args)


def report(meters: dict[str, Meter], ticks: dict[str, float], args: argparse.Namespace) -> None:
    backend = "postgresql" if args.pg else "sqlite"
    print(
        f"{backend}: {args.syncs} syncs one after the other (token + push {args.ops} + pull "
        f"{args.pull}); server CPU ms per request, mean (median)"
    )
    for name, meter in meters.items():
        cells = [f"{ph} {mean(meter.ms[ph]):.2f} ({median(meter.ms[ph]):.2f})" for ph in PHASES]
        sync = sum(mean(meter.ms[ph]) for ph in ("token", "push", "pull"))
        measured = sum(sum(v) for v in meter.ms.values()) / 1000
        print(
            f"  {name}: sync {sync:.2f} = {', '.join(cells)}; "
            f"utime+stime {ticks[name]:.2f} s vs per-request sum {measured:.2f} s"
        )
    if "that" in meters:
        this, that = meters["this"], meters["that"]
        ratios = [f"{ph} {mean(this.ms[ph]) / mean(that.ms[ph]):.2f}" for ph in PHASES]
        sync = [sum(mean(m.ms[ph]) for ph in ("token", "push", "pull")) for m in (this, that)]
        print(f"  this ÷ that: sync {sync[0] / sync[1]:.2f}, {', '.join(ratios)}")


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=2000, help="demo records on the platform")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--syncs", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10, help="syncs before the measured ones")
    parser.add_argument("--devices", type=int, default=4, help="devices (one per grid)")
    parser.add_argument("--ops", type=int, default=50)
    parser.add_argument("--pull", type=int, default=200)
    parser.add_argument("--offset", type=int, default=7_000_000, help="first resident number")
    parser.add_argument("--pg", action="store_true", help="a throwaway PostgreSQL cluster")
    parser.add_argument("--compare", help="a checkout whose server runs alongside (ratios)")
    parser.add_argument("--compare-first", action="store_true", help="start that server first")
    parser.add_argument("--profile", help="a directory: py-spy samples of the server(s)")
    args = parser.parse_args()
    started = time.process_time()
    if args.pg:
        cluster = bench_console.pg_database(durable=True)
        try:
            url = f"{cluster.url}/bench_console"
            run(url, bench_city.build_platform(url, args.size, args.seed), args)
        finally:
            cluster.stop()
    else:
        with tempfile.TemporaryDirectory(prefix="gc-bench-fixed-") as tmp:
            url = f"sqlite:///{tmp}/platform.db"
            run(url, bench_city.build_platform(url, args.size, args.seed), args)
    print(f"(bench process CPU {time.process_time() - started:.1f} s; pid {os.getpid()})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
