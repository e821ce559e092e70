"""``gridcollect sync`` (the console script, in a subprocess) through a link that breaks an
answer half way: a real platform over loopback behind a forwarding proxy that cuts bodies."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from app.core.ids import uuid7
from app.core.store import Store
from tests.e2e.test_cli import gridcollect
from tests.factories import resident
from tests.sync import devicekit
from tests.sync.devicekit import GRID_A, PASSWORD

db_url = devicekit.db_url  # fixture: SQLite (the subject is the client)


class Cutter(ThreadingHTTPServer):
    """Forwards every request to ``upstream``; the first ``cuts`` answers whose path starts
    with ``prefix`` lose the second half of their body (headers announce all of it), then
    the connection closes: a link dropped while an answer comes in."""

    daemon_threads = True

    def __init__(self, upstream: str, prefix: str, cuts: int) -> None:
        super().__init__(("127.0.0.1", 0), _Forward)
        self.upstream, self.prefix, self.cuts = urlsplit(upstream), prefix, cuts
        self.cut_paths: list[str] = []
        self.lock = threading.Lock()
        # (path, plain JSON body) -> body sent instead, for every answer; None: as it came
        self.rewrite: Callable[[str, bytes], bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def cut_now(self, path: str) -> bool:
        with self.lock:
            if path.startswith(self.prefix) and len(self.cut_paths) < self.cuts:
                self.cut_paths.append(path)
                return True
            return False


class _Forward(BaseHTTPRequestHandler):
    server: Cutter
    protocol_version = "HTTP/1.1"

    def log_message(self, *_args: Any) -> None:
        pass

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        upstream = self.server.upstream
        up = http.client.HTTPConnection(upstream.hostname or "127.0.0.1", upstream.port)
        rewrite = self.server.rewrite
        dropped = ("host", "accept-encoding") if rewrite else ("host",)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in dropped}
        up.request(self.command, self.path, body=body, headers=headers)
        answer = up.getresponse()
        data = answer.read()
        up.close()
        if rewrite is not None:
            data = rewrite(self.path, data)
        cut = self.server.cut_now(self.path)
        self.send_response(answer.status)
        for k, v in answer.getheaders():
            if k.lower() not in (
                "content-length",
                "transfer-encoding",
                "connection",
                "date",
                "server",
            ):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close" if cut else "keep-alive")
        self.end_headers()
        self.wfile.write(data[: len(data) // 2] if cut else data)
        self.wfile.flush()
        if cut:
            self.close_connection = True

    do_GET = do_POST = do_PUT = _forward


@pytest.fixture
def cutter(platform: Any) -> Iterator[Any]:
    servers: list[Cutter] = []

    def make(prefix: str, cuts: int = 1) -> Cutter:
        server = Cutter(platform.url, prefix, cuts)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.shutdown()
        server.server_close()


def _pw(tmp_path: Path) -> str:
    path = tmp_path / "pw.txt"
    path.write_text(PASSWORD + "\n", encoding="utf-8")
    path.chmod(0o600)
    return str(path)


def test_a_pull_answer_cut_half_way_is_fetched_again(
    platform: Any, cutter: Any, tmp_path: Path
) -> None:
    """The link drops while a pull page comes in: the client tries that page again (as for a
    refused connection) and the run ends done, every record once; not a traceback and exit 1."""
    other = platform.client("wang")
    ids = [uuid7() for _ in range(5)]
    other.push(
        [
            other.op(i, "create", {**resident(grid=GRID_A, seq=300 + n), "_status": "complete"})
            for n, i in enumerate(ids)
        ]
    )
    proxy = cutter("/v1/pull")
    data = tmp_path / "dev"
    args = ["sync", "--server", proxy.url, "--user", "wang", "--password-file", _pw(tmp_path)]
    ran = gridcollect(data, *args, "--json", "--retries", "3")
    assert proxy.cut_paths, "the proxy cut a pull answer"
    assert "Traceback" not in ran.stderr, ran.stderr
    assert ran.returncode == 0, ran.stderr
    summary = json.loads(ran.stdout)
    assert summary["pulled"] == 5 and summary["exit_code"] == 0
    store = Store.open(data)
    try:
        assert sorted(r.id for r in store.iter_records("resident")) == sorted(ids)
    finally:
        store.close()


class _Garbage(BaseHTTPRequestHandler):
    """Answers every request 200 with a body that says it is gzip and is not."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *_args: Any) -> None:
        pass

    def do_GET(self) -> None:
        body = b"<html>proxy login page</html>"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET


