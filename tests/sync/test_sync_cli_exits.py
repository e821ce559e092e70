"""``gridcollect sync`` exit codes a scheduler branches on, and what its log keeps, with the
real platform (or a real HTTP/HTTPS server) on loopback: refused edits waiting for a person
are exit 3, a platform answering 5xx after every retry is unavailable (5), a certificate the
device does not trust is a configuration problem (2, not retried), and the client's warnings
(a retry) land in ``logs/sync.log`` without personal data."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import uvicorn

from app.core.store import Store
from sync.server import admin
from sync.server.app import create_app
from tests.e2e.test_cli import gridcollect
from tests.factories import id_number, resident
from tests.sync import devicekit
from tests.sync.conftest import seed
from tests.sync.devicekit import GRID_A, GRID_B
from tests.sync.test_sync_cli import password_file, run, sync_args
from tests.sync.test_transport import self_signed

db_url = devicekit.db_url  # fixture: SQLite only, the subject is the client


# -- a gate in front of the platform: answers some requests itself ---------------------------


class Gate(ThreadingHTTPServer):
    """Answers the first ``fails`` requests whose path starts with ``prefix`` with ``status``
    itself (as a reverse proxy whose backend is down does), and forwards the others to
    ``upstream`` (None: every request is answered ``status``)."""

    daemon_threads = True

    def __init__(self, upstream: str | None, prefix: str, fails: int, status: int) -> None:
        super().__init__(("127.0.0.1", 0), _Gated)
        self.upstream = urlsplit(upstream) if upstream else None
        self.prefix, self.fails, self.status = prefix, fails, status
        self.answered: list[str] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def fail_now(self, path: str) -> bool:
        with self.lock:
            if self.upstream is None or (path.startswith(self.prefix) and self.fails > 0):
                self.fails -= 1
                self.answered.append(path)
                return True
            return False


class _Gated(BaseHTTPRequestHandler):
    server: Gate
    protocol_version = "HTTP/1.1"

    def log_message(self, *_args: Any) -> None:
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if self.server.fail_now(self.path):
            self._answer(self.server.status, b"<html>Service Unavailable</html>", "text/html")
            return
        upstream = self.server.upstream
        assert upstream is not None
        up = http.client.HTTPConnection(upstream.hostname or "127.0.0.1", upstream.port)
        headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
        up.request(self.command, self.path, body=body, headers=headers)
        answer = up.getresponse()
        data = answer.read()
        up.close()
        self.send_response(answer.status)
        for k, v in answer.getheaders():
            if k.lower() not in ("content-length", "transfer-encoding", "connection", "date"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _answer(self, status: int, data: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _handle


@pytest.fixture
def gate() -> Iterator[Callable[..., Gate]]:
    servers: list[Gate] = []

    def make(upstream: str | None, prefix: str = "/", fails: int = 0, status: int = 503) -> Gate:
        server = Gate(upstream, prefix, fails, status)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.shutdown()
        server.server_close()


# -- 1. refused edits wait for a person: exit 3 -------------------------------------------------


def _save(data: Path, form: str, values: dict[str, Any], record_id: str | None = None) -> str:
    store = Store.open(data)
    try:
        return store.save(form, values, record_id=record_id).id
    finally:
        store.close()


def test_edits_the_platform_refused_are_exit_3_until_a_person_corrects_them(
    platform: Any, tmp_path: Path, capsys: Any
) -> None:
    data = tmp_path / "dev"
    pw = password_file(tmp_path)
    _save(data, "resident", resident(seq=211))
    bad = _save(data, "house", {"address_text": {"not": "text"}, "grid": GRID_A})  # 422
    code, out, err = run(sync_args(platform.url, pw, "--json"), data, capsys)
    summary = json.loads(out)
    assert code == 3, err
    assert summary["exit_code"] == 3 and summary["rejected"] == 1 and summary["applied"] == 1
    assert summary["open_refused"] == 1 and summary["open_refused_out_of_scope"] == 0
    assert summary["open_conflicts"] == 0
    assert len(err.strip().splitlines()) == 1 and "拒绝" in err and "冲突" not in err
    # Nothing new to send: still waiting for a person, so a scheduler still sees 3.
    code, out, err = run(["--lang", "en", *sync_args(platform.url, pw)], data, capsys)
    assert code == 3 and err.isascii() and "refused" in err and "1 record" in err
    assert "pushed 0" in out and "refused 1" in out
    # The person corrects the record: its values reach the platform, nothing waits any more.
    _save(data, "house", {"address_text": "幸福路1号", "grid": GRID_A}, record_id=bad)
    code, out, err = run(sync_args(platform.url, pw, "--json"), data, capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["applied"] == 1 and summary["open_refused"] == 0 and err == ""
    assert run(sync_args(platform.url, pw), data, capsys)[0] == 0


def test_edits_refused_while_the_grid_was_away_are_exit_3_until_it_comes_back(
    platform: Any, tmp_path: Path, capsys: Any
) -> None:
    """A worker's new record of a grid taken away is refused ``out_of_scope``: it waits (for
    the grid, not for this device's user), but it is not on the platform: exit 3, and the
    line says it goes again when the grid is given back. It does, and the run exits 0."""
    admin.set_user_grids(platform.engine, "wang", [GRID_A, GRID_B])
    data = tmp_path / "dev"
    pw = password_file(tmp_path)
    assert run(sync_args(platform.url, pw), data, capsys)[0] == 0
    _save(data, "resident", resident(seq=213, grid=GRID_B))
    admin.set_user_grids(platform.engine, "wang", [GRID_A])  # grid B taken away
    code, out, err = run(sync_args(platform.url, pw, "--json"), data, capsys)
    summary = json.loads(out)
    assert code == 3, err
    assert (summary["open_refused"], summary["open_refused_out_of_scope"]) == (1, 1)
    assert len(err.strip().splitlines()) == 1 and "网格" in err
    code, _out, err = run(["--lang", "en", *sync_args(platform.url, pw)], data, capsys)
    assert code == 3 and "given back" in err
    admin.set_user_grids(platform.engine, "wang", [GRID_A, GRID_B])  # given back
    code, out, err = run(sync_args(platform.url, pw, "--json"), data, capsys)
    summary = json.loads(out)
    assert code == 0, err
    assert summary["requeued"] == 1 and summary["applied"] == 1 and summary["open_refused"] == 0


def test_a_refused_record_deleted_on_the_device_waits_for_nobody(
    platform: Any, tmp_path: Path, capsys: Any
) -> None:
    data = tmp_path / "dev"
    pw = password_file(tmp_path)
    bad = _save(data, "house", {"address_text": {"not": "text"}, "grid": GRID_A})
    assert run(sync_args(platform.url, pw), data, capsys)[0] == 3
    store = Store.open(data)
    try:
        store.delete(bad)
    finally:
        store.close()
    code, out, err = run(sync_args(platform.url, pw, "--json"), data, capsys)
    assert code == 0, err
    assert json.loads(out)["open_refused"] == 0


# -- 2. 5xx after every retry: the platform is unavailable (5) ---------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_after_every_retry_is_exit_5(
    status: int, gate: Callable[..., Gate], tmp_path: Path, capsys: Any
) -> None:
    down = gate(None, status=status)  # a reverse proxy whose platform is down
    argv = ["--lang", "en", *sync_args(down.url, password_file(tmp_path), "--retries", "2")]
    code, out, err = run([*argv, "--json"], tmp_path / "dev", capsys)
    assert code == 5, err
    assert len(down.answered) == 2  # both attempts
    assert len(err.strip().splitlines()) == 1 and str(status) in err and "2 attempts" in err
    body = json.loads(out)
    assert body["exit_code"] == 5 and str(status) in body["message_zh"]


def test_a_4xx_refusal_stays_exit_7(gate: Callable[..., Gate], tmp_path: Path, capsys: Any) -> None:
    refusing = gate(None, status=403)
    code, _out, err = run(sync_args(refusing.url, password_file(tmp_path)), tmp_path / "d", capsys)
    assert code == 7 and len(refusing.answered) == 1, err


# -- 3. a certificate the device does not trust: exit 2, not retried ----------------------------


@pytest.fixture
def tls_platform(tmp_path: Path, formset: Any) -> Iterator[Callable[..., tuple[str, Path]]]:
    """``make(names, days=1)``: the platform over HTTPS on loopback, its self-signed
    certificate valid for ``names`` only, until ``days`` from now: (https URL, its file)."""
    running: list[tuple[uvicorn.Server, threading.Thread, Any]] = []

    def make(names: list[str], days: float = 1) -> tuple[str, Path]:
        folder = tmp_path / f"tls{len(running)}"
        folder.mkdir()
        cert, key = self_signed(folder, names=names, days=days)
        app = create_app(f"sqlite:///{folder / 'platform.db'}", forms=formset, secret="test")
        seed(app.state.engine)
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            log_level="critical",
            lifespan="off",
            access_log=False,
            ssl_certfile=str(cert),
            ssl_keyfile=str(key),
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        running.append((server, thread, app))
        while not server.started:
            assert thread.is_alive(), "uvicorn did not start"
            thread.join(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        return f"https://127.0.0.1:{port}", cert

    yield make
    for server, thread, app in running:
        server.should_exit = True
        thread.join(timeout=30)
        app.state.engine.dispose()


def test_an_untrusted_certificate_is_exit_2_at_once_and_says_cafile(
    tls_platform: Any, tmp_path: Path, capsys: Any
) -> None:
    url, cert = tls_platform(["localhost", "127.0.0.1"])
    data = tmp_path / "dev"
    pw = password_file(tmp_path)
    code, out, err = run(sync_args(url, pw, "--retries", "5", "--json"), data, capsys)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "--cafile" in err and "证书" in err
    body = json.loads(out)
    assert body["exit_code"] == 2 and body["error"] == "certificate"
    assert "--cafile" in body["message_en"] and "certificate" in body["message_en"]
    log = (data / "logs" / "sync.log").read_text(encoding="utf-8")
    assert "certificate" in log and "attempt" not in log  # one attempt, no retry
    code, _out, err = run(sync_args(url, pw, "--cafile", str(cert)), data, capsys)
    assert code == 0, err  # the office's CA given: trusted


def test_a_certificate_for_another_name_is_exit_2_and_says_the_name(
    tls_platform: Any, tmp_path: Path, capsys: Any
) -> None:
    url, cert = tls_platform(["grid.example.cn"])  # the office's name, reached by address
    argv = sync_args(url, password_file(tmp_path), "--cafile", str(cert), "--json")
    code, out, err = run(["--lang", "en", *argv], tmp_path / "dev", capsys)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "127.0.0.1" in err and "name" in err
    assert "--cafile" not in err  # trusting the CA would not help
    assert json.loads(out)["error"] == "certificate_name"


def test_an_expired_certificate_is_exit_2_and_says_to_check_the_clock(
    tls_platform: Any, tmp_path: Path, capsys: Any
) -> None:
    url, cert = tls_platform(["127.0.0.1"], days=-1)
    argv = sync_args(url, password_file(tmp_path), "--cafile", str(cert), "--json")
    code, out, err = run(["--lang", "en", *argv], tmp_path / "dev", capsys)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "expired" in err and "time" in err
    assert json.loads(out)["error"] == "certificate_expired"


# -- 4. the client's warnings reach sync.log, without personal data -----------------------------


def test_a_retry_after_a_503_is_in_sync_log_without_personal_data(
    platform: Any, gate: Callable[..., Gate], tmp_path: Path
) -> None:
    """The console script in its own process: the first push is answered 503 by the proxy,
    the client retries (a warning of ``gridcollect.sync.client``) and the run ends done."""
    busy = gate(platform.url, prefix="/v1/push", fails=1, status=503)
    data = tmp_path / "dev"
    _save(data, "resident", resident(seq=215, name="李秘密", phone="13912345678"))
    pw = password_file(tmp_path)
    ran = gridcollect(data, "sync", "--server", busy.url, "--user", "wang", "--password-file", pw)
    assert ran.returncode == 0, ran.stderr
    assert busy.answered == ["/v1/push"]
    log = (data / "logs" / "sync.log").read_text(encoding="utf-8")
    retried = [line for line in log.splitlines() if "HTTP 503" in line]
    assert len(retried) == 1 and "WARNING gridcollect.sync.client" in retried[0], log
    for secret in (id_number(seq=215), "李秘密", "13912345678"):
        assert secret not in log
