"""The platform's HTTP API (FastAPI): ``create_app(db_url)`` builds a ready application.

Routes are thin: they authenticate, call the service and shape errors. Every error leaves as
``{"error": {code, message_zh, message_en}}`` (PROTOCOL.md §2), including FastAPI's own
validation errors, unknown routes and unexpected exceptions; request values are never echoed
(they may be personal data).
"""

from __future__ import annotations

import logging
import zlib
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.forms import FormSet, load_formset
from app.core.search import name_terms
from sync import protocol as p
from sync.server import auth, console, db, reviews
from sync.server.errors import ApiError, error_body
from sync.server.service import Service

log = logging.getLogger(__name__)

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": p.ErrorResponse} for status in (400, 401, 403, 404, 409, 413, 422)
}


class BodyLimit:
    """Cap request bodies (before and after gzip) and decompress gzip requests.

    Pure ASGI, so an oversized body is refused while it streams in, before anything parses it.
    """

    def __init__(self, app: ASGIApp, limit: int = p.MAX_REQUEST_BYTES) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        encoding = headers.get(b"content-encoding", b"identity").decode("latin-1").strip().lower()
        if encoding not in ("identity", "gzip", ""):
            await _send_error(send, 400, "encoding")
            return
        declared = headers.get(b"content-length")
        if declared and declared.isdigit() and int(declared) > self.limit:
            await _send_error(send, 413, "too_large")
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body.extend(message.get("body", b""))
            more = message.get("more_body", False)
            if len(body) > self.limit:
                await _send_error(send, 413, "too_large")
                return
        if encoding == "gzip":
            try:
                inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
                plain = inflater.decompress(bytes(body), self.limit + 1)
                if len(plain) > self.limit or inflater.unconsumed_tail:
                    await _send_error(send, 413, "too_large")
                    return
                if not inflater.eof:
                    raise zlib.error("truncated")
            except zlib.error:
                await _send_error(send, 400, "bad_json")
                return
            body = bytearray(plain)
            scope = dict(scope)
            scope["headers"] = [
                (k, v)
                for k, v in scope["headers"]
                if k not in (b"content-encoding", b"content-length")
            ] + [(b"content-length", str(len(body)).encode())]
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)


async def _send_error(send: Send, status: int, code: str) -> None:
    response = JSONResponse(error_body(code), status_code=status)
    await send({"type": "http.response.start", "status": status, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})


def _validation_detail(exc: RequestValidationError) -> tuple[int, str, str]:
    """(status, code, where) from pydantic errors, naming the JSON path but never the value."""
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return 400, "bad_json", ""
    first = errors[0] if errors else {}
    where = ".".join(str(x) for x in first.get("loc", ()))[:200]
    return 422, "malformed", f"{where}: {first.get('msg', '')}"[:300]


