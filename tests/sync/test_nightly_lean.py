"""The lean path of a nightly sync (``routes.nightly``): ordinary token, push and pull requests
skip FastAPI's routing and dependencies, and every request — ordinary or not — is answered as
the FastAPI routes answer it (status, error body, page), property-tested against an app
without the lean layer."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import fastapi.routing
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.forms import FormSet
from app.core.ids import uuid7
from sync.server.app import create_app
from sync.server.routes.nightly import Nightly, pull_query
from tests.factories import resident
from tests.sync.conftest import GRID_A, GRID_B, PASSWORD, Platform, seed, start_server

DEVICE = "d-wang"


def test_a_nightly_sync_skips_the_framework_and_unusual_requests_do_not(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Token, push and pull of an ordinary sync never reach FastAPI's dependency solving; a
    request the lean layer does not take (here: a pull with an unknown parameter, a push
    without the device header) still reaches the route and gets its answer."""
    solved: list[str] = []
    real = fastapi.routing.solve_dependencies

    async def counting(*args: Any, **kwargs: Any) -> Any:
        solved.append(kwargs["request"].url.path)
        return await real(*args, **kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counting)
    first = requests.post(
        f"{platform.url}/v1/login",
        json={"username": "wang", "password": PASSWORD, "device_id": DEVICE},
        timeout=30,
    ).json()
    assert solved == ["/v1/login"]
    body = {"refresh_token": first["refresh_token"], "device_id": DEVICE}
    token = requests.post(f"{platform.url}/v1/token", json=body, timeout=30)
    assert token.status_code == 200, token.text
    headers = {"Authorization": f"Bearer {token.json()['token']}", "X-Device-Id": DEVICE}
    op = _op(str(uuid7()), 1, GRID_A)
    pushed = requests.post(
        f"{platform.url}/v1/push",
        json={"protocol": 1, "device_id": DEVICE, "ops": [op]},
        headers=headers,
        timeout=30,
    )
    assert pushed.status_code == 200 and pushed.json()["results"][0]["status"] == "applied"
    page = requests.get(
        f"{platform.url}/v1/pull", params={"since": 0, "limit": 50}, headers=headers, timeout=30
    )
    assert page.status_code == 200 and len(page.json()["records"]) == 1
    assert solved == ["/v1/login"]  # the three requests of the night: no dependency solving
    odd = requests.get(f"{platform.url}/v1/pull?since=0&x=1", headers=headers, timeout=30)
    assert odd.status_code == 200 and odd.json()["records"] == page.json()["records"]
    headerless = requests.post(f"{platform.url}/v1/push", json={"ops": []}, timeout=30)
    assert headerless.status_code == 401 and headerless.json()["error"]["code"] == "auth"
    assert solved == ["/v1/login", "/v1/pull", "/v1/push"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (b"", (0, 500)),
        (b"since=7&limit=200", (7, 200)),
        (b"limit=1&since=0", (0, 1)),
        (b"since=007", (7, 500)),
        (b"since=-1", None),  # the route answers 422
        (b"limit=0", None),
        (b"since=1&since=2", None),  # repeated: the route decides (the last one counts there)
        (b"since=1&other=2", None),
        (b"since=%31", None),
        (b"since=\xd9\xa1", None),  # an Arabic-Indic digit: not ASCII
        (b"since", None),
    ],
)
def test_the_lean_pull_takes_only_plain_queries(
    query: bytes, expected: tuple[int, int] | None
) -> None:
    assert pull_query(query) == (None if expected is None else expected)


# -- the lean path against the FastAPI routes, request by request ------------------------------


