"""Sync throughput over loopback, and again through a proxy adding 50 ms of round-trip delay.

Usage: python tests/bench/bench_sync.py [--push 10000] [--pull 100000] [--delay-ms 50]

Runs the real platform server (uvicorn, SQLite file) in this process, pushes ``--push`` new
residents from a device store with ``SyncSession`` and pulls ``--pull`` records into a fresh
store, first directly and then through a small TCP proxy that holds every chunk of bytes for
half the delay in each direction. Prints records/s, HTTP requests and body bytes on the wire,
against the raw SQLite write rate of the same rows (``executemany`` of the same JSON into a
table of the records' shape) measured in the same run. It prints figures; it never asserts.
The issue's aims: 10 k push <= 5 s and 100 k pull <= 15 s at 0 ms; < 2x slower at 50 ms.
First (``--index-rounds``, ``--index-only``) it pushes ``--push`` new residents into fresh
platforms with and without the console's search index kept on write, alternating, and prints
the ratio (wall time and the server's CPU time): the issue's budget is x1.10.
Last, the first 10 k residents are pushed again from a new device ("all known": each create
merges into the platform's record by natural key and the device rewrites its ids).
The PouchDB anchor (issue 17): ``../shared/bench/pouchdb/run.sh N`` replicates ``--push`` docs
(push then pull) in the same run, and the table at the end prints GridCollect's push of new
residents, pull of ``--push`` records and push of known residents next to PouchDB's docs/s, with
the ratios. Without node, npm or the cached packages it says so and prints GridCollect's side.
``--anchor-only`` measures only that table; ``--rounds N`` measures it N times (each round
on a fresh platform, each with its own PouchDB run) and prints each round and the ratios of the
medians.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.core import ids  # noqa: E402
from app.core.forms import FormSet, load_formset  # noqa: E402
from app.core.records import dumps  # noqa: E402
from app.core.store import Store  # noqa: E402
from sync import heap  # noqa: E402
from sync import protocol as p  # noqa: E402
from sync.client import Client  # noqa: E402
from sync.server import admin  # noqa: E402
from sync.server.db import make_engine  # noqa: E402
from sync.session import SyncSession, SyncSummary  # noqa: E402
from tests.bench.common import GIVEN, SURNAMES  # noqa: E402
from tests.factories import id_number, resident  # noqa: E402
from tests.sync.devicekit import seeded_template  # noqa: E402

GRID = "330106001001-01"
PASSWORD = "bench-password"
POUCHDB = Path(__file__).resolve().parents[3] / "shared" / "bench" / "pouchdb" / "run.sh"


# -- data -------------------------------------------------------------------------------------


# Hangzhou districts, old and new codes: a resident number's ID numbers cycle every
# 14.6 M × len(AREAS) (175 M). Six more were added after the city bench's offsets passed
# 87.6 M and its pushes became merges of earlier nights' residents (numbers below that keep
# their districts).
AREAS = (
    *("330106", "330105", "330108", "330109", "330110", "330111"),
    *("330102", "330112", "330122", "330127", "330182", "330183"),
)


def residents(count: int, offset: int) -> list[dict[str, Any]]:
    """``count`` distinct valid residents (distinct ID numbers, varied names and birth dates so
    that the platform's fuzzy duplicate review sees realistic data), all in one grid."""
    rng = random.Random(offset)
    out = []
    for i in range(offset, offset + count):
        birth = dt.date(1940, 1, 1) + dt.timedelta(days=(i * 7919) % (80 * 365))
        name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
        seq = (i // (80 * 365)) % 500 * 2 + 1
        # each 14.6 M residents another district in the ID number: fresh ID numbers for benches
        # that push into a platform earlier nights filled
        area = AREAS[(i // (80 * 365 * 500)) % len(AREAS)]
        out.append(
            resident(
                birth=birth,
                seq=seq,
                name=name,
                grid=GRID,
                phone=f"138{i % 10**8:08d}",
                id_number=id_number(birth, seq, area),
            )
        )
    return out


def raw_rate(rows: list[dict[str, Any]], path: Path) -> float:
    """Rows/s of a plain executemany of the same JSON into a table of the records' shape."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(
        "CREATE TABLE records (rid INTEGER PRIMARY KEY, id TEXT UNIQUE, form TEXT, grid TEXT, "
        "title TEXT, data TEXT, status TEXT, server_version INTEGER, base TEXT)"
    )
    prepared = [
        (ids.uuid7(), "resident", GRID, r["name"], dumps(r), "draft", 1, dumps(r)) for r in rows
    ]
    start = time.perf_counter()
    with conn:
        conn.executemany(
            "INSERT INTO records (id, form, grid, title, data, status, server_version, base) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            prepared,
        )
    elapsed = time.perf_counter() - start
    conn.close()
    return len(rows) / elapsed


# -- a delaying TCP proxy ---------------------------------------------------------------------


class DelayProxy:
    """Forwards 127.0.0.1:<port> to the server, holding each chunk ``one_way`` seconds."""

    def __init__(self, target_port: int, one_way: float) -> None:
        self.target_port, self.one_way = target_port, one_way
        self.loop = asyncio.new_event_loop()
        self.port = 0
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        ready.wait(10)

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)

        async def start() -> None:
            server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            ready.set()

        self.loop.run_until_complete(start())
        self.loop.run_forever()
        self.loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        except (asyncio.CancelledError, ConnectionError, OSError):
            writer.close()  # the proxy is shutting down or a side went away

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        async def read() -> None:
            while data := await src.read(1 << 16):
                queue.put_nowait((loop.time() + self.one_way, data))
            queue.put_nowait((0.0, b""))

        async def write() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    dst.close()
                    return
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                dst.write(data)
                await dst.drain()

        try:
            await asyncio.gather(read(), write())
        except (ConnectionError, OSError):
            dst.close()

    def stop(self) -> None:
        async def shutdown() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.loop.stop()

        asyncio.run_coroutine_threadsafe(shutdown(), self.loop)
        self.thread.join(10)


# -- runs ---------------------------------------------------------------------------------------


SERVER_SCRIPT = """
import os, signal, sys, uvicorn
from sync.server.app import create_app
if sys.argv[3:] == ["no-index"]:  # the console's search index not kept: its cost, measured
    from sync.server import terms
    terms.record_keys = lambda *args: set()
from sync import heap
app = create_app(sys.argv[1], secret="bench-secret")
capture = None
if os.environ.get("GC_BENCH_CAPTURE"):  # every statement, for bench_push_floor's replay
    from tests.bench.sqlcapture import Capture
    capture = Capture(app.state.engine)
    # uvicorn re-raises the SIGTERM it caught once it has shut down: dump then
    signal.signal(signal.SIGTERM, lambda *_: capture.dump(os.environ["GC_BENCH_CAPTURE"]))
heap.settle()  # as ``server-admin server`` does
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)
"""


class ServerProcess:
    """The platform in its own process (as deployed), so client and server do not share a GIL."""

    def __init__(self, db_path: Path, *extra: str, env: dict[str, str] | None = None) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        root = str(Path(__file__).resolve().parents[2])
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER_SCRIPT, f"sqlite:///{db_path}", str(self.port), *extra],
            env={**os.environ, **(env or {}), "PYTHONPATH": root},
        )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(self.url + "/v1/info", timeout=1).ok:
                    return
            except requests.ConnectionError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.1)

    def cpu_s(self) -> float:
        """CPU seconds the server process has used so far (Linux ``/proc``), a figure that
        other load on a shared machine disturbs less than wall time."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def device(url: str, path: Path, formset: FormSet) -> tuple[Store, Client]:
    store = Store(path, formset)
    client = Client(url, store.device_id)
    client.login("bench", PASSWORD)
    return store, client


class PushOnly(SyncSession):
    """The push phase alone (what "push 10 k ops" measures)."""

    def _pull(self) -> bool:
        return True


CLIENT_CPU: dict[int, float] = {}  # id(summary) -> CPU seconds of this process in the session


def push_run(url: str, path: Path, formset: FormSet, rows: list[dict[str, Any]]) -> SyncSummary:
    store, client = device(url, path, formset)
    store.insert_many("resident", [(None, r, "draft") for r in rows], author="bench")
    store.close()  # typed earlier in the app: its WAL copied when it closed (the checkpointer)
    store = Store(path, formset)  # as ``gridcollect sync`` opens it
    heap.settle()  # as ``gridcollect sync`` does before its session
    cpu = time.process_time()
    summary = PushOnly(store, client).run()
    CLIENT_CPU[id(summary)] = time.process_time() - cpu
    assert summary.applied + summary.merged == len(rows), summary
    store.close()
    return summary


def pull_run(url: str, path: Path, formset: FormSet, chunk: int) -> SyncSummary:
    store, client = device(url, path, formset)
    heap.settle()
    cpu = time.process_time()
    summary = SyncSession(store, client, chunk=chunk).run()
    CLIENT_CPU[id(summary)] = time.process_time() - cpu
    store.close()
    return summary


def seed_server(db_path: Path, formset: FormSet, rows: list[dict[str, Any]]) -> None:
    """Fill the platform through its own op pipeline, in this process (setup, not measured)."""
    from sync.server import auth
    from sync.server.app import create_app

    app = create_app(f"sqlite:///{db_path}", forms=formset, secret="bench-secret")
    _token, _expires, user = auth.login(app.state.engine, app.state.key, "root", PASSWORD, "seed")
    seed_residents(app.state.service, user, rows)
    app.state.engine.dispose()


def seed_residents(service: Any, user: Any, rows: list[dict[str, Any]]) -> None:
    """Create ``rows`` as draft residents through the platform's op pipeline, 1 000 a chunk."""
    stamp = ids.now_iso()
    for start in range(0, len(rows), 1000):
        ops = [
            p.Op(
                op_id=f"seed:{start + i}",
                record_id=ids.uuid7(),
                form="resident",
                kind="create",
                fields={**r, "_status": "draft"},
                edited_at=f"{stamp}#0000",
                author="seed",
            )
            for i, r in enumerate(rows[start : start + 1000])
        ]
        service.apply(user, "seed", ops)


def line(label: str, s: SyncSummary, count: int, raw: float) -> str:
    rate = count / s.duration_s if s.duration_s else float("inf")
    return (
        f"{label:<26} {s.duration_s:7.2f} s {rate:9.0f} rec/s  raw/this {raw / rate:5.1f}x  "
        f"requests {s.requests:4d}  sent {s.bytes_sent / 1e6:7.2f} MB  "
        f"received {s.bytes_received / 1e6:7.2f} MB"
    )


def platform_db(path: Path, formset: FormSet) -> Path:
    """A fresh platform with the bench's users."""
    db_path = seeded_template(path, formset)
    engine = make_engine(f"sqlite:///{db_path}")
    admin.put_user(engine, "bench", PASSWORD, "worker", grids=[GRID])
    admin.put_user(engine, "root", PASSWORD, "admin")
    engine.dispose()
    return db_path


def index_cost(root: Path, formset: FormSet, count: int, rounds: int) -> None:
    """Push ``count`` new residents into fresh platforms whose server keeps the console's
    search index and whose server does not, alternating ``rounds`` times: wall time of the
    push and CPU time of the server process, and their ratios."""
    rows = residents(count, 0)
    ratios: list[tuple[float, float]] = []
    for n in range(rounds):
        took: dict[str, tuple[float, float]] = {}
        for mode in ("index", "no-index"):
            served = ServerProcess(platform_db(root / f"ix-{n}-{mode}.db", formset), mode)
            try:
                before = served.cpu_s()
                summary = push_run(served.url, root / f"ix-{n}-{mode}.sqlite", formset, rows)
                took[mode] = (summary.duration_s, served.cpu_s() - before)
            finally:
                served.stop()
        (wall, cpu), (wall0, cpu0) = took["index"], took["no-index"]
        ratios.append((wall / wall0, cpu / cpu0))
        print(
            f"push {count} with the search index {wall:6.2f} s (server CPU {cpu:5.2f} s), "
            f"without {wall0:6.2f} s ({cpu0:5.2f} s): x{wall / wall0:.3f} (CPU x{cpu / cpu0:.3f})"
        )
    walls, cpus = sorted(r[0] for r in ratios), sorted(r[1] for r in ratios)
    print(
        f"search index cost on a push: median x{walls[len(walls) // 2]:.3f} wall, "
        f"x{cpus[len(cpus) // 2]:.3f} server CPU over {rounds} rounds"
    )


def pouchdb_anchor(count: int) -> dict[str, Any] | str:
    """PouchDB's push and pull of ``count`` docs on this machine (its JSON line), or why not."""
    script = Path(os.environ.get("GC_POUCHDB_RUN", str(POUCHDB)))
    if not script.is_file():
        return f"PouchDB anchor not found at {script} (set GC_POUCHDB_RUN)"
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        return f"PouchDB anchor skipped: {', '.join(missing)} not installed (Debian: nodejs, npm)"
    try:
        done = subprocess.run(
            ["bash", str(script), str(count)], capture_output=True, text=True, timeout=900
        )
    except subprocess.TimeoutExpired:
        return "PouchDB anchor timed out"
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return "PouchDB anchor failed (packages not cached and npm unreachable?): " + " | ".join(
            why
        )
    try:
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return f"PouchDB anchor printed no JSON: {done.stdout[-200:]!r}"
    return result


def anchor_table(
    count: int,
    mine: list[dict[str, float]],
    pouch: list[dict[str, Any] | str],
) -> None:
    """Issue 17's table: GridCollect's docs/s next to PouchDB's, and their ratio; with more
    than one round, each round's figures and then the ratio of the medians (each side's
    rate swings from run to run on a shared machine, PouchDB's by ±12 %)."""
    theirs = [_pouch_rates(found) for found in pouch]
    rounds = [(m, t) for m, t in zip(mine, theirs, strict=True)]
    if len(rounds) > 1:
        for n, (m, t) in enumerate(rounds, 1):
            _rates_table(f"round {n}", count, m, t)
        known = [t for _m, t in rounds if t is not None]
        _rates_table(
            f"median of {len(rounds)} rounds",
            count,
            {key: statistics.median(m[key] for m in mine) for key in mine[0]},
            {key: statistics.median(t[key] for t in known) for key in known[0]} if known else None,
        )
    else:
        _rates_table("", count, *rounds[0])


def _pouch_rates(found: dict[str, Any] | str) -> dict[str, float] | None:
    """PouchDB's docs/s for each row of the table, or None (its reason printed)."""
    if isinstance(found, str):
        print(found)
        return None
    push, pull = float(found["push_docs_per_s"]), float(found["pull_docs_per_s"])
    return {"push new": push, "pull": pull, "push known": push}


def _rates_table(
    title: str, count: int, mine: dict[str, float], theirs: dict[str, float] | None
) -> None:
    head = f"issue 17 anchor, {count} docs{', ' + title if title else ''}"
    print(f"{head:<34} GridCollect rec/s   PouchDB docs/s   ratio")
    for key, rate in mine.items():
        other = theirs[key] if theirs else None
        ratio = f"{rate / other:6.2f}x" if other else "   n/a"
        print(f"  {key:<30} {rate:12,.0f} {other or 0:16,.0f}   {ratio}")
    print(f"  known push / new push: {mine['push known'] / mine['push new']:.2f}x")


def anchor_run(root: Path, formset: FormSet, count: int, rounds: int = 1) -> None:
    """``rounds`` times: push ``count`` new residents, pull them into a fresh store, push them
    again from a new device (all known), then PouchDB's push and pull of ``count`` docs; one
    table (and the medians' with more than one round)."""
    mine: list[dict[str, float]] = []
    pouch: list[dict[str, Any] | str] = []
    for n in range(rounds):
        mine.append(anchor_round(root / f"round{n}", formset, count))
        pouch.append(pouchdb_anchor(count))
    anchor_table(count, mine, pouch)


def anchor_round(root: Path, formset: FormSet, count: int) -> dict[str, float]:
    """One round of GridCollect's side of the anchor on a fresh platform: its lines printed,
    its rec/s returned."""
    root.mkdir()
    served = ServerProcess(platform_db(root / "anchor.db", formset))
    try:
        rows = residents(count, 0)
        cpu = served.cpu_s()
        push = push_run(served.url, root / "a0.sqlite", formset, rows)
        cpu_push, cpu = served.cpu_s() - cpu, served.cpu_s()
        pull = pull_run(served.url, root / "a1.sqlite", formset, 1000)
        cpu_pull, cpu = served.cpu_s() - cpu, served.cpu_s()
        known = push_run(served.url, root / "a2.sqlite", formset, rows)
        cpu_known = served.cpu_s() - cpu
    finally:
        served.stop()
    for label, s, n, server in (
        ("push new", push, count, cpu_push),
        ("pull", pull, pull.pulled, cpu_pull),
        ("push known", known, count, cpu_known),
    ):
        client = CLIENT_CPU.get(id(s), float("nan"))
        print(
            line(label, s, n, float("nan")) + f"  CPU server {server:5.2f} s client {client:5.2f} s"
        )
    return {
        "push new": count / push.duration_s,
        "pull": pull.pulled / pull.duration_s,
        "push known": count / known.duration_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--push", type=int, default=10_000)
    parser.add_argument("--pull", type=int, default=100_000)
    parser.add_argument("--delay-ms", type=float, default=50.0)
    parser.add_argument("--chunk", type=int, default=1000, help="pull chunk (records/request)")
    parser.add_argument(
        "--index-rounds", type=int, default=2, help="pushes with and without the search index"
    )
    parser.add_argument("--index-only", action="store_true", help="only the search index's cost")
    parser.add_argument("--anchor-only", action="store_true", help="only the PouchDB table")
    parser.add_argument(
        "--rounds", type=int, default=1, help="anchor rounds (more: the medians' ratios too)"
    )
    args = parser.parse_args()
    formset = load_formset()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        anchor_run(root, formset, args.push, args.rounds)
        if args.anchor_only:
            return
        if args.index_rounds:
            index_cost(root, formset, args.push, args.index_rounds)
        if args.index_only:
            return
        db_path = platform_db(root / "platform.db", formset)
        served = ServerProcess(db_path)
        proxy = DelayProxy(served.port, args.delay_ms / 2000)
        slow_url = f"http://127.0.0.1:{proxy.port}"
        try:
            pushed = residents(args.push * 2, 0)
            raw = raw_rate(residents(args.pull, 10**6), root / "raw.sqlite")
            print(f"raw SQLite executemany of the same rows: {raw:,.0f} rows/s")
            fast_push = push_run(served.url, root / "p0.sqlite", formset, pushed[: args.push])
            print(line("push 0 ms", fast_push, args.push, raw))
            slow_push = push_run(slow_url, root / "p1.sqlite", formset, pushed[args.push :])
            print(line(f"push {args.delay_ms:.0f} ms RTT", slow_push, args.push, raw))
            t = time.perf_counter()
            seed_server(db_path, formset, residents(args.pull - 2 * args.push, 10**6))
            print(f"(server seeded to {args.pull:,} records in {time.perf_counter() - t:.1f} s)")
            fast_pull = pull_run(served.url, root / "q0.sqlite", formset, args.chunk)
            print(line("pull 0 ms", fast_pull, fast_pull.pulled, raw))
            slow_pull = pull_run(slow_url, root / "q1.sqlite", formset, args.chunk)
            print(line(f"pull {args.delay_ms:.0f} ms RTT", slow_pull, slow_pull.pulled, raw))
            # the same residents typed again on another device: every create merges into the
            # record the platform holds (natural key), and the device rewrites its ids
            known = push_run(served.url, root / "p2.sqlite", formset, pushed[: args.push])
            print(line("push 0 ms, all known", known, args.push, raw))
            print(
                f"delay cost: push x{slow_push.duration_s / fast_push.duration_s:.2f}, "
                f"pull x{slow_pull.duration_s / fast_pull.duration_s:.2f}"
            )
        finally:
            proxy.stop()
            served.stop()


if __name__ == "__main__":
    main()
