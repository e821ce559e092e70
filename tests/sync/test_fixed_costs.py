"""The fixed costs of a nightly sync (issue 19): the credential exchange and every request's
authentication are one statement each for the caller, and a pooled PostgreSQL connection whose
backend has gone is replaced without a round trip per checkout and without a failed sync."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, event, insert, text

from app.core.ids import uuid7
from sync.server import admission, caller, db, hop
from tests.factories import resident
from tests.sync.conftest import COMMUNITY, GRID_A, GRID_B, PASSWORD, Client, Platform


def _login(platform: Platform, user: str, device: str) -> dict[str, Any]:
    body = {"username": user, "password": PASSWORD, "device_id": device}
    resp = requests.post(f"{platform.url}/v1/login", json=body, timeout=30)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def _exchange(
    platform: Platform, refresh: str, device: str, installation: str | None = None
) -> requests.Response:
    body = {"refresh_token": refresh, "device_id": device, "installation": installation}
    return requests.post(f"{platform.url}/v1/token", json=body, timeout=30)


def _outer_from(words: list[str]) -> str | None:
    """The table after the first FROM outside parentheses (not a sub-query's)."""
    depth = 0
    for i, word in enumerate(words):
        if word == "FROM" and depth == 0 and i + 1 < len(words):
            return words[i + 1]
        depth += word.count("(") - word.count(")")
    return None


def _headers(token: str, device: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "X-Device-Id": device}


@contextmanager
def _statements(platform: Platform) -> Iterator[Counter[str]]:
    """Queries the server runs meanwhile, by the table their outer FROM reads first (or their
    verb)."""
    seen: Counter[str] = Counter()

    def count(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        words = statement.split()
        if words[0] == "BEGIN":  # SQLite's own transaction start (db.py), not a query
            return
        seen[_outer_from(words) or words[0]] += 1

    event.listen(platform.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(platform.engine, "before_cursor_execute", count)


def test_a_request_is_authenticated_with_one_statement(platform: Platform) -> None:
    first = _login(platform, "wang", "laptop-1")
    headers = _headers(first["token"], "laptop-1")
    with _statements(platform) as seen:
        resp = requests.get(f"{platform.url}/v1/records/{uuid7()}", headers=headers, timeout=30)
    assert resp.status_code == 404, resp.text
    assert seen["tokens"] == 1 and seen["user_grids"] == 0 and seen["grids"] == 0, seen


def test_the_credential_exchange_reads_the_caller_with_one_statement(
    platform: Platform,
) -> None:
    first = _login(platform, "wang", "laptop-1")
    with _statements(platform) as seen:
        resp = _exchange(platform, first["refresh_token"], "laptop-1")
    assert resp.status_code == 200, resp.text
    assert resp.json()["user"] == {
        "username": "wang",
        "role": "worker",
        "community": COMMUNITY,  # from the grids' rows: wang's user row has no community
        "grids": [GRID_A],
    }
    # the caller, the new access token: nothing else (no installation sent: no device check)
    assert sum(seen.values()) == 2 and seen["tokens"] == 1, seen


def test_the_exchange_checks_the_installation_without_a_statement_of_its_own(
    platform: Platform,
) -> None:
    body = {"username": "wang", "password": PASSWORD, "device_id": "laptop-1"}
    first = requests.post(
        f"{platform.url}/v1/login",
        json={**body, "installation": "nonce-aaaaaaaaaaaaaaaa"},
        timeout=30,
    ).json()
    assert first["device_status"] == "new"
    with _statements(platform) as seen:
        same = _exchange(platform, first["refresh_token"], "laptop-1", "nonce-aaaaaaaaaaaaaaaa")
    assert same.status_code == 200 and same.json()["device_status"] == "known"
    assert same.json()["device_id"] == "laptop-1"
    assert sum(seen.values()) == 2 and seen["devices"] == 0, seen
    copy = _exchange(
        platform, first["refresh_token"], "laptop-1", "nonce-bbbbbbbbbbbbbbbb"
    )  # a copied dir
    assert copy.status_code == 200 and copy.json()["device_status"] == "copied"
    assert copy.json()["device_id"] != "laptop-1"
    assert copy.json()["refresh_token"] != first["refresh_token"]


def test_the_joined_caller_gives_every_role_its_scope(platform: Platform) -> None:
    """One statement, several shapes: a worker's grids, a supervisor's community's grids,
    an admin's everything; a change of scope counts at the next request."""
    answers = {
        user: _exchange(platform, _login(platform, user, f"d-{user}")["refresh_token"], f"d-{user}")
        for user in ("wang", "chen", "root")
    }
    assert {u: a.status_code for u, a in answers.items()} == {u: 200 for u in answers}
    assert answers["wang"].json()["user"]["grids"] == [GRID_A]
    assert answers["chen"].json()["user"]["grids"] == [GRID_A, GRID_B]
    assert answers["chen"].json()["user"]["community"] == COMMUNITY
    assert len(answers["root"].json()["user"]["grids"]) == 3
    wang = Client(platform.url, "d-wang")
    wang.token = answers["wang"].json()["token"]
    refused = wang.push_raw([wang.op(uuid7(), "create", resident(grid=GRID_B))])
    assert refused.json()["error"]["code"] == "out_of_scope"  # grid B is not wang's
    with platform.engine.begin() as conn:
        conn.execute(insert(db.user_grids).values(username="wang", grid=GRID_B))
    (taken,) = wang.push([wang.op(uuid7(), "create", resident(grid=GRID_B, seq=7))])
    assert taken["status"] == "applied", taken


def test_the_caller_look_up_joins_four_relations(platform: Platform) -> None:
    """The caller's statement is planned five times per PostgreSQL connection (prepared since;
    every request planned it before, test_prepared.py): the grids' communities and the device's installation are key look-ups in sub-queries, so
    the join search covers tokens, users and the two scope relations only (six relations:
    0.33 ms of backend CPU a call, four: 0.28, bench_plan_costs.py). The rows are those of the
    joins (the scope test and the installation check above)."""
    sql = str(caller._FIND.compile(dialect=platform.engine.dialect))
    top = sql.split("\nFROM tokens", 1)[1]  # the outer FROM: after the sub-queries
    assert top.count(" JOIN ") == 3, sql


def _kill_backends(url: str) -> int:
    """End every other PostgreSQL backend of the database, waiting until they are gone."""
    killer = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with killer.connect() as conn:
            return len(
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                ).all()
            )
    finally:
        killer.dispose()


def test_a_killed_postgresql_connection_costs_no_failed_sync(platform: Platform) -> None:
    """Without ``pool_pre_ping`` (a round trip per checkout), a pooled connection whose backend
    was ended (pg_terminate_backend, a restart) is still replaced before a request uses it."""
    if platform.engine.dialect.name != "postgresql":
        return  # SQLite has no server side to lose
    first = _login(platform, "wang", "laptop-1")
    wang = Client(platform.url, "laptop-1")
    wang.token = _exchange(platform, first["refresh_token"], "laptop-1").json()["token"]
    wang.push([wang.op(uuid7(), "create", resident())])
    wang.pull()
    assert platform.engine.pool.checkedin() >= 1
    assert _kill_backends(platform.engine.url.render_as_string(hide_password=False)) >= 1
    # the whole nightly sync again, on connections that all died while idle in the pool
    token = _exchange(platform, first["refresh_token"], "laptop-1")
    assert token.status_code == 200, token.text
    wang.token = token.json()["token"]
    (done,) = wang.push([wang.op(uuid7(), "create", resident(seq=9))])
    assert done["status"] == "applied"
    assert len(wang.pull()["records"]) == 2


def test_admission_takes_a_free_slot_without_a_timed_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """A free slot is taken at once (no ``wait_for`` task per request); a full one still
    waits its time and answers 503 with Retry-After."""
    timed: list[float] = []
    real = asyncio.wait_for

    async def counting(awaitable: Any, timeout: float) -> Any:
        timed.append(timeout)
        return await real(awaitable, timeout)

    monkeypatch.setattr(admission.asyncio, "wait_for", counting)
    release = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["path"] == "/hold":
            await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    gate = admission.Admission(app, limit=1, wait=0.05)

    async def call(path: str) -> int:
        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await gate({"type": "http", "path": path}, _no_body, send)
        return int(sent[0]["status"])

    async def night() -> tuple[list[int], int]:
        free = [await call("/v1/pull") for _ in range(3)]
        holder = asyncio.ensure_future(call("/hold"))
        await asyncio.sleep(0)
        full = await call("/v1/pull")
        release.set()
        await holder
        return free, full

    free, full = asyncio.run(night())
    assert free == [200, 200, 200] and full == 503
    assert timed == [0.05]  # only the request that found the queue full waited with a timer


async def _no_body() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


def _served_log(db: str, *extra: str) -> str:
    """What a real ``server`` process logs while answering one request."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "sync.server.cli", "server", "--db", db, "--port", str(port)]
    root = Path(__file__).parents[2]
    out = subprocess.PIPE
    proc = subprocess.Popen([*cmd, *extra], stdout=out, stderr=subprocess.STDOUT, cwd=root)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                assert requests.get(f"http://127.0.0.1:{port}/v1/info", timeout=2).ok
                break
            except requests.ConnectionError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
    finally:
        proc.terminate()
        logged, _ = proc.communicate(timeout=30)
    return logged.decode(errors="replace")


def test_the_access_log_can_be_turned_off(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'p.db'}"
    assert '"GET /v1/info HTTP/1.1" 200' in _served_log(db)
    quiet = _served_log(db, "--no-access-log")
    assert "/v1/info" not in quiet and "Uvicorn running" in quiet


def test_push_and_pull_take_one_worker_thread_each(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Authentication runs in the route's own worker thread (one hop per request, not one
    for the caller and another for the work); a bad token is still refused before any work."""
    wang = platform.client("wang")
    hops: list[str] = []
    real = hop.run

    async def counting(func: Any, *args: Any) -> Any:
        hops.append(getattr(func, "__name__", "?"))
        return await real(func, *args)

    monkeypatch.setattr(hop, "run", counting)
    (done,) = wang.push([wang.op(uuid7(), "create", resident())])
    assert done["status"] == "applied" and len(hops) == 1, hops
    assert len(wang.pull()["records"]) == 1 and len(hops) == 2, hops
    stranger = Client(platform.url, wang.device_id)
    stranger.token = "gc1_not-a-token"
    before = platform.dump()
    refused = stranger.push_raw([stranger.op(uuid7(), "create", resident(seq=5))])
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "auth"
    assert platform.dump() == before
    malformed = stranger.push_raw([{"op_id": "x"}])  # the schema is checked first (PROTOCOL §2)
    assert malformed.status_code == 422 and malformed.json()["error"]["code"] == "malformed"
    headerless = requests.post(f"{platform.url}/v1/push", json={"ops": "nonsense"}, timeout=30)
    assert headerless.status_code == 401 and headerless.json()["error"]["code"] == "auth"
    stranger.device_id = "another-device"
    stranger.token = wang.token
    assert stranger.push_raw([]).json()["error"]["code"] == "device"


def test_the_server_runs_on_uvicorns_c_parser_and_libuv_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``server`` leaves the HTTP implementation and the event loop to uvicorn, which takes
    httptools and uvloop when installed (project dependencies): h11's parsing and writing
    and asyncio's loop cost the server ~0.2 ms of CPU per request (bench_fixed_costs)."""
    import uvicorn
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    from sync import heap
    from sync.server import cli

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: seen.update(app=app, **kwargs))
    monkeypatch.setattr(heap, "settle", lambda: None)  # no freeze of this test process's heap
    assert cli.main(["server", "--db", f"sqlite:///{tmp_path / 'p.db'}"]) == 0
    config = uvicorn.Config(seen.pop("app"), **seen)
    config.load()
    assert config.http_protocol_class is HttpToolsProtocol
    factory = config.get_loop_factory()
    assert factory is not None
    loop = factory()
    try:
        assert type(loop).__module__.startswith("uvloop")
    finally:
        loop.close()


@contextmanager
def _checkouts(platform: Platform) -> Iterator[list[int]]:
    """Connections the server takes from its pool meanwhile."""
    taken: list[int] = []

    def note(*_args: Any) -> None:
        taken.append(1)

    event.listen(platform.engine.pool, "checkout", note)
    try:
        yield taken
    finally:
        event.remove(platform.engine.pool, "checkout", note)


def test_a_push_and_a_pull_authenticate_in_their_own_transaction(platform: Platform) -> None:
    """The caller is looked up with the first statement of the push's (the page's)
    transaction: one connection per request, not one more for the look-up; the look-up is
    still one statement, and a bad token still changes nothing."""
    wang = platform.client("wang")
    with _checkouts(platform) as taken, _statements(platform) as seen:
        done = wang.push([wang.op(uuid7(), "create", resident(seq=n)) for n in (1, 3)])
    assert [r["status"] for r in done] == ["applied", "applied"]
    assert len(taken) == 1 and seen["tokens"] == 1, (taken, seen)
    with _checkouts(platform) as taken, _statements(platform) as seen:
        page = wang.pull(limit=1)
    assert page["more"] and len(page["records"]) == 1
    assert len(taken) == 1 and seen["tokens"] == 1, (taken, seen)
    stranger = Client(platform.url, wang.device_id)
    stranger.token = "gc1_not-a-token"
    before = platform.dump()
    refused = stranger.push_raw([stranger.op(uuid7(), "create", resident(seq=5))])
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "auth"
    pulled = requests.get(f"{platform.url}/v1/pull", headers=stranger.headers, timeout=30)
    assert pulled.status_code == 401 and pulled.json()["error"]["code"] == "auth"
    assert platform.dump() == before