def current_user(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    x_device_id: Annotated[str | None, Header()] = None,
) -> auth.User:
    """The caller behind ``Authorization: Bearer`` + ``X-Device-Id`` (401 otherwise)."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip() or not x_device_id:
        raise ApiError(401, "auth")
    state = request.app.state
    try:
        return auth.authenticate(state.engine, state.key, token.strip(), x_device_id)
    except auth.AuthError as exc:
        raise ApiError(401, exc.code) from None


User = Annotated[auth.User, Depends(current_user)]


def create_app(db_url: str, *, forms: FormSet | None = None, secret: str | None = None) -> FastAPI:
    """The platform server over ``db_url`` (``sqlite:///file.db`` or ``postgresql://...``)."""
    engine = db.make_engine(db_url)
    db.init_db(engine)
    formset = forms or load_formset()
    name_terms("张三")  # load the pinyin tables (~0.7 s) at start, not in the first push
    service = Service(engine, formset)
    key = auth.server_secret(engine, secret)
    app = FastAPI(
        title="GridCollect platform / 网格采集平台",
        version=p.SERVER_VERSION,
        description="Sync protocol version 1; see sync/PROTOCOL.md.",
    )
    app.state.engine, app.state.service, app.state.key = engine, service, key
    app.add_middleware(BodyLimit)
    app.add_middleware(GZipMiddleware, minimum_size=1000, compresslevel=6)
    _handlers(app)

    @app.get("/v1/info", response_model=p.Info, tags=["sync"])
    def info() -> dict[str, Any]:
        """Protocol versions, server version, form versions and limits (no login needed)."""
        return {
            "protocol_versions": list(p.SUPPORTED_PROTOCOLS),
            "server_version": p.SERVER_VERSION,
            "forms": {f.id: f.version for f in formset.forms.values()},
            "limits": p.Limits().model_dump(),
        }

    @app.post("/v1/login", response_model=p.LoginResponse, responses=_ERRORS, tags=["auth"])
    def login(body: p.LoginRequest) -> dict[str, Any]:
        """Exchange a user name and password for a token bound to this device (a copied data
        dir is given a new device id: PROTOCOL.md §4)."""
        for text in (body.username, body.password):
            _check_plain_text(text)
        try:
            token, expires, user = auth.login(
                engine, key, body.username, body.password, body.device_id, body.installation
            )
        except auth.AuthError as exc:
            raise ApiError(401, exc.code) from None
        with db.read(engine) as conn:
            grids = sorted(user.grids) if user.grids is not None else auth.all_grids(conn)
        return {
            "token": token,
            "expires_at": expires,
            "device_id": user.device_id,
            "device_status": user.device_status,
            "user": {
                "username": user.username,
                "role": user.role,
                "community": user.community,
                "grids": grids,
            },
        }

    @app.post("/v1/logout", response_model=p.Revoked, responses=_ERRORS, tags=["auth"])
    def logout(user: User) -> dict[str, Any]:
        """Revoke the caller's token."""
        with db.write(engine) as conn:
            count = auth.revoke(conn, user.username, token_hash_=user.token_hash)
        return {"revoked": count}

    @app.post("/v1/admin/revoke", response_model=p.Revoked, responses=_ERRORS, tags=["auth"])
    def admin_revoke(body: p.RevokeRequest, user: User) -> dict[str, Any]:
        """Revoke every token of a user, or only those of one device (admins only)."""
        if not user.is_admin:
            raise ApiError(403, "forbidden")
        _check_plain_text(body.username)
        with db.write(engine) as conn:
            count = auth.revoke(conn, body.username, body.device_id)
        return {"revoked": count}

    @app.post("/v1/push", response_model=p.PushResponse, responses=_ERRORS, tags=["sync"])
    def push(
        body: p.PushRequest, user: User, x_device_id: Annotated[str | None, Header()] = None
    ) -> JSONResponse:
        """Apply a batch of ops in order; one result per op (PROTOCOL.md §5)."""
        results = service.push(user, body, x_device_id or "")
        return JSONResponse({"results": results})

    @app.get("/v1/pull", response_model=p.PullResponse, responses=_ERRORS, tags=["sync"])
    def pull(
        user: User,
        since: Annotated[int, Query(ge=0, le=p.MAX_CURSOR)] = 0,
        limit: Annotated[int, Query(ge=1, le=p.MAX_PULL_LIMIT)] = p.DEFAULT_PULL_LIMIT,
    ) -> JSONResponse:
        """Records changed after the cursor, in the caller's scope (PROTOCOL.md §8)."""
        return Response(service.pull_json(user, since, limit), media_type="application/json")

    @app.get(
        "/v1/records/{record_id}", response_model=p.PulledRecord, responses=_ERRORS, tags=["sync"]
    )
    def get_record(user: User, record_id: Annotated[str, Path(max_length=64)]) -> JSONResponse:
        """One record in the caller's scope (aliases followed)."""
        _check_plain_text(record_id)
        return JSONResponse(service.get_record(user, record_id))

    @app.get("/v1/reviews", response_model=p.ReviewList, responses=_ERRORS, tags=["reviews"])
    def list_reviews(user: User, state: Literal["open", "all"] = "open") -> dict[str, Any]:
        """Possible duplicates for supervisors and admins."""
        return {"reviews": reviews.list_reviews(engine, user, state)}

    @app.post(
        "/v1/reviews/{review_id}",
        response_model=p.ReviewOutcome,
        responses=_ERRORS,
        tags=["reviews"],
    )
    def decide_review(
        user: User, body: p.ReviewDecision, review_id: Annotated[int, Path(ge=1, le=2**31 - 1)]
    ) -> dict[str, Any]:
        """Decide "same" (merge, alias) or "different"; writes an audit row."""
        return reviews.decide(engine, formset, user, review_id, body.decision)

    app.include_router(console.router())  # the web console (/console) and its API (/v1/console)
    return app


def _check_plain_text(text: str) -> None:
    if "\x00" in text:
        raise ApiError(422, "nul_char")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(422, "bad_text") from None


def _handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        status, code, detail = _validation_detail(exc)
        return JSONResponse(error_body(code, detail=detail), status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {400: "bad_json", 404: "not_found", 405: "not_found", 413: "too_large"}
        code = codes.get(exc.status_code, "malformed")
        status = exc.status_code if exc.status_code < 500 else 500
        body = error_body(code, detail="") if code == "malformed" else error_body(code)
        return JSONResponse(body, status_code=status)

    @app.exception_handler(Exception)
    async def crashed(_request: Request, exc: Exception) -> JSONResponse:
        log.error("internal error: %s", type(exc).__name__)  # no message: it may hold values
        return JSONResponse(error_body("internal"), status_code=500)