def test_an_answer_that_is_not_what_it_says_is_exit_7(tmp_path: Path) -> None:
    """A server (a captive portal, a misconfigured proxy) answering garbage that claims to be
    gzip: exit 7 with one line on stderr and the --json error object, not a traceback."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Garbage)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        args = ["sync", "--server", url, "--user", "wang", "--password-file", _pw(tmp_path)]
        ran = gridcollect(tmp_path / "dev", *args, "--json", "--retries", "2")
    finally:
        server.shutdown()
        server.server_close()
    assert "Traceback" not in ran.stderr, ran.stderr
    assert ran.returncode == 7, ran.stderr
    assert len(ran.stderr.strip().splitlines()) == 1
    assert json.loads(ran.stdout)["exit_code"] == 7


def test_push_answers_lost_until_the_run_gives_up_then_a_rerun_sends_nothing_twice(
    platform: Any, cutter: Any, tmp_path: Path
) -> None:
    """Every push answer is cut (the platform applied the ops each time): the run gives up
    with exit 5 and one line; the next night's run (a good link) is answered duplicate_op and
    counts the three residents once, the platform holds each once at version 1."""
    data = tmp_path / "dev"
    store = Store.open(data)
    saved = [store.save("resident", resident(grid=GRID_A, seq=400 + n)).id for n in range(3)]
    store.close()
    proxy = cutter("/v1/push", cuts=100)
    pw = _pw(tmp_path)
    args = ["sync", "--user", "wang", "--password-file", pw, "--json", "--retries", "2"]
    ran = gridcollect(data, *args, "--server", proxy.url)
    assert len(proxy.cut_paths) == 2, "both attempts were cut"
    assert "Traceback" not in ran.stderr, ran.stderr
    assert ran.returncode == 5 and len(ran.stderr.strip().splitlines()) == 1, ran.stderr
    assert json.loads(ran.stdout)["error"] == "network"
    again = gridcollect(data, *args, "--server", platform.url)
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert (summary["pushed"], summary["applied"], summary["rejected"]) == (3, 3, 0)
    for rid in saved:
        record = platform.client("wang").record(rid).json()
        assert record["id"] == rid and record["version"] == 1


def test_a_copy_whose_first_run_fails_keeps_its_new_credential(
    platform: Any, cutter: Any, tmp_path: Path
) -> None:
    """A synced data dir copied to a second laptop signs in with the original's credential:
    the platform gives the copy a device id and a credential of its own. Its first run then
    fails (the link drops every push answer). The next night's run, without a password file
    (the scheduled line), must still sign in: the copy's id was kept, so must its credential
    be; before, the id was kept and the credential only at the end of a run that got there,
    so the original's was sent for the new id, refused, and forgotten: exit 4."""
    import shutil

    proxy = cutter("/v1/push", cuts=0)  # one server URL: the credential is kept per URL
    signed = ["sync", "--server", proxy.url, "--user", "wang", "--json", "--retries", "2"]
    first = tmp_path / "first"
    ran = gridcollect(first, *signed, "--password-file", _pw(tmp_path))
    assert ran.returncode == 0, ran.stderr
    copy = tmp_path / "copy"
    shutil.copytree(first, copy)
    store = Store.open(copy)
    store.save("resident", resident(grid=GRID_A, seq=500))
    store.close()
    proxy.cuts = 100
    ran = gridcollect(copy, *signed)
    assert ran.returncode == 5 and proxy.cut_paths, ran.stderr
    proxy.cuts = len(proxy.cut_paths)  # a good link from now on
    again = gridcollect(copy, *signed)
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert (summary["pushed"], summary["applied"]) == (1, 1)
    ran = gridcollect(first, *signed)
    assert ran.returncode == 0, ran.stderr  # the original keeps its own


def test_pull_pages_that_never_advance_end_the_run_with_exit_7(
    platform: Any, cutter: Any, tmp_path: Path
) -> None:
    """A server (or a cache in front of it) answering every pull page "more" with the cursor
    it was given: the run must stop with exit 7 and one line, not ask for the same page for
    ever while holding the sync lock (every later night would then exit 6)."""
    proxy = cutter("/v1/pull", cuts=0)

    def stuck(path: str, body: bytes) -> bytes:
        if not path.startswith("/v1/pull"):
            return body
        page = json.loads(body)
        since = int(dict(parse_qsl(urlsplit(path).query)).get("since", "0"))
        return json.dumps({**page, "cursor": since, "more": True}).encode()

    proxy.rewrite = stuck
    args = ["sync", "--server", proxy.url, "--user", "wang", "--password-file", _pw(tmp_path)]
    ran = gridcollect(tmp_path / "dev", *args, "--json", timeout=60)
    assert ran.returncode == 7, ran.stderr
    assert len(ran.stderr.strip().splitlines()) == 1, ran.stderr
    assert json.loads(ran.stdout)["exit_code"] == 7
