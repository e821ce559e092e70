"""A city's night in miniature: many devices sync against several server processes.

    python tests/bench/bench_city.py [--size 1630000] [--devices 32] [--syncs 640]
        [--ops 50] [--pull 200] [--processes 2] [--backend pg|sqlite|both] [--window SECONDS]
        [--pool-size N] [--pool-overflow N] [--compare DIR [--rounds N]] [--statements N]

The platform holds the demo street office (``--size`` records, bulk-loaded from the cached demo
store as bench_console does; small sizes go through the push path), on a throwaway PostgreSQL
cluster started here and on a SQLite file. ``--processes`` real ``gridcollect server``
processes serve it; the simulated devices are spread over them (as a proxy would). Every device
logs in once (with its refresh credential when the platform issues one, else its password),
then ``--syncs`` nightly syncs run, ``--devices`` at a time (sync n on device n mod
``--devices``, each device's in turn), their starts spread over ``--window`` seconds: each pushes ``--ops`` new residents of its grid in one request and
pulls one page of ``--pull`` changes. A device is one keep-alive ``http.client`` connection and
its push bodies are built and encoded before the night starts, so the bench's own CPU (on the
servers' cores) is little more than the HTTP exchange.

It prints push transactions per second, p50/p99 sync latency, 5xx answers and retries (503
with Retry-After), the share of time sessions waited on a lock (sampled from
``pg_stat_activity``), the servers' CPU per device sync, and the SQLite run's figures with the
ratio. It checks that every pushed record is on the platform exactly once. ``--compare DIR``:
nights of that checkout's servers alternate with this one's (this, that, that, this) on the same
platform, and the ratio of the servers' CPU per sync is printed (before → after in one run);
when that checkout's schema is older, the platform is stepped down to it (Alembic downgrade)
before its nights and up again before this checkout's.
``--statements N`` (PostgreSQL): the cluster preloads ``pg_stat_statements`` and each night
prints its N most expensive statements per sync (calls, execution and planning ms, blocks, WAL).
Each night also splits PostgreSQL's CPU by process kind (backends, autovacuum, checkpointer...;
``exited``: children that ended during the night) and counts the connections opened.
It never asserts a time; the figures are for the closing note of the issue.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import http.client
import os
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sqlalchemy import create_engine, func, select, text  # noqa: E402

from app.core import ids  # noqa: E402
from app.core.forms import load_formset  # noqa: E402
from sync.server import auth, db, migrate  # noqa: E402
from sync.server.app import create_app  # noqa: E402
from sync.server.demo import load_demo  # noqa: E402
from tests.bench import bench_console, bench_push_writes  # noqa: E402
from tests.bench.bench_sync import residents  # noqa: E402
from tests.bench.common import median, percentile  # noqa: E402

PASSWORD = bench_console.PASSWORD
auth.set_kdf_cost(2**14)  # the platform's real cost (the test kit lowers it when imported)
ROOT = Path(__file__).resolve().parents[2]


@dataclasses.dataclass
class Result:
    """What one backend's night gave."""

    backend: str
    syncs: int = 0
    elapsed: float = 0.0
    sync_ms: list[float] = dataclasses.field(default_factory=list)
    push_ms: list[float] = dataclasses.field(default_factory=list)
    errors_5xx: int = 0
    retries: int = 0
    chunk_retries: int = 0  # push transactions run again after a concurrent write (server log)
    failed: int = 0
    why: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    cpu_s: float = 0.0
    lock_share: float | None = None
    login_cpu_ms: float = 0.0
    lost: int = 0
    duplicated: int = 0
    pushed: list[str] = dataclasses.field(default_factory=list)
    db_cpu_s: float = 0.0  # PostgreSQL's processes (0 for SQLite: it runs inside the servers)
    db_parts: dict[str, float] = dataclasses.field(default_factory=dict)  # by process kind
    sessions: int = 0  # PostgreSQL connections opened during the night
    autovacuums: int = 0  # autovacuum and autoanalyze runs during the night
    client_cpu_s: float = 0.0  # this bench's simulated devices
    sampler_cpu_s: float = 0.0  # this bench's lock sampler (PostgreSQL only)
    machine_cpu_s: float = 0.0  # every process of the machine (the figures above + the rest)
    fresh_ms: list[float] = dataclasses.field(default_factory=list)
    # each sync: (its start, seconds into the night; its ms; the push's ms), for --timeline
    timeline: list[tuple[float, float, float]] = dataclasses.field(default_factory=list)
    began: float = 0.0  # the night's start (perf_counter)


