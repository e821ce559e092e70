"""Devices for client-side sync tests: a Store in tmp_path + the real client against the real
server (the ``platform`` fixture of tests/sync/conftest.py), and fault-injecting transports.

Test modules import what they need: ``from tests.sync.devicekit import Device, db_url``;
importing ``db_url`` overrides the conftest's SQLite+PostgreSQL parametrisation with SQLite
only, for tests whose subject is the client rather than the database.
"""

from __future__ import annotations

import itertools
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from requests.adapters import HTTPAdapter

from app.core.forms import FormSet
from app.core.records import Record
from app.core.store import Store
from sync.client import Client, Retry
from sync.replica import identity as replica_identity
from sync.session import SyncSession, SyncSummary

PASSWORD = "correct horse battery staple"  # the conftest's seed() password
GRID_A, GRID_B, GRID_C = "330106001001-01", "330106001001-02", "330106002001-01"
_names = itertools.count(1)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only (overrides the conftest's two-backend parametrisation where imported)."""
    return f"sqlite:///{tmp_path / 'platform.db'}"


def no_wait() -> Retry:
    """Retries without sleeping, so fault tests run fast."""
    return Retry(attempts=4, sleep=lambda _s: None)


@dataclass
class Device:
    """One laptop: its own store file and a logged-in client."""

    store: Store
    client: Client
    user: str
    closed: bool = False
    summaries: list[SyncSummary] = field(default_factory=list)

    def sync(self, **kwargs: Any) -> SyncSummary:
        summary = SyncSession(self.store, self.client, **kwargs).run()
        self.summaries.append(summary)
        return summary

    def save(
        self, form: str, data: dict[str, Any], record_id: str | None = None, status: str = "draft"
    ) -> Record:
        return self.store.save(form, data, record_id=record_id, status=status, author=self.user)

    def edit(self, record_id: str, **changes: Any) -> Record:
        record = self.store.get(record_id)
        assert record is not None
        data = {**record.data, **changes}
        return self.store.save(
            record.form, data, record_id=record_id, status=record.status, author=self.user
        )

    def get(self, record_id: str) -> Record:
        record = self.store.get(record_id)
        assert record is not None, record_id
        return record

    def close(self) -> None:
        if not self.closed:
            self.client.close()
            self.store.close()
            self.closed = True


def make_device(
    url: str,
    tmp_path: Path,
    formset: FormSet,
    user: str = "wang",
    *,
    session: requests.Session | None = None,
    retry: Retry | None = None,
    name: str | None = None,
) -> Device:
    path = tmp_path / f"{name or f'device{next(_names)}'}.sqlite"
    store = Store(path, formset)
    client = Client(
        url,
        store.device_id,
        retry=retry or no_wait(),
        session=session,
        installation=replica_identity.installation(store),
    )
    client.login(user, PASSWORD)
    return Device(store, client, user)


@pytest.fixture
def devices(platform: Any, tmp_path: Path, formset: FormSet):  # noqa: ANN201
    """``devices(n, user="wang", **kw)`` -> list of Devices, closed at the end."""
    made: list[Device] = []

    def make(n: int = 1, user: str = "wang", **kwargs: Any) -> list[Device]:
        new = [make_device(platform.url, tmp_path, formset, user, **kwargs) for _ in range(n)]
        made.extend(new)
        return new

    yield make
    for device in made:
        device.close()


# -- fault injection ---------------------------------------------------------------------------


class FaultAdapter(HTTPAdapter):
    """A transport that can misbehave per request.

    ``before(request) -> bool``: raise ConnectionError instead of sending (link down).
    ``after(request) -> bool``: send, let the server answer (and commit), then raise
    ConnectionError as if the answer was lost on the way back.
    ``duplicate(request) -> bool``: send the same request twice; the client sees the second
    answer. Every request sent is recorded in ``sent`` (method, path).
    """

    def __init__(
        self,
        before: Callable[[requests.PreparedRequest], bool] | None = None,
        after: Callable[[requests.PreparedRequest], bool] | None = None,
        duplicate: Callable[[requests.PreparedRequest], bool] | None = None,
    ) -> None:
        super().__init__(max_retries=0)
        self.before = before or (lambda _r: False)
        self.after = after or (lambda _r: False)
        self.duplicate = duplicate or (lambda _r: False)
        self.sent: list[tuple[str, str]] = []
        self.lost: list[tuple[str, str]] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        path = (request.path_url or "").split("?")[0]
        if self.before(request):
            raise requests.ConnectionError("link down (injected)")
        self.sent.append((request.method or "", path))
        response = super().send(request, **kwargs)
        if self.duplicate(request):
            response.close()
            self.sent.append((request.method or "", path))
            response = super().send(request, **kwargs)
        if self.after(request):
            response.close()
            self.lost.append((request.method or "", path))
            raise requests.ConnectionError("answer lost after the server committed (injected)")
        return response


def faulty_session(adapter: FaultAdapter) -> requests.Session:
    session = requests.Session()
    session.mount("http://", adapter)
    return session


def is_push(request: requests.PreparedRequest) -> bool:
    return (request.path_url or "").startswith("/v1/push")


def is_pull(request: requests.PreparedRequest) -> bool:
    return (request.path_url or "").startswith("/v1/pull")


def nth(
    predicate: Callable[[requests.PreparedRequest], bool], *which: int
) -> Callable[[Any], bool]:
    """True for the n-th matching request(s) (1-based)."""
    count = itertools.count(1)

    def check(request: requests.PreparedRequest) -> bool:
        return predicate(request) and next(count) in which

    return check


def server_rows(platform: Any, table: str) -> list[Any]:
    """Every row of a server table (for "nothing applied twice" checks)."""
    from sync.server.db import metadata

    with platform.engine.connect() as conn:
        return list(conn.execute(metadata.tables[table].select()).all())


def server_records(platform: Any, admin: Client) -> dict[str, Any]:
    """id -> pulled record, everything the admin sees (a pull from 0)."""
    out: dict[str, Any] = {}
    since = 0
    while True:
        page = admin.pull(since, 5000)
        out.update({r.id: r for r in page.records})
        since = page.cursor
        if not page.more:
            return out


# -- a throwaway platform per Hypothesis example -----------------------------------------------


@dataclass
class Served:
    """A running server on its own database (for tests that need many fresh platforms).

    ``crashes`` collects the traceback of every request the server answered with a 500: the
    client retries 5xx, so a transient crash would otherwise pass unnoticed."""

    url: str
    app: Any
    server: Any
    thread: Any
    crashes: list[str] = field(default_factory=list)

    @property
    def engine(self) -> Any:
        return self.app.state.engine

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.app.state.engine.dispose()


def seed_platform(url: str, formset: FormSet) -> None:
    """One community, grids A and B, workers wang (A) and li (B) and supervisor chen."""
    from sync.server import admin
    from sync.server.app import create_app

    app = create_app(url, forms=formset, secret="test-secret")
    engine = app.state.engine
    admin.put_community(engine, "330106001", "幸福社区")
    admin.put_grid(engine, GRID_A, "一网格", "330106001")
    admin.put_grid(engine, GRID_B, "二网格", "330106001")
    admin.put_user(engine, "wang", PASSWORD, "worker", grids=[GRID_A])
    admin.put_user(engine, "li", PASSWORD, "worker", grids=[GRID_B])
    admin.put_user(engine, "chen", PASSWORD, "supervisor", community="330106001")
    engine.dispose()


def seeded_template(path: Path, formset: FormSet) -> Path:
    """A seeded SQLite platform database; copy it per example instead of hashing passwords
    again."""
    seed_platform(f"sqlite:///{path}", formset)
    return path


def serve_url(url: str, formset: FormSet) -> Served:
    """The real app on uvicorn in a thread, on a free loopback port, on database ``url``."""
    from sync.server.app import create_app
    from tests.sync.conftest import start_server

    app = create_app(url, forms=formset, secret="test-secret")
    crashes: list[str] = []
    _record_crashes(app, crashes)
    server, thread, base = start_server(app)
    return Served(base, app, server, thread, crashes)


def serve(db_path: Path, formset: FormSet) -> Served:
    """``serve_url`` on a SQLite file."""
    return serve_url(f"sqlite:///{db_path}", formset)


def _record_crashes(app: Any, crashes: list[str]) -> None:
    """Keep the traceback of every unexpected exception, then answer as the app does (500)."""
    answer = app.exception_handlers[Exception]

    async def crashed(request: Any, exc: Exception) -> Any:
        crashes.append("".join(traceback.format_exception(exc)))
        return await answer(request, exc)

    app.exception_handlers[Exception] = crashed