@dataclass
class Twin:
    """One app on its own database: its address, the device's token and sync credential."""

    url: str
    http: requests.Session
    token: str
    refresh: str

    def send(self, request: Request) -> requests.Response:
        def fill(text: str) -> str:
            return text.replace("{TOKEN}", self.token).replace("{REFRESH}", self.refresh)

        headers = {k: fill(v) for k, v in request.headers.items()}
        body = fill(request.body).encode("utf-8", "surrogatepass") if request.body else None
        url = f"{self.url}{request.path}" + (f"?{request.query}" if request.query else "")
        # a prepared request: requests adds no Content-Type of its own
        prepared = requests.Request(request.method, url, headers=headers, data=body).prepare()
        if request.body is not None and "Content-Type" not in request.headers:
            prepared.headers.pop("Content-Type", None)
        return self.http.send(prepared, timeout=60)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    query: str = ""
    body: str | None = None


@pytest.fixture
def twins(formset: FormSet, tmp_path: Path) -> Iterator[tuple[Twin, Twin]]:
    """The same platform twice: with the lean layer, and without it (FastAPI routes only)."""
    made, servers = [], []
    for name, lean in (("lean", True), ("plain", False)):
        app = create_app(f"sqlite:///{tmp_path / name}.db", forms=formset, secret="twin")
        if not lean:
            app.user_middleware = [m for m in app.user_middleware if m.cls is not Nightly]
        seed(app.state.engine)
        server, thread, url = start_server(app)
        servers.append((server, thread, app))
        http = requests.Session()
        first = http.post(
            f"{url}/v1/login",
            json={"username": "wang", "password": PASSWORD, "device_id": DEVICE},
            timeout=30,
        ).json()
        made.append(Twin(url, http, first["token"], first["refresh_token"]))
    try:
        yield made[0], made[1]
    finally:
        for server, thread, app in servers:
            server.should_exit = True
            thread.join(timeout=30)
            app.state.engine.dispose()


AUTH = st.sampled_from(
    [
        "Bearer {TOKEN}",
        "bearer {TOKEN}",
        "Bearer  {TOKEN} ",
        "Bearer gc1_unknown",
        "Basic {TOKEN}",
        "Bearer",
        None,
    ]
)
DEVICE_HEADER = st.sampled_from([DEVICE, "d-other", None])
CONTENT_TYPE = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/problem+json",
        "text/plain",
        None,
    ]
)


def _op(record_id: str, seq: int, grid: str) -> dict[str, Any]:
    return {
        "op_id": f"{DEVICE}:{seq}",
        "record_id": record_id,
        "form": "resident",
        "kind": "create",
        "base_version": None,
        "fields": resident(seq=seq, grid=grid),
        "edited_at": f"2026-01-01T00:00:{seq % 60:02d}.000Z#0000",
        "author": "tester",
    }


@st.composite
def push_bodies(draw: st.DrawFn) -> str:
    """A push as a device sends it, or one of the ways it can be wrong."""
    ops = [
        _op(
            str(draw(st.uuids())),
            draw(st.integers(1, 400)),
            draw(st.sampled_from([GRID_A, GRID_A, GRID_B])),
        )
        for _ in range(draw(st.integers(0, 2)))
    ]
    body: dict[str, Any] = {"protocol": 1, "device_id": DEVICE, "ops": ops}
    change = draw(
        st.sampled_from(
            [
                None,
                None,
                "protocol",
                "device",
                "drop",
                "type",
                "extra",
                "nan",
                "surrogate",
                "bom",
                "cut",
                "digits",
                "empty",
            ]
        )
    )
    if change == "protocol":
        body["protocol"] = 2
    elif change == "device":
        body["device_id"] = "d-other"
    elif change == "drop":
        del body[draw(st.sampled_from(["protocol", "device_id", "ops"]))]
    elif change == "type" and ops:
        ops[0]["base_version"] = "1"
    elif change == "extra":
        body["unexpected"] = {"a": [1, 2]}
    text = json.dumps(body, ensure_ascii=draw(st.booleans()))
    if change == "nan" and ops:
        text = text.replace('"author": "tester"', '"author": NaN')
    elif change == "surrogate" and ops:  # in a value (bad_text) or in a model's string
        text = text.replace(draw(st.sampled_from(['"tester"', '"1"'])), '"te\\ud800ster"')
    elif change == "bom":
        text = "\ufeff" + text
    elif change == "cut":
        text = text[: draw(st.integers(0, max(len(text) - 1, 0)))]
    elif change == "digits":
        text = text.replace('"protocol": 1', '"protocol": ' + "1" * 5000)
    elif change == "empty":
        text = ""
    return text


