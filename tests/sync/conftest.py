"""Fixtures for the sync tests: a throwaway PostgreSQL cluster, a database per test (SQLite file
or PostgreSQL database), and the real platform server on uvicorn over loopback HTTP.

PostgreSQL: ``GRIDCOLLECT_TEST_PG`` (a server URL, e.g. ``postgresql://postgres@127.0.0.1:5432``)
is used when set. Otherwise a cluster is made with Debian's binaries
(``/usr/lib/postgresql/*/bin``) in a temporary directory, started on a free port and removed at
the end; as root it runs as the ``postgres`` user (PostgreSQL refuses to run as root). Without
binaries the PostgreSQL half of every test is skipped with the reason.
"""

from __future__ import annotations

import datetime as dt
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import uvicorn
from sqlalchemy import Engine, create_engine, event, text

from app.core import ids
from app.core.forms import FormSet
from sync import protocol as p
from sync.server import admin, auth
from sync.server.app import create_app
from tests.factories import resident

BACKENDS = ["sqlite", "postgresql"]


@contextmanager
def statements_run(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements run on ``engine`` inside the block (tests that count queries)."""
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def resident_creates(
    count: int, device: str, first_birth: dt.date, start: int = 0, **fields: Any
) -> list[p.Op]:
    """Creates of ``count`` new draft residents of ``GRID_A`` from ``device``, op ids and birth
    dates numbered from ``start`` (the service-level push tests' batches)."""
    stamp = ids.now_iso()
    return [
        p.Op(
            op_id=f"{device}:{start + i}",
            record_id=ids.uuid7(),
            form="resident",
            kind="create",
            fields={
                **resident(birth=first_birth + dt.timedelta(days=start + i), grid=GRID_A, **fields),
                "_status": "draft",
            },
            edited_at=f"{stamp}#0000",
            author="w",
        )
        for i in range(count)
    ]


_counter = itertools.count(1)
auth.set_kdf_cost(2**8)  # still scrypt, cheaper: the tests log in hundreds of times


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@dataclass
class PgCluster:
    url: str  # server URL without a database name
    stop: Any = None


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _reap_stale_clusters(bindir: Path) -> None:
    """Stop clusters this fixture started in test sessions that were killed before teardown
    (each records its pytest pid in ``owner``; clusters without that file are left alone)."""
    for owner in Path(tempfile.gettempdir()).glob("gc-pg-*/owner"):
        try:
            pid = int(owner.read_text())
        except (OSError, ValueError):
            continue
        if _alive(pid):
            continue
        data = owner.parent / "data"
        subprocess.run(
            _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        shutil.rmtree(owner.parent, ignore_errors=True)


def _start_cluster(*, durable: bool = False, options: str = "") -> PgCluster:
    """A throwaway cluster; ``durable`` keeps PostgreSQL's default fsync (benchmarks);
    ``options``: more server settings (``-c name=value ...``)."""
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL binaries not found (install Debian's postgresql; ./dev does)")
    _reap_stale_clusters(bindir)
    root = Path(tempfile.mkdtemp(prefix="gc-pg-"))
    (root / "owner").write_text(str(os.getpid()))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        try:
            pg = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and no postgres user to run PostgreSQL as")
        for path in (root, sock):
            os.chown(path, pg.pw_uid, pg.pw_gid)
    port = _free_port()
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE, "check": True}
    subprocess.run(
        _as_postgres(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ]
        ),
        **quiet,
    )
    opts = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c max_connections=200"
    if not durable:
        opts += " -c fsync=off"
    if options:
        opts += " " + options
    log = root / "pg.log"
    subprocess.run(
        _as_postgres(
            [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", opts, "-w", "start"]
        ),
        **quiet,
    )

    def stop() -> None:
        subprocess.run(
            _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        shutil.rmtree(root, ignore_errors=True)

    return PgCluster(f"postgresql+psycopg://postgres@127.0.0.1:{port}", stop)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    given = os.environ.get("GRIDCOLLECT_TEST_PG")
    if given:
        yield PgCluster(given.replace("postgresql://", "postgresql+psycopg://", 1).rstrip("/"))
        return
    try:
        cluster = _start_cluster()
    except subprocess.CalledProcessError as exc:  # binaries exist, so this is a real failure
        detail = (exc.stderr or b"").decode(errors="replace").strip()[-500:]
        pytest.fail(f"PostgreSQL did not start ({' '.join(map(str, exc.cmd[-3:]))}): {detail}")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def pg_database(pg_cluster: PgCluster) -> Iterator[str]:
    """One PostgreSQL database for the session; ``db_url`` empties it before every test."""
    name = f"gc_test_{os.getpid()}"
    maint = create_engine(f"{pg_cluster.url}/postgres", isolation_level="AUTOCOMMIT")
    with maint.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{pg_cluster.url}/{name}"
    finally:
        with maint.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        maint.dispose()


def _empty_pg(url: str) -> None:
    """Truncate every table but the schema revision (much faster than a new database per
    test; the schema stays at head)."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            tables = conn.execute(
                text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                    "AND tablename <> 'alembic_version'"
                )
            )
            names = ", ".join(f'"{t[0]}"' for t in tables)
            if names:
                conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a new SQLite file, or the session's PostgreSQL database emptied."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'platform.db'}"
    url: str = request.getfixturevalue("pg_database")
    _empty_pg(url)
    return url


# -- the live server ------------------------------------------------------------------------

COMMUNITY, OTHER_COMMUNITY = "330106001", "330106002"
GRID_A, GRID_B, GRID_C = "330106001001-01", "330106001001-02", "330106002001-01"
PASSWORD = "correct horse battery staple"


@dataclass
class Platform:
    """The running server and helpers to talk to it as different users."""

    url: str
    app: Any
    server: uvicorn.Server
    sessions: list[requests.Session] = field(default_factory=list)

    @property
    def engine(self) -> Any:
        return self.app.state.engine

    @property
    def service(self) -> Any:
        return self.app.state.service

    def client(self, username: str, device_id: str | None = None) -> Client:
        client = Client(self.url, device_id or f"dev-{username}-{next(_counter)}")
        client.login(username, PASSWORD)
        self.sessions.append(client.http)
        return client

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table, for "nothing changed" assertions."""
        from sync.server.db import metadata

        out = {}
        with self.engine.connect() as conn:
            for table in metadata.sorted_tables:
                rows = conn.execute(table.select()).all()
                out[table.name] = sorted((tuple(r) for r in rows), key=repr)
        return out


class Client:
    """A minimal HTTP client for tests (the real client is sync/client.py)."""

    def __init__(self, url: str, device_id: str) -> None:
        self.url, self.device_id = url, device_id
        self.http = requests.Session()
        self.token = ""
        self.user: dict[str, Any] = {}
        self._op = itertools.count(1)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "X-Device-Id": self.device_id}

    def login(self, username: str, password: str) -> requests.Response:
        resp = self.http.post(
            f"{self.url}/v1/login",
            json={"username": username, "password": password, "device_id": self.device_id},
            timeout=30,
        )
        if resp.status_code == 200:
            self.token = resp.json()["token"]
            self.user = resp.json()["user"]
        return resp

    def op(
        self,
        record_id: str,
        kind: str = "create",
        fields: dict[str, Any] | None = None,
        base_version: int | None = None,
        form: str = "resident",
        **extra: Any,
    ) -> dict[str, Any]:
        """An op with a fresh op id and a clock that grows with every op made."""
        seq = next(self._op)
        return {
            "op_id": extra.pop("op_id", f"{self.device_id}:{seq}"),
            "record_id": record_id,
            "form": form,
            "kind": kind,
            "base_version": base_version,
            "fields": fields or {},
            "edited_at": extra.pop("edited_at", f"{_now()}#{seq:04d}"),
            "author": "tester",
            **extra,
        }

    def push_raw(self, ops: list[dict[str, Any]], **body: Any) -> requests.Response:
        payload = {"protocol": 1, "device_id": self.device_id, "ops": ops, **body}
        return self.http.post(f"{self.url}/v1/push", json=payload, headers=self.headers, timeout=60)

    def push(self, ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
        resp = self.push_raw(ops)
        assert resp.status_code == 200, resp.text
        return resp.json()["results"]

    def pull(self, since: int = 0, limit: int = 500) -> dict[str, Any]:
        resp = self.http.get(
            f"{self.url}/v1/pull",
            params={"since": since, "limit": limit},
            headers=self.headers,
            timeout=60,
        )
        assert resp.status_code == 200, resp.text
        return resp.json()

    def pull_all(self, since: int = 0, limit: int = 500) -> tuple[list[dict[str, Any]], int]:
        out: list[dict[str, Any]] = []
        while True:
            page = self.pull(since, limit)
            out.extend(page["records"])
            since = page["cursor"]
            if not page["more"]:
                return out, since

    def record(self, record_id: str) -> requests.Response:
        return self.http.get(f"{self.url}/v1/records/{record_id}", headers=self.headers, timeout=30)


def _now() -> str:
    from app.core.ids import now_iso

    return now_iso()


def start_server(app: Any) -> tuple[uvicorn.Server, threading.Thread, str]:
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, thread, f"http://127.0.0.1:{port}"


def seed(engine: Any) -> None:
    """Two communities, three grids, and one user of every role."""
    admin.put_community(engine, COMMUNITY, "幸福社区")
    admin.put_community(engine, OTHER_COMMUNITY, "和平社区")
    admin.put_grid(engine, GRID_A, "一网格", COMMUNITY)
    admin.put_grid(engine, GRID_B, "二网格", COMMUNITY)
    admin.put_grid(engine, GRID_C, "和平一网格", OTHER_COMMUNITY)
    admin.put_user(engine, "wang", PASSWORD, "worker", grids=[GRID_A])
    admin.put_user(engine, "li", PASSWORD, "worker", grids=[GRID_B])
    admin.put_user(engine, "zhao", PASSWORD, "worker", grids=[GRID_C])
    admin.put_user(engine, "chen", PASSWORD, "supervisor", community=COMMUNITY)
    admin.put_user(engine, "root", PASSWORD, "admin")


@pytest.fixture
def platform(db_url: str, formset: FormSet) -> Iterator[Platform]:
    app = create_app(db_url, forms=formset, secret="test-secret")
    seed(app.state.engine)
    server, thread, url = start_server(app)
    plat = Platform(url, app, server)
    try:
        yield plat
    finally:
        for session in plat.sessions:
            session.close()
        server.should_exit = True
        thread.join(timeout=30)
        app.state.engine.dispose()