# -- the platform -----------------------------------------------------------------------------


def build_platform(url: str, size: int, seed: int) -> list[str]:
    """Load the demo street office; returns the grid codes (each has a worker ``w-<grid>``)."""
    if size >= bench_console.BULK_FROM:
        loaded = bench_console.bulk_load(url, size, seed)
        return loaded.grids
    app = create_app(url, forms=load_formset(), secret="bench")
    try:
        return load_demo(app.state.service, PASSWORD, size=size, seed=seed).grids
    finally:
        app.state.engine.dispose()


RETRIED = "push chunk retried"  # the server's log line for a push transaction run again


class Servers:
    """``count`` real ``gridcollect server`` processes on one database (``root``: the checkout
    whose code they run, with that checkout's own ``.venv`` when it has one: a compared
    checkout runs on the dependencies it was set up with)."""

    def __init__(
        self, url: str, count: int, extra: list[str] | None = None, root: Path = ROOT
    ) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.urls: list[str] = []
        folder = Path(tempfile.mkdtemp(prefix="gc-city-"))
        secret = folder / "secret"
        secret.write_text("bench-city-secret", encoding="utf-8")
        own = Path(root) / ".venv" / "bin" / "python"
        python = str(own) if Path(root).resolve() != ROOT and own.exists() else sys.executable
        # the servers' logs go to files: a pipe nobody reads during the night would block a
        # server once its buffer filled
        self.logs = [folder / f"server-{i}.log" for i in range(count)]
        for log in self.logs:
            port = _free_port()
            cmd = [python, "-m", "app.cli", "server", "--db", url, "--port", str(port)]
            cmd += ["--secret-file", str(secret), *(extra or [])]
            env = {**os.environ, "PYTHONPATH": str(root)}  # that checkout's code
            with log.open("wb") as err:  # the child keeps its own descriptor
                self.procs.append(
                    subprocess.Popen(  # cwd: ``-m`` puts it first on the path
                        cmd, env=env, cwd=root, stdout=subprocess.DEVNULL, stderr=err
                    )
                )
            self.urls.append(f"http://127.0.0.1:{port}")
        for proc, base, log in zip(self.procs, self.urls, self.logs, strict=True):
            _wait_up(proc, base, log)

    def log_lines(self, marker: str) -> int:
        """Lines of the servers' logs so far that contain ``marker``."""
        return sum(
            line.count(marker)
            for log in self.logs
            for line in log.read_text(encoding="utf-8", errors="replace").splitlines()
        )

    def cpu_seconds(self) -> float:
        """User + system CPU of the server processes so far (Linux /proc)."""
        stats = (Path(f"/proc/{proc.pid}/stat").read_text() for proc in self.procs)
        return sum(_cpu_ticks(stat)[1] for stat in stats) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait(timeout=30)


def _cpu_ticks(stat: str) -> tuple[str, int]:
    """A process's name and user + system CPU ticks, from its /proc/PID/stat text."""
    head, _, tail = stat.rpartition(")")
    fields = tail.split()
    return head.partition("(")[2], int(fields[11]) + int(fields[12])


def _cpu_elsewhere(postmaster: int | None) -> tuple[float, float, float]:
    """CPU seconds so far of this night's PostgreSQL cluster (``postmaster`` and its children:
    the machine runs others' clusters too), of this bench, and of the machine (Linux /proc):
    where a 2-core machine's time goes besides the servers."""
    tick = os.sysconf("SC_CLK_TCK")
    postgres = 0
    for path in Path("/proc").glob("[0-9]*/stat") if postmaster else ():
        try:
            stat = path.read_text()
        except OSError:
            continue  # the process ended
        fields = stat.rpartition(")")[2].split()
        if int(path.parent.name) == postmaster:  # with its ended children's CPU (cutime, cstime)
            postgres += sum(int(x) for x in fields[11:15])
        elif int(fields[1]) == postmaster:
            postgres += int(fields[11]) + int(fields[12])
    me = os.times()
    busy = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    machine = sum(int(x) for i, x in enumerate(busy) if i not in (3, 4))  # not idle, iowait
    return postgres / tick, me.user + me.system, machine / tick


