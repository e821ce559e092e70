"""ASGI middleware of the platform server: the request body cap and gzip request bodies."""

from __future__ import annotations

import zlib

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sync import protocol as p
from sync.server.errors import error_body


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