@st.composite
def requests_(draw: st.DrawFn) -> Request:
    """A token, push or pull request, ordinary or not."""
    route = draw(st.sampled_from(["token", "push", "pull"]))
    headers: dict[str, str] = {}
    if route != "token":
        auth = draw(AUTH)
        device = draw(DEVICE_HEADER)
        if auth is not None:
            headers["Authorization"] = auth
        if device is not None:
            headers["X-Device-Id"] = device
    if route == "pull":
        names = st.sampled_from(["since", "limit", "other"])
        values = st.one_of(
            st.integers(-3, 10**20).map(str),
            st.sampled_from(["", "abc", "1.0", "+1", " 1", "0001", "200", "500", "501", "0"]),
        )
        pairs = draw(st.lists(st.tuples(names, values), max_size=3))
        query = "&".join(f"{k}={quote(v)}" for k, v in pairs)
        return Request("GET", "/v1/pull", headers, query=query)
    kind = draw(CONTENT_TYPE)
    if kind is not None:
        headers["Content-Type"] = kind
    if route == "push":
        return Request("POST", "/v1/push", headers, body=draw(push_bodies()))
    token = {
        "refresh_token": draw(st.sampled_from(["{REFRESH}", "{REFRESH}", "nope", ""])),
        "device_id": draw(st.sampled_from([DEVICE, DEVICE, "d-other", "bad id!"])),
        "installation": draw(st.sampled_from([None, None, "i" * 20, "short"])),
    }
    if draw(st.booleans()):
        del token["installation"]
    text = json.dumps(token)
    if draw(st.integers(0, 5)) == 0:
        text = text[: len(text) // 2]
    return Request("POST", "/v1/token", headers, body=text)


VARYING = {"token", "expires_at", "refresh_token", "refresh_expires_at", "updated_at"}


def _answer(resp: requests.Response) -> tuple[int, str, bool, Any]:
    """What must agree: status, content type, Retry-After, and the JSON body apart from values
    that differ by construction between two databases (tokens, times)."""

    def same(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: "*" if k in VARYING else same(v) for k, v in value.items()}
        if isinstance(value, list):
            return [same(v) for v in value]
        return value

    return (
        resp.status_code,
        resp.headers.get("content-type", ""),
        "retry-after" in resp.headers,
        same(resp.json()),
    )


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(requests_(), min_size=1, max_size=4))
def test_the_lean_path_answers_as_the_routes_do(
    twins: tuple[Twin, Twin], batch: list[Request]
) -> None:
    lean, plain = twins
    for request in batch:
        assert _answer(lean.send(request)) == _answer(plain.send(request)), request


def test_a_surrogate_in_the_body_goes_to_the_route_and_gets_its_answer(
    twins: tuple[Twin, Twin],
) -> None:
    """A lone surrogate is JSON that ``json.loads`` takes and ``model_validate_json`` refuses:
    the lean layer hands it on, so the answer is the route's (422 ``bad_text``), not a 422
    ``malformed`` of its own."""
    lean, plain = twins
    op = _op(str(uuid.uuid4()), 3, GRID_A)
    op["fields"]["residence_address"] = "幸福路"
    text = json.dumps({"protocol": 1, "device_id": DEVICE, "ops": [op]})
    text = text.replace("\\u5e78", "\\ud800")  # 幸 -> a lone surrogate
    headers = {
        "Authorization": "Bearer {TOKEN}",
        "X-Device-Id": DEVICE,
        "Content-Type": "application/json",
    }
    request = Request("POST", "/v1/push", headers, body=text)
    answers = [_answer(t.send(request)) for t in (lean, plain)]
    assert answers[0] == answers[1]
    assert answers[0][0] == 422 and answers[0][3]["error"]["code"] == "bad_text", answers