def _postgres_parts(postmaster: int | None) -> dict[str, float]:
    """CPU seconds so far of a cluster's processes by kind (its process titles): the
    backends, each auxiliary process, and ``exited`` (children that ended: autovacuum workers
    and closed connections, counted in the postmaster's cutime/cstime)."""
    tick = os.sysconf("SC_CLK_TCK")
    parts: collections.Counter[str] = collections.Counter()
    for path in Path("/proc").glob("[0-9]*/stat") if postmaster else ():
        try:
            fields = path.read_text().rpartition(")")[2].split()
            title = (path.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, UnicodeDecodeError):
            continue
        if int(path.parent.name) == postmaster:
            parts["postmaster"] += int(fields[11]) + int(fields[12])
            parts["exited"] += int(fields[13]) + int(fields[14])
        elif int(fields[1]) == postmaster:
            kind = title.removeprefix("postgres: ").split(" ")[0]
            kind = "backends" if kind == "postgres" else kind  # "postgres: <user> <db> ..."
            parts[kind] += int(fields[11]) + int(fields[12])
    return {kind: ticks / tick for kind, ticks in parts.items()}


_CHURN = text(
    "SELECT (SELECT sessions FROM pg_stat_database WHERE datname = current_database()), "
    "(SELECT coalesce(sum(autovacuum_count + autoanalyze_count), 0) FROM pg_stat_all_tables)"
)


def _churn(url: str) -> tuple[int, int]:
    """Sessions opened so far in the database, and autovacuum + autoanalyze runs so far."""
    if not url.startswith("postgresql"):
        return 0, 0
    engine = create_engine(db.normalize_url(url))
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_stat_clear_snapshot()"))
            sessions, vacuums = conn.execute(_CHURN).one()
    finally:
        engine.dispose()
    return int(sessions or 0), int(vacuums or 0)


def _postmaster(url: str) -> int | None:
    """The pid of the cluster serving ``url`` (the parent of a backend), None for SQLite."""
    if not url.startswith("postgresql"):
        return None
    engine = create_engine(db.normalize_url(url))
    try:
        with engine.connect() as conn:  # read while the backend lives: it exits on close
            backend = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            stat = Path(f"/proc/{backend}/stat").read_text()
    finally:
        engine.dispose()
    return int(stat.rpartition(")")[2].split()[1])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_up(proc: subprocess.Popen[bytes], base: str, log: Path) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            if requests.get(base + "/v1/info", timeout=1).ok:
                return
        except requests.ConnectionError:
            pass
        if proc.poll() is not None:
            err = log.read_text(encoding="utf-8", errors="replace")
            raise RuntimeError(f"the server did not start: {err[-2000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not start in 120 s")
        time.sleep(0.1)


