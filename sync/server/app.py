"""The platform's HTTP API (FastAPI): ``create_app(db_url)`` builds a ready application.

This module only assembles the app: middleware (``middleware.BodyLimit``, gzip, admission,
``routes.nightly`` for the ordinary token, push and pull requests), the error
handlers and the routers (``routes``: sync, auth, records, reviews; ``console``). Routes are
thin: they authenticate, call the service and shape errors. Every error leaves as
``{"error": {code, message_zh, message_en}}`` (PROTOCOL.md §2), including FastAPI's own
validation errors, unknown routes and unexpected exceptions; request values are never echoed
(they may be personal data).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.gzip import GZipMiddleware

from app.core.forms import FormSet, load_formset
from app.core.search import name_terms
from sync import protocol as p
from sync.server import auth, console, db, routes
from sync.server.admission import Admission
from sync.server.errors import ApiError, error_body
from sync.server.middleware import BodyLimit
from sync.server.routes.deps import error_response
from sync.server.routes.nightly import Nightly
from sync.server.service import Service

log = logging.getLogger(__name__)


def _validation_detail(exc: RequestValidationError) -> tuple[int, str, str]:
    """(status, code, where) from pydantic errors, naming the JSON path but never the value."""
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return 400, "bad_json", ""
    first = errors[0] if errors else {}
    where = ".".join(str(x) for x in first.get("loc", ()))[:200]
    return 422, "malformed", f"{where}: {first.get('msg', '')}"[:300]


def create_app(
    db_url: str,
    *,
    forms: FormSet | None = None,
    secret: str | None = None,
    token_days: int = auth.TOKEN_DAYS,
    pool: db.PoolSettings | None = None,
    queue_wait: float = 10.0,
) -> FastAPI:
    """The platform server over ``db_url`` (``sqlite:///file.db`` or ``postgresql://...``);
    logins issue tokens valid ``token_days`` days.

    At most ``pool.connections`` requests run at once; others wait up to ``queue_wait``
    seconds for a turn and are then answered 503 with Retry-After (``admission``)."""
    pool = pool or db.PoolSettings()
    engine = db.make_engine(db_url, pool)
    db.init_db(engine)
    if db.never_analyzed(engine):  # e.g. restored from a dump: plan with real statistics
        db.analyze(engine)
    formset = forms or load_formset()
    name_terms("张三")  # load the pinyin tables (~0.7 s) at start, not in the first push
    app = FastAPI(
        title="GridCollect platform / 网格采集平台",
        version=p.SERVER_VERSION,
        description="Sync protocol version 1; see sync/PROTOCOL.md.",
        lifespan=_disposing,
    )
    app.state.engine = engine
    app.state.service = Service(engine, formset)
    app.state.key = auth.server_secret(engine, secret)
    app.state.token_days = token_days
    app.state.clock = auth.now  # the login throttle's clock (tests move it)
    app.add_middleware(Nightly)  # innermost: after the body cap and admission
    app.add_middleware(BodyLimit)
    app.add_middleware(Admission, limit=pool.connections, wait=queue_wait)
    # Level 1: a pull page of 200 demo records (123 KB of JSON) takes 0.6 ms and 10 KB instead
    # of level 6's 4.2 ms and 8 KB; the server's CPU is what a city's night runs short of.
    app.add_middleware(GZipMiddleware, minimum_size=1000, compresslevel=1)
    _handlers(app)
    for router in routes.routers():
        app.include_router(router)
    app.include_router(console.router())  # the web console (/console) and its API (/v1/console)
    return app


@asynccontextmanager
async def _disposing(app: FastAPI) -> AsyncIterator[None]:
    """The engine is disposed when the server stops: on SQLite the checkpointer copies what
    waits and the last connection removes the WAL, so a stopped platform is one tidy file."""
    yield
    app.state.engine.dispose()


def _handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc)

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
