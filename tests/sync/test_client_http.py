"""sync.client against the real server: headers, gzip, retries with backoff, typed errors."""

from __future__ import annotations

import gzip
import json
import random
import socket
from typing import Any

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from app.core import ids
from sync.client import (
    AuthError,
    Client,
    NetworkError,
    ProtocolError,
    Retry,
    ServerError,
)
from sync.server import admin
from tests.factories import resident
from tests.sync import devicekit
from tests.sync.devicekit import (
    GRID_A,
    PASSWORD,
    FaultAdapter,
    faulty_session,
    is_push,
    nth,
)

db_url = devicekit.db_url  # fixture


class Recorder(FaultAdapter):
    """Keeps every prepared request so headers and bodies can be inspected."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.requests: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.requests.append(request)
        return super().send(request, **kwargs)


class Synthetic(Recorder):
    """Answers the first ``count`` matching requests itself with ``status`` (server untouched)."""

    def __init__(self, status: int, count: int, headers: dict[str, str] | None = None) -> None:
        super().__init__()
        self.status, self.count, self.headers = status, count, headers or {}

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if is_push(request) and self.count > 0:
            self.count -= 1
            self.requests.append(request)
            response = requests.Response()
            response.status_code = self.status
            response.headers.update(self.headers)
            response._content = json.dumps(
                {"error": {"code": "busy", "message_zh": "忙", "message_en": "busy"}}
            ).encode()
            response.request = request
            return response
        return super().send(request, **kwargs)


def _client(platform: Any, adapter: FaultAdapter | None = None, **kwargs: Any) -> Client:
    session = faulty_session(adapter) if adapter else None
    client = Client(platform.url, "dev-test-1", session=session, **kwargs)
    platform.sessions.append(client.http)
    return client


def _op(n: int, record_id: str | None = None, **fields: Any) -> dict[str, Any]:
    return {
        "op_id": f"dev-test-1:{n}",
        "record_id": record_id or ids.uuid7(),
        "form": "resident",
        "kind": "create",
        "base_version": None,
        "fields": fields or resident(grid=GRID_A, seq=100 + n),
        "edited_at": f"{ids.now_iso()}#{n:04d}",
        "author": "tester",
    }


def _sleeps() -> tuple[Retry, list[float]]:
    slept: list[float] = []
    return Retry(attempts=4, base=0.5, cap=8.0, sleep=slept.append, rng=random.Random(1)), slept


def test_login_sets_headers_and_big_bodies_go_gzipped(platform: Any) -> None:
    rec = Recorder()
    client = _client(platform, rec)
    info = client.info()
    assert client.protocol == 1 and "resident" in info.forms
    answer = client.login("wang", PASSWORD)
    assert answer.user.grids == [GRID_A] and client.token
    ops = [_op(i) for i in range(1, 6)]
    results = client.push(ops).results
    assert [r.status for r in results] == ["applied"] * 5
    push = rec.requests[-1]
    assert push.headers["Authorization"] == f"Bearer {client.token}"
    assert push.headers["X-Device-Id"] == "dev-test-1"
    assert push.headers["Content-Encoding"] == "gzip"
    sent = json.loads(gzip.decompress(push.body))
    assert [o["op_id"] for o in sent["ops"]] == [o["op_id"] for o in ops]
    assert client.stats.bytes_sent < len(json.dumps(sent).encode())  # compressed on the wire
    login = rec.requests[1]
    assert "Authorization" not in login.headers
    page = client.pull(0, 2)
    assert len(page.records) == 2 and page.more
    assert rec.requests[-1].headers["X-Device-Id"] == "dev-test-1"


def test_small_bodies_are_sent_plain(platform: Any) -> None:
    rec = Recorder()
    client = _client(platform, rec)
    client.login("wang", PASSWORD)
    client.push([_op(1, phone="13800138000", grid=GRID_A)])
    assert "Content-Encoding" not in rec.requests[-1].headers


def test_wrong_password_is_an_auth_error_without_the_password(platform: Any) -> None:
    client = _client(platform)
    secret = "s3cret-Pa55word"
    with pytest.raises(AuthError) as caught:
        client.login("wang", secret)
    err = caught.value
    assert err.code == "login_failed" and err.status == 401
    assert secret not in str(err) and secret not in repr(client)
    assert "\n" not in err.reason("zh") and "\n" not in err.reason("en")
    assert err.reason("en") != err.reason("zh")


def test_connection_errors_are_retried_with_growing_backoff(platform: Any) -> None:
    retry, slept = _sleeps()
    adapter = FaultAdapter(before=nth(is_push, 1, 2))
    client = _client(platform, adapter, retry=retry)
    client.login("wang", PASSWORD)
    results = client.push([_op(1)]).results
    assert results[0].status == "applied"
    assert client.stats.retries == 2 and len(slept) == 2
    # equal jitter: each pause lies in [ceiling/2, ceiling], ceilings double
    assert 0.25 <= slept[0] <= 0.5 and 0.5 <= slept[1] <= 1.0
    assert adapter.sent.count(("POST", "/v1/push")) == 1


def test_gives_up_after_the_attempts_with_a_network_error(platform: Any) -> None:
    retry, slept = _sleeps()
    adapter = FaultAdapter(before=is_push)
    client = _client(platform, adapter, retry=retry)
    client.login("wang", PASSWORD)
    with pytest.raises(NetworkError) as caught:
        client.push([_op(1)])
    assert caught.value.code == "network" and len(slept) == 3
    assert client.stats.requests == 2 + 4  # info, login, four push attempts
    assert client.pull(0, 10).records == []  # nothing reached the server


def test_unreachable_server_is_a_network_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    retry, slept = _sleeps()
    client = Client(f"http://127.0.0.1:{port}", "dev-x", retry=retry)
    with pytest.raises(NetworkError) as caught:
        client.info()
    assert f"127.0.0.1:{port}" in caught.value.reason("en")
    assert len(slept) == 3


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_retried_then_succeeds(platform: Any, status: int) -> None:
    retry, slept = _sleeps()
    adapter = Synthetic(status, count=2)
    client = _client(platform, adapter, retry=retry)
    client.login("wang", PASSWORD)
    assert client.push([_op(1)]).results[0].status == "applied"
    assert len(slept) == 2


def test_persistent_5xx_is_a_server_error(platform: Any) -> None:
    retry, _slept = _sleeps()
    client = _client(platform, Synthetic(503, count=99), retry=retry)
    client.login("wang", PASSWORD)
    with pytest.raises(ServerError) as caught:
        client.push([_op(1)])
    assert caught.value.status == 503


def test_429_honours_retry_after(platform: Any) -> None:
    retry, slept = _sleeps()
    client = _client(platform, Synthetic(429, count=1, headers={"Retry-After": "3"}), retry=retry)
    client.login("wang", PASSWORD)
    assert client.push([_op(1)]).results[0].status == "applied"
    assert slept and slept[0] >= 3


def test_4xx_is_not_retried_and_names_the_op(platform: Any) -> None:
    retry, slept = _sleeps()
    adapter = Recorder()
    client = _client(platform, adapter, retry=retry)
    client.login("wang", PASSWORD)
    bad = _op(2)
    bad["form"] = "no_such_form"
    with pytest.raises(ProtocolError) as caught:
        client.push([_op(1), bad])
    err = caught.value
    assert err.code == "unknown_form" and err.status == 422
    assert err.index == 1 and err.op_id == bad["op_id"]
    assert slept == [] and sum(is_push(r) for r in adapter.requests) == 1
    assert client.pull(0, 10).records == []  # a 4xx changed nothing


def test_out_of_scope_write_is_a_protocol_error(platform: Any) -> None:
    client = _client(platform)
    client.login("wang", PASSWORD)
    with pytest.raises(ProtocolError) as caught:
        client.push([_op(1, **resident(grid="330106002001-01"))])
    assert caught.value.status == 403 and caught.value.code == "out_of_scope"


def test_revoked_token_logs_in_again_once(platform: Any) -> None:
    rec = Recorder()
    client = _client(platform, rec)
    client.login("wang", PASSWORD)
    first = client.token
    assert admin.revoke_tokens(platform.engine, "wang") >= 1
    assert client.pull(0, 10).records == []
    assert client.token != first
    paths = [r.path_url.split("?")[0] for r in rec.requests]
    assert paths == ["/v1/login", "/v1/pull", "/v1/login", "/v1/pull"]


def test_without_login_an_auth_error_is_raised_before_sending(platform: Any) -> None:
    adapter = Recorder()
    client = _client(platform, adapter)
    with pytest.raises(AuthError):
        client.pull(0, 10)
    assert adapter.requests == []


def test_a_wrong_url_is_a_protocol_error(platform: Any) -> None:
    client = Client(platform.url + "/nothing-here", "dev-x", retry=_sleeps()[0])
    with pytest.raises(ProtocolError) as caught:
        client.info()
    assert caught.value.status == 404


@given(st.integers(0, 12), st.floats(0.01, 5), st.floats(0.5, 60), st.integers(0, 2**32))
def test_backoff_stays_within_its_ceiling(attempt: int, base: float, cap: float, seed: int) -> None:
    retry = Retry(base=base, cap=cap, rng=random.Random(seed))
    ceiling = min(cap, base * 2**attempt)
    delay = retry.delay(attempt)
    assert ceiling / 2 <= delay <= ceiling
    assert retry.delay(attempt, retry_after=cap * 2) == pytest.approx(cap) or delay > cap


def test_a_push_body_is_written_without_walking_each_op(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 17: the device encoded each push body with ``canonical_json``, a Python walk of
    every value of every op before orjson wrote it (~1 ms of a 1,000-op body); one columnar
    pass now (``canonical_json_map``), the same bytes as before."""
    from app.core import records

    client = Client("http://127.0.0.1:9", "dev-x")
    client.protocol = 1
    body = {
        "protocol": 1,
        "device_id": "dev-x",
        "ops": [_op(n, name="张三", note=str(n)) for n in range(1000)],
    }
    want = records.canonical_json(body, sort_keys=False).encode("utf-8")
    walked: list[Any] = []
    plain_check = records._orjson_plain

    def counted(value: Any, depth: int = 0) -> bool:
        walked.append(value)
        return plain_check(value, depth)

    monkeypatch.setattr(records, "_orjson_plain", counted)
    raw, headers = client._encode(body)
    assert raw is not None and headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(raw) == want
    assert walked == []
