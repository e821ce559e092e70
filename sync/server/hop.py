"""The thread hop of the nightly requests (``routes.nightly``): their blocking work (the
database) runs in a worker thread while the event loop serves other requests.

Why not Starlette's ``run_in_threadpool`` (anyio's ``to_thread.run_sync``): for each call it
enters a cancel scope, takes a capacity limiter's token, looks up run-scoped variables and
wakes its worker through a ``queue.Queue`` (a lock and a condition, in Python): 50-80 µs of
the event loop's CPU per call, three calls per nightly sync. Here a call is a future, one
``SimpleQueue.put`` (C) and the worker's ``call_soon_threadsafe``: ~18 µs
(tests/bench/bench_fixed_costs.py measures the whole sync).

What it keeps of anyio's: the work runs in a copy of the caller's context, its exception is
raised in the caller, and a caller cancelled meanwhile waits for the work to end (the
transaction commits or rolls back in the thread) before the cancellation goes on. At most
``MAX_THREADS`` threads (anyio's default limit too), started as needed; more calls wait in
the queue. (``Admission`` already holds requests beyond the connection pool's size.)
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import Callable
from queue import SimpleQueue
from typing import Any, TypeVar, cast

T = TypeVar("T")
MAX_THREADS = 40


class _Call:
    """One call: where to answer, the work, and whether (and who) waits for its end."""

    __slots__ = ("done", "ended", "finished", "loop", "work")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, done: asyncio.Future[Any], work: Callable[[], Any]
    ) -> None:
        self.loop, self.done, self.work = loop, done, work
        self.finished = False  # the work has ended (set on the loop's thread)
        self.ended: asyncio.Future[None] | None = None  # a cancelled caller waits on it


class Hop:
    """Worker threads fed through one queue; ``run`` awaits a call made in one of them."""

    def __init__(self, max_threads: int = MAX_THREADS, name: str = "gc-hop") -> None:
        self.max_threads, self.name = max_threads, name
        self._jobs: SimpleQueue[_Call | None] = SimpleQueue()  # None: a thread's cue to end
        self._threads: list[threading.Thread] = []
        self._idle = 0  # threads free, no call of theirs queued yet (``run`` claims them)
        self._waiting = 0  # calls queued for the next thread that is done (all were busy)
        self._lock = threading.Lock()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker thread, in a copy of this context."""
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        call = _Call(loop, loop.create_future(), lambda: context.run(fn, *args))
        with self._lock:  # a free thread takes the call, else a new one, else the next free
            if self._idle:
                self._idle -= 1
            elif len(self._threads) < self.max_threads:
                self._threads.append(self._thread())
            else:
                self._waiting += 1
        self._jobs.put(call)
        try:
            return cast(T, await call.done)
        except asyncio.CancelledError:
            await _until_ended(call)
            raise

    def _thread(self) -> threading.Thread:
        name = f"{self.name}-{len(self._threads)}"
        thread = threading.Thread(target=self._serve, name=name, daemon=True)
        thread.start()
        return thread

    def _serve(self) -> None:
        while True:
            call = self._jobs.get()
            if call is None:
                return
            try:
                outcome: tuple[bool, Any] = (True, call.work())
            except BaseException as exc:  # handed to the caller, as anyio does
                outcome = (False, exc)
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                call.loop.call_soon_threadsafe(_settle, call, outcome)
            del call, outcome  # not kept alive while waiting for the next job
            with self._lock:
                if self._waiting:
                    self._waiting -= 1
                else:
                    self._idle += 1

    def stop(self) -> None:
        """End the threads once the calls queued before have run (tests)."""
        with self._lock:
            threads, self._threads, self._idle, self._waiting = self._threads, [], 0, 0
        for _ in threads:
            self._jobs.put(None)
        for thread in threads:
            thread.join()


def _settle(call: _Call, outcome: tuple[bool, Any]) -> None:
    """On the loop's thread: answer the caller, or wake the cancelled caller waiting."""
    call.finished = True
    if call.ended is not None:
        call.ended.set_result(None)
    if call.done.cancelled():
        return
    ok, value = outcome
    if ok:
        call.done.set_result(value)
    else:
        call.done.set_exception(value)


async def _until_ended(call: _Call) -> None:
    """A cancelled caller waits for its work to end (its transaction commits or rolls back
    in the thread first), however often it is cancelled meanwhile; then it is cancelled."""
    if call.finished:
        return
    call.ended = call.loop.create_future()
    while not call.ended.done():
        try:
            await asyncio.shield(call.ended)
        except asyncio.CancelledError:
            continue


HOP = Hop()


async def run(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in one of the server's worker threads (``HOP``)."""
    return await HOP.run(fn, *args)
