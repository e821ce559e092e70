"""The three requests of every device's nightly sync — ``POST /v1/token``, ``POST /v1/push``,
``GET /v1/pull`` — answered by a pure ASGI layer in front of FastAPI's router.

Why: a city's night is ~50,000 devices × these three requests, and the server's CPU is what
runs short. Through FastAPI each request also paid for the router's walk over every route,
dependency solving, ``json.loads`` and then a second pass to validate the parsed body, and the
token answer's response-model validation. Here an ordinary request costs one table look-up,
one ``model_validate_json`` (parse and validate in one pass, in Rust) and the thread hop its
work needs.

Only ordinary requests are answered here: both credential headers (push, pull), a JSON body the
protocol's model accepts (``application/json``), a query of plain digits within the limits.
Anything else — a missing header, a body or query the schema refuses, another content type —
goes on to the FastAPI route unchanged (the body replayed), which stays the one place where
those answers are made, in PROTOCOL.md §2's order. Both paths share the work
(``sync.push_answer``, ``sync.pull_answer``, ``auth.token_answer``) and the error rendering
(``deps.error_response``); an unexpected exception propagates to the app's 500 handler as
before. ``tests/sync/test_nightly_lean.py`` checks the two paths answer alike.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pydantic import ValidationError
from starlette.datastructures import State
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sync import protocol as p
from sync.server import hop
from sync.server.errors import ApiError
from sync.server.routes.auth import token_answer
from sync.server.routes.deps import Credentials, bearer, error_response
from sync.server.routes.sync import pull_answer, push_answer

# (state, path, headers, query, body) -> the answer, or None: the FastAPI route answers
Handler = Callable[[State, str, dict[bytes, bytes], bytes, bytes], Awaitable[Response | None]]
_JSON = b"application/json"


class Nightly:
    """Pure ASGI: ordinary token, push and pull requests answered without the router."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.routes: dict[tuple[str, str], Handler] = {
            ("POST", "/v1/token"): _token,
            ("POST", "/v1/push"): _push,
            ("GET", "/v1/pull"): _pull,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = (
            self.routes.get((scope["method"], scope["path"])) if scope["type"] == "http" else None
        )
        if handler is None:
            await self.app(scope, receive, send)
            return
        body = b""
        if scope["method"] == "POST":
            read = await _body(receive)
            if read is None:
                return  # the client went away
            body, receive = read, _replay(read, receive)
        headers = _headers(scope)
        try:
            answer = await handler(
                scope["app"].state, scope["path"], headers, scope["query_string"], body
            )
        except ApiError as exc:
            answer = error_response(exc)
        if answer is None:
            await self.app(scope, receive, send)
        else:
            await answer(scope, receive, send)


async def _token(
    state: State, _path: str, headers: dict[bytes, bytes], _query: bytes, body: bytes
) -> Response | None:
    if not _is_json(headers):
        return None
    try:
        request = p.RefreshRequest.model_validate_json(body)
    except ValidationError:
        return None
    answer = await hop.run(token_answer, state.engine, state.key, request)
    return JSONResponse(answer)


async def _push(
    state: State, path: str, headers: dict[bytes, bytes], _query: bytes, body: bytes
) -> Response | None:
    caller = _caller(state, path, headers)
    if caller is None or not _is_json(headers):
        return None
    try:
        request = p.PushRequest.model_validate_json(body)
    except ValidationError:
        return None
    device_id = caller.device_id or ""
    return await hop.run(push_answer, caller, state.service, request, device_id)


async def _pull(
    state: State, path: str, headers: dict[bytes, bytes], query: bytes, _body: bytes
) -> Response | None:
    caller = _caller(state, path, headers)
    asked = pull_query(query)
    if caller is None or asked is None:
        return None
    return await hop.run(pull_answer, caller, state.service, *asked)


def pull_query(query: bytes) -> tuple[int, int] | None:
    """(since, limit) of an ordinary pull query — ``since`` and ``limit`` at most once each, as
    plain digits within their ranges — else None (the route validates it and answers)."""
    asked = {b"since": 0, b"limit": p.DEFAULT_PULL_LIMIT}
    seen: set[bytes] = set()
    for part in query.split(b"&") if query else ():
        name, eq, value = part.partition(b"=")
        if not eq or name not in asked or name in seen or not value.isdigit() or len(value) > 19:
            return None
        seen.add(name)
        asked[name] = int(value)
    since, limit = asked[b"since"], asked[b"limit"]
    if since > p.MAX_CURSOR or not 1 <= limit <= p.MAX_PULL_LIMIT:
        return None
    return since, limit


def _caller(state: State, path: str, headers: dict[bytes, bytes]) -> Credentials | None:
    """The request's credentials when both headers are there (else the route answers 401)."""
    authorization = headers.get(b"authorization")
    device_id = headers.get(b"x-device-id")
    if authorization is None or device_id is None:
        return None
    found = Credentials(state, path, authorization.decode("latin-1"), device_id.decode("latin-1"))
    try:
        bearer(found.authorization, found.device_id)
    except ApiError:
        return None
    return found


def _is_json(headers: dict[bytes, bytes]) -> bool:
    kind = headers.get(b"content-type", b"").lower()
    return kind == _JSON or kind.startswith(_JSON + b";")


def _headers(scope: Scope) -> dict[bytes, bytes]:
    """The request's headers by lower-case name, the first of a repeated one (as Starlette's
    ``Headers.get``, which the routes read)."""
    out: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        out.setdefault(name, value)
    return out


async def _body(receive: Receive) -> bytes | None:
    """The whole request body (``BodyLimit`` has capped it), or None on a disconnect."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` giving ``body`` again, then what the client sends next (a disconnect)."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return again