# -- devices ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Reply:
    """A server's answer as the bench reads it: status, headers (lower-case names), body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


class Wire:
    """One device's keep-alive HTTP/1.1 connection (``http.client``), reused for every request.

    Why not ``requests``: its per-request machinery (sessions, adapters, cookie jars, header
    merging) cost the simulated devices CPU that the 2-core machine took from the servers. The
    bytes on the wire are the same: JSON bodies, ``Accept-Encoding: gzip`` (the real client's),
    bearer token and device id."""

    def __init__(self, base: str) -> None:
        parts = urlsplit(base)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """Send one request; a keep-alive connection the server closed meanwhile is reopened
        once and the request sent again (as urllib3 does): no answer came, nothing was read."""
        sent = {"Accept-Encoding": "gzip", **(headers or {})}
        if body is not None:
            sent["Content-Type"] = "application/json"
        for attempt in (0, 1):
            try:
                self.conn.request(method, path, body=body, headers=sent)
                resp = self.conn.getresponse()
                data = resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.conn.close()
                if attempt:
                    raise
                continue
            names = {k.lower(): v for k, v in resp.getheaders()}
            if names.get("content-encoding") == "gzip":
                data = zlib.decompress(data, 16 + zlib.MAX_WBITS)
            return Reply(resp.status, names, data)
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.conn.close()


@dataclasses.dataclass
class Device:
    """One simulated installation: its server, user, device id, credential and cursor."""

    base: str
    user: str
    device_id: str
    grid: str
    wire: Wire
    token: str = ""
    refresh: str = ""
    cursor: int = 0

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "X-Device-Id": self.device_id}


@dataclasses.dataclass(frozen=True)
class Planned:
    """One nightly sync prepared before the night: the push body, encoded, and its records."""

    number: int
    body: bytes
    record_ids: list[str]


RUN = secrets.token_hex(3)  # device ids of this run: a reused database knows earlier runs' ops


def make_devices(urls: list[str], grids: list[str], count: int, tag: str = "") -> list[Device]:
    """``count`` devices spread over the servers and grids (``tag``: a night's own ids)."""
    out = []
    for i in range(count):
        grid, base = grids[i % len(grids)], urls[i % len(urls)]
        out.append(Device(base, f"w-{grid}", f"city{RUN}{tag}{i:05d}", grid, Wire(base)))
    return out


def plan(device: Device, numbers: list[int], args: argparse.Namespace) -> list[Planned]:
    """The device's syncs of the night, their push bodies built and encoded beforehand (the
    bench's own CPU during the night is then only the HTTP exchange)."""
    stamp = ids.now_iso()
    out = []
    for number in numbers:
        rows = residents(args.ops, offset=(number + 1) * 1000 + args.offset)
        record_ids = list(ids.uuid7_many(len(rows)))
        ops = [
            {
                "op_id": f"{device.device_id}:{number}:{k}",
                "record_id": record_id,
                "form": "resident",
                "kind": "create",
                "base_version": None,
                "fields": {**row, "grid": device.grid, "_status": "draft"},
                "edited_at": f"{stamp}#0000",
                "author": "bench",
            }
            for k, (row, record_id) in enumerate(zip(rows, record_ids, strict=True))
        ]
        body = {"protocol": 1, "device_id": device.device_id, "ops": ops}
        out.append(Planned(number, orjson.dumps(body), record_ids))
    return out


def login(device: Device) -> None:
    """The device's setup (once, with the password): it keeps its sync credential."""
    body = {"username": device.user, "password": PASSWORD, "device_id": device.device_id}
    resp = device.wire.request("POST", "/v1/login", orjson.dumps(body))
    if resp.status != 200:
        raise RuntimeError(f"login {resp.status} {_code(resp)}")
    answer = resp.json()
    device.token = answer["token"]
    device.refresh = answer.get("refresh_token") or ""


def sign_in(device: Device, result: Result) -> bool:
    """A night's sign-in: the sync credential when the platform gave one, else the password."""
    if not device.refresh:
        login(device)
        return True
    body = orjson.dumps({"refresh_token": device.refresh, "device_id": device.device_id})
    resp = call(device, result, "POST", "/v1/token", body, {})
    if resp.status != 200:
        result.why[f"token {resp.status} {_code(resp)}"] += 1
        return False
    device.token = resp.json()["token"]
    return True


def _code(resp: Reply) -> str:
    """The protocol's error code of a refused request (what the bench prints as the reason)."""
    try:
        return str(resp.json().get("error", {}).get("code", ""))
    except (ValueError, AttributeError):
        return ""


def call(
    device: Device,
    result: Result,
    method: str,
    path: str,
    body: bytes | None,
    headers: dict[str, str],
) -> Reply:
    """One request, retried after a 503's Retry-After (as the real client does)."""
    for _ in range(20):
        resp = device.wire.request(method, path, body, headers)
        if resp.status == 503:
            result.retries += 1
            time.sleep(float(resp.headers.get("retry-after", "1")) * random.uniform(0.5, 1.5))
            continue
        if resp.status >= 500:
            result.errors_5xx += 1
        return resp
    return resp


def nightly_sync(
    device: Device, planned: Planned, args: argparse.Namespace, result: Result
) -> None:
    """Sign in, push the planned ``--ops`` new residents of the device's grid, pull one page."""
    start = time.perf_counter()
    if not sign_in(device, result):
        result.failed += 1
        return
    resp = call(device, result, "POST", "/v1/push", planned.body, device.headers)
    push_done = time.perf_counter()
    if resp.status != 200:
        result.failed += 1
        result.why[f"push {resp.status} {_code(resp)}"] += 1
        return
    result.pushed.extend(planned.record_ids)
    query = urlencode({"since": device.cursor, "limit": args.pull})
    resp = call(device, result, "GET", f"/v1/pull?{query}", None, device.headers)
    if resp.status != 200:
        result.failed += 1
        result.why[f"pull {resp.status} {_code(resp)}"] += 1
        return
    device.cursor = resp.json()["cursor"]
    end = time.perf_counter()
    result.push_ms.append((push_done - start) * 1000)
    result.sync_ms.append((end - start) * 1000)
    result.timeline.append((start - result.began, (end - start) * 1000, (push_done - start) * 1000))


class LockSampler:
    """The share of samples in which a PostgreSQL session waited on a lock."""

    def __init__(self, url: str, every: float = 0.05) -> None:
        self.engine = create_engine(db.normalize_url(url), isolation_level="AUTOCOMMIT")
        self.every = every
        self.cpu_s = 0.0  # this sampler thread's CPU so far (it runs in the bench's process)
        self.samples = self.waiting = 0
        self.waits: dict[str, int] = {}  # what sessions waited on, by wait event and statement
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        sql = text(
            "SELECT count(*) FILTER (WHERE wait_event_type = 'Lock'), "
            "count(*) FILTER (WHERE state = 'active') FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        what = text(
            "SELECT wait_event, left(regexp_replace(query, '\\s+', ' ', 'g'), 60) "
            "FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        began = time.thread_time()
        with self.engine.connect() as conn:
            while not self.stop_flag.wait(self.every):
                self.cpu_s = time.thread_time() - began
                waiting, active = conn.execute(sql).one()
                self.samples += 1 if active else 0
                self.waiting += 1 if waiting else 0
                if waiting:
                    for event, query in conn.execute(what):
                        self.waits[f"{event}: {query}"] = self.waits.get(f"{event}: {query}", 0) + 1

    def share(self) -> float:
        self.stop_flag.set()
        self.thread.join(5)
        self.engine.dispose()
        return self.waiting / self.samples if self.samples else 0.0


def night(
    url: str,
    grids: list[str],
    args: argparse.Namespace,
    backend: str,
    root: Path = ROOT,
    number: int = 0,
) -> Result:
    """Start the servers (running ``root``'s code), log every device in, run the syncs, check
    the platform. ``number``: the run's n-th night, with its own devices and residents."""
    result = Result(backend)
    servers = Servers(url, args.processes, server_options(args), root=root)
    span = (args.syncs + 2) * 1000  # resident numbers a night uses (see ``plan``)
    args = argparse.Namespace(**{**vars(args), "offset": args.offset + number * span})
    try:
        devices = make_devices(servers.urls, grids, args.devices, tag=f"n{number}")
        cpu0 = servers.cpu_seconds()
        # setup, one device after another: concurrent password logins of one account from one
        # address can deadlock in the login throttle on PostgreSQL (500); setup is not the night
        for device in devices:
            login(device)
        result.login_cpu_ms = (servers.cpu_seconds() - cpu0) * 1000 / len(devices)
        sampler = (
            LockSampler(url, args.lock_sample_ms / 1000) if url.startswith("postgresql") else None
        )
        spies = [
            subprocess.Popen(
                [
                    "py-spy",
                    "record",
                    "--gil",
                    "-r",
                    "50",
                    "-f",
                    "raw",
                    "-o",
                    f"{args.profile}/{backend}-{i}.txt",
                ]
                + ["-p", str(proc.pid)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for i, proc in enumerate(servers.procs)
            if args.profile
        ]
        plans = [
            plan(d, list(range(i, args.syncs, len(devices))), args) for i, d in enumerate(devices)
        ]
        sampled0 = sampler.cpu_s if sampler else 0.0
        postmaster = _postmaster(url)
        if args.statements and postmaster:
            stats_engine = create_engine(db.normalize_url(url))
            bench_push_writes.reset_statements(stats_engine)
        cpu0, others0 = servers.cpu_seconds(), _cpu_elsewhere(postmaster)
        retried0 = servers.log_lines(RETRIED)
        parts0 = _postgres_parts(postmaster)
        churn0 = _churn(url)
        start = result.began = time.perf_counter()

        def run(device: Device, syncs: list[Planned]) -> None:
            """A device's syncs in turn, each not before its start in the window."""
            for planned in syncs:
                delay = start + args.window * planned.number / args.syncs - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                nightly_sync(device, planned, args, result)

        with ThreadPoolExecutor(len(devices)) as pool:
            list(pool.map(run, devices, plans))
        result.elapsed = time.perf_counter() - start
        for spy in spies:
            spy.send_signal(2)
            spy.wait(30)
        result.cpu_s = servers.cpu_seconds() - cpu0
        result.chunk_retries = servers.log_lines(RETRIED) - retried0
        others = _cpu_elsewhere(postmaster)
        parts = _postgres_parts(postmaster)
        result.db_parts = {k: v - parts0.get(k, 0.0) for k, v in parts.items()}
        churn = _churn(url)
        result.sessions = churn[0] - churn0[0] - 1  # less the count's own
        result.autovacuums = churn[1] - churn0[1]
        result.db_cpu_s, result.client_cpu_s, result.machine_cpu_s = (
            b - a for a, b in zip(others0, others, strict=True)
        )
        if sampler:  # the lock sampler runs in this process: not the devices' cost
            result.sampler_cpu_s = sampler.cpu_s - sampled0
            result.client_cpu_s -= result.sampler_cpu_s
        result.lock_share = sampler.share() if sampler else None
        if sampler:
            for what, n in sorted(sampler.waits.items(), key=lambda kv: -kv[1])[:6]:
                print(f"  lock wait: {n:5} samples  {what}")
        result.syncs = len(result.sync_ms)
        if args.statements and postmaster:
            bench_push_writes.print_statements(stats_engine, result.syncs, args.statements)
            stats_engine.dispose()
    finally:
        servers.stop()
    result.lost, result.duplicated = check(url, result.pushed)
    return result


def check(url: str, pushed: list[str]) -> tuple[int, int]:
    """Pushed records missing on the platform, and records an op was applied to twice (a
    create applied once leaves version 1)."""
    engine = db.make_engine(url)
    found = twice = merged = 0
    r, a = db.records.c, db.aliases.c
    try:
        with db.read(engine) as conn:
            for i in range(0, len(pushed), 500):
                part = pushed[i : i + 500]
                stmt = select(func.count(), func.count().filter(r.version != 1))
                n, v = conn.execute(stmt.where(r.id.in_(part))).one()
                # a create the platform recognised as a person it holds is merged (an alias)
                m = conn.execute(select(func.count()).where(a.old_id.in_(part))).scalar_one()
                found, twice, merged = found + n, twice + v, merged + m
    finally:
        engine.dispose()
    if merged:
        print(f"  {merged} pushed creates merged into records the platform held (aliases)")
    return len(pushed) - found - merged, twice


# -- report -----------------------------------------------------------------------------------


def report(res: Result, args: argparse.Namespace) -> None:
    rate = res.syncs / res.elapsed if res.elapsed else 0.0
    lock = "n/a" if res.lock_share is None else f"{res.lock_share:.0%}"
    print(
        f"{res.backend:10} syncs {res.syncs}/{args.syncs} in {res.elapsed:.1f} s: "
        f"{rate:.1f} push tx/s; sync p50 {median(res.sync_ms):.0f} ms "
        f"p99 {percentile(res.sync_ms, 0.99):.0f} ms max {max(res.sync_ms, default=0):.0f} ms; "
        f"push p50 {median(res.push_ms):.0f} ms; "
        f"5xx {res.errors_5xx}, 503 retries {res.retries}, failed {res.failed}, "
        f"push transactions run again {res.chunk_retries}; "
        f"lock-wait share {lock}; server CPU {res.cpu_s * 1000 / max(res.syncs, 1):.1f} ms/sync, "
        f"setup login (password) {res.login_cpu_ms:.1f} ms/device; lost {res.lost}, duplicated {res.duplicated}"
        + (f"; lone push p50 {median(res.fresh_ms):.0f} ms" if res.fresh_ms else "")
    )
    n = max(res.syncs, 1)
    print(
        f"  CPU ms per sync: servers {res.cpu_s * 1000 / n:.1f}, PostgreSQL {res.db_cpu_s * 1000 / n:.1f}, "
        f"bench devices {res.client_cpu_s * 1000 / n:.1f}"
        + (f" (+ lock sampler {res.sampler_cpu_s * 1000 / n:.1f})" if res.sampler_cpu_s else "")
        + f", whole machine {res.machine_cpu_s * 1000 / n:.1f} "
        f"({os.cpu_count()} cores: at most {os.cpu_count() * 1000 / max(res.machine_cpu_s * 1000 / n, 1e-9):.0f} syncs/s "
        "at this cost)"
    )
    if res.db_parts:
        shares = sorted(res.db_parts.items(), key=lambda kv: -kv[1])
        print(
            "  PostgreSQL CPU ms per sync by process: "
            + ", ".join(f"{kind} {sec * 1000 / n:.2f}" for kind, sec in shares if sec > 0)
            + f"; {res.sessions} connections opened, {res.autovacuums} autovacuum/analyze runs"
        )
    for why, count in res.why.most_common():
        print(f"  failed: {count} x {why}")
    if args.timeline and res.timeline:
        write_timeline(res, Path(args.timeline))


def write_timeline(res: Result, folder: Path) -> None:
    """The night's syncs as CSV, and per 10 s of the night: syncs started and the slowest."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (res.backend.replace("/", "-") + f"-{int(time.time())}.csv")
    rows = sorted(res.timeline)
    path.write_text(
        "start_s,sync_ms,push_ms\n" + "".join(f"{a:.3f},{b:.1f},{c:.1f}\n" for a, b, c in rows)
    )
    buckets: dict[int, list[float]] = collections.defaultdict(list)
    for began, ms, _push in rows:
        buckets[int(began // 10)].append(ms)
    print(
        f"  timeline {path}: per 10 s, syncs started / slowest ms: "
        + ", ".join(f"{10 * k}s {len(v)}/{max(v):.0f}" for k, v in sorted(buckets.items()))
    )


def reused_platform(url: str) -> list[str]:
    """A platform an earlier run loaded (``--pg-db``/``--sqlite-db``): upgraded to this code's
    schema in place (as an office would), its grids."""
    engine = db.make_engine(url)
    try:
        migrate.upgrade(engine)
        return bench_console.loaded_platform(engine).grids
    finally:
        engine.dispose()


def fresh_push(url: str, grids: list[str], args: argparse.Namespace) -> list[float]:
    """One device alone pushes ``--fresh`` batches of ``--ops`` new residents: ms per push,
    through one real server process (the push into a just-loaded database, no contention)."""
    servers = Servers(url, 1)
    try:
        device = make_devices(servers.urls, grids, 1)[0]
        device.device_id = f"fresh{RUN}"
        login(device)
        result = Result("fresh")
        for planned in plan(device, [900_000 + i for i in range(args.fresh)], args):
            nightly_sync(device, planned, args, result)
        return result.push_ms
    finally:
        servers.stop()


def server_options(args: argparse.Namespace) -> list[str]:
    """Pool flags for the night's server processes (the default: the server's own)."""
    out = []
    if args.pool_size is not None:
        out += ["--pool-size", str(args.pool_size)]
    if args.pool_overflow is not None:
        out += ["--pool-overflow", str(args.pool_overflow)]
    return out


def run_backend(url: str, grids: list[str], args: argparse.Namespace, name: str) -> Result:
    pushes = fresh_push(url, grids, args) if args.fresh else []
    if args.compare:
        return compare_nights(url, grids, args, name)
    result = night(url, grids, args, name)
    result.fresh_ms = pushes
    report(result, args)
    return result


def _head_of(root: Path) -> str:
    """The schema revision a checkout's code runs on (its own interpreter and code)."""
    own = root / ".venv" / "bin" / "python"
    python = str(own) if root != ROOT and own.exists() else sys.executable
    code = "from sync.server import migrate; print(migrate.head())"
    out = subprocess.run([python, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def _step_schema(url: str, revision: str) -> None:
    """Bring the platform to ``revision`` (this checkout's revisions go down as well as up),
    so a compared checkout of an older schema runs on the schema it was written for; the
    indexes a revision drops are made again for the old code's nights."""
    engine = db.make_engine(url)
    try:
        with db.write(engine) as conn:
            if migrate.current_revision(conn) == revision:
                return
            action = "downgrade" if revision in _older(revision) else "upgrade"
            migrate._run(conn, action, revision)
        db.analyze(engine)
    finally:
        engine.dispose()


def _older(revision: str) -> set[str]:
    """Revisions below this code's head (``revision`` among them: a downgrade)."""
    scripts = migrate.scripts()
    head = migrate.head()
    return {r.revision for r in scripts.iterate_revisions(head, "base")} - {head}


def compare_nights(url: str, grids: list[str], args: argparse.Namespace, name: str) -> Result:
    """Nights of this checkout's servers and of ``--compare``'s, in the order this, that,
    that, this (each pair on a platform grown alike), and the ratios of their CPU per sync."""
    roots = {"this": ROOT, "that": Path(args.compare).resolve()}
    heads = {side: _head_of(root) for side, root in roots.items()}
    totals = {side: Result(f"{name}/{side}") for side in roots}
    for i, side in enumerate(["this", "that", "that", "this"] * args.rounds):
        _step_schema(url, heads[side])
        res = night(url, grids, args, f"{name}/{side}", roots[side], number=i + 1)
        report(res, args)
        total = totals[side]
        total.syncs += res.syncs
        total.elapsed += res.elapsed
        total.sync_ms += res.sync_ms
        for key in ("cpu_s", "db_cpu_s", "client_cpu_s", "machine_cpu_s"):
            setattr(total, key, getattr(total, key) + getattr(res, key))
        total.lost += res.lost
        total.duplicated += res.duplicated
    this, that = totals["this"], totals["that"]
    per = {side: t.cpu_s * 1000 / max(t.syncs, 1) for side, t in totals.items()}
    pg = {side: t.db_cpu_s * 1000 / max(t.syncs, 1) for side, t in totals.items()}
    print(
        f"{name}: server CPU per sync this {per['this']:.1f} ms, that {per['that']:.1f} ms: "
        f"this ÷ that {per['this'] / per['that']:.2f}; PostgreSQL CPU per sync this "
        f"{pg['this']:.1f} ms, that {pg['that']:.1f} ms: this ÷ that "
        f"{pg['this'] / max(pg['that'], 1e-9):.2f}; push tx/s this ÷ that "
        f"{(this.syncs / this.elapsed) / (that.syncs / that.elapsed):.2f}; sync p50 this "
        f"{median(this.sync_ms):.0f} ms, that {median(that.sync_ms):.0f} ms; lost "
        f"{this.lost + that.lost}, duplicated {this.duplicated + that.duplicated}"
    )
    return this


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--devices", type=int, default=32, help="concurrent devices")
    parser.add_argument("--syncs", type=int, default=640, help="device syncs in the night")
    parser.add_argument("--ops", type=int, default=50)
    parser.add_argument("--pull", type=int, default=200)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--window", type=float, default=0.0, help="spread starts over seconds")
    parser.add_argument("--offset", type=int, default=5_000_000, help="first resident number")
    parser.add_argument("--fresh", type=int, default=20, help="lone pushes before the night")
    parser.add_argument(
        "--lock-sample-ms", type=float, default=50.0, help="pg_stat_activity sampling interval"
    )
    parser.add_argument("--profile", help="a directory: py-spy samples each server (raw stacks)")
    parser.add_argument(
        "--timeline",
        help="a directory: each night's syncs as CSV (start s, sync ms, push ms), to see "
        "whether slow syncs cluster (checkpoints, autovacuum) or spread",
    )
    parser.add_argument("--pool-size", type=int, help="each server process's --pool-size")
    parser.add_argument("--pool-overflow", type=int, help="each server process's --pool-overflow")
    parser.add_argument(
        "--compare", help="a checkout whose servers run nights too (this, that, that, this)"
    )
    parser.add_argument("--rounds", type=int, default=1, help="with --compare: ABBA rounds")
    parser.add_argument("--backend", choices=["pg", "sqlite", "both"], default="both")
    parser.add_argument("--pg-db", help="reuse a loaded PostgreSQL database (URL)")
    parser.add_argument(
        "--statements",
        type=int,
        default=0,
        help="PostgreSQL: print this many top statements of each night (pg_stat_statements)",
    )
    parser.add_argument("--sqlite-db", help="reuse a loaded SQLite platform file")
    args = parser.parse_args()
    results: dict[str, Result] = {}
    with tempfile.TemporaryDirectory(prefix="gc-bench-city-") as tmp:
        if args.backend in ("pg", "both"):
            if args.pg_db:
                results["postgresql"] = run_backend(
                    args.pg_db, reused_platform(args.pg_db), args, "postgresql"
                )
            else:
                options = bench_push_writes.PG_STATEMENTS if args.statements else ""
                cluster = bench_console.pg_database(durable=True, options=options)
                try:
                    url = f"{cluster.url}/bench_console"
                    grids = build_platform(url, args.size, args.seed)
                    if args.statements:
                        with create_engine(url).connect() as conn:
                            conn.execute(text("CREATE EXTENSION pg_stat_statements"))
                            conn.commit()
                    results["postgresql"] = run_backend(url, grids, args, "postgresql")
                finally:
                    cluster.stop()
        if args.backend in ("sqlite", "both"):
            if args.sqlite_db:
                url = f"sqlite:///{args.sqlite_db}"
                results["sqlite"] = run_backend(url, reused_platform(url), args, "sqlite")
            else:
                url = f"sqlite:///{tmp}/platform.db"
                grids = build_platform(url, args.size, args.seed)
                results["sqlite"] = run_backend(url, grids, args, "sqlite")
    if len(results) == 2:
        pg, lite = results["postgresql"], results["sqlite"]
        fresh = (
            f"; lone push p50 {median(pg.fresh_ms) / median(lite.fresh_ms):.2f}"
            if pg.fresh_ms and lite.fresh_ms
            else ""
        )
        print(
            f"PostgreSQL ÷ SQLite: push tx/s {pg.syncs / pg.elapsed / (lite.syncs / lite.elapsed):.2f}, "
            f"sync p50 {median(pg.sync_ms) / median(lite.sync_ms):.2f}{fresh}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
