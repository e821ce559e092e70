"""Admission control: at most N requests of one server process touch the database at once.

Why: when every device of a city starts its nightly sync at the same minute, requests beyond
the connection pool used to wait inside the process holding a worker thread until the pool's
timeout answered 500, and the devices retried at once. Here a request waits for a slot at
most ``wait`` seconds and is otherwise answered ``503 busy`` with a ``Retry-After`` spread over
a range, which the client honours (PROTOCOL.md §2), so the load is deferred rather than
failed. The limit should not exceed the process's pool (``pool_size + max_overflow``).
"""

from __future__ import annotations

import asyncio
import random

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from sync.server.errors import error_body

# Paths that never touch the database (or only a cached answer): never queued.
FREE_PATHS = ("/v1/info", "/openapi.json", "/docs", "/console/static/")


class Admission:
    """Pure ASGI: a semaphore in front of the app, 503 + Retry-After when it stays full."""

    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        wait: float = 10.0,
        retry_after: tuple[int, int] = (5, 30),
    ) -> None:
        self.app, self.limit, self.wait, self.retry_after = app, limit, wait, retry_after
        self._slots: asyncio.Semaphore | None = None  # made in the server's event loop
        self.in_flight = 0
        self.refused = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(FREE_PATHS):
            await self.app(scope, receive, send)
            return
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.limit)
        if not await self._enter(self._slots):
            self.refused += 1
            await self._busy(send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
            self._slots.release()

    async def _enter(self, slots: asyncio.Semaphore) -> bool:
        """Take a slot, waiting at most ``wait`` seconds; False if none came free.

        A free slot is taken at once: ``asyncio.wait_for`` wraps the wait in a new task
        (Python 3.11), a cost every request paid although the queue is nearly always empty."""
        if not slots.locked():
            await slots.acquire()  # returns without suspending: a slot is free
            return True
        try:
            await asyncio.wait_for(slots.acquire(), timeout=self.wait)
        except TimeoutError:
            return False
        return True

    async def _busy(self, send: Send) -> None:
        low, high = self.retry_after
        response = JSONResponse(error_body("busy"), status_code=503)
        headers = [*response.raw_headers, (b"retry-after", str(random.randint(low, high)).encode())]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})
