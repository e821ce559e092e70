"""The nightly requests' thread hop (``sync.server.hop``): what it keeps of anyio's
``to_thread.run_sync``, which it replaces on the nightly path (issue 19)."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from typing import Any

import pytest
import uvloop

from sync.server import hop
from tests.sync.conftest import Platform

WHO: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")


@pytest.fixture
def pool() -> Any:
    made = hop.Hop(max_threads=2, name="test-hop")
    yield made
    made.stop()


def test_a_call_runs_in_a_worker_thread_in_the_callers_context(pool: hop.Hop) -> None:
    async def main() -> tuple[str, str, int]:
        WHO.set("wang")
        return await pool.run(lambda x: (WHO.get(), threading.current_thread().name, x), 7)

    who, thread, value = uvloop.run(main())
    assert (who, value) == ("wang", 7)
    assert thread.startswith("test-hop-") and thread != threading.current_thread().name


def test_the_works_exception_is_raised_in_the_caller(pool: hop.Hop) -> None:
    def fail() -> None:
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        uvloop.run(pool.run(fail))


def test_calls_beyond_the_threads_wait_their_turn(pool: hop.Hop) -> None:
    def slow(n: int) -> tuple[int, str]:
        time.sleep(0.01)
        return n, threading.current_thread().name

    async def main() -> list[tuple[int, str]]:
        return list(await asyncio.gather(*(pool.run(slow, n) for n in range(12))))

    answers = uvloop.run(main())
    assert [n for n, _ in answers] == list(range(12))
    assert len({name for _, name in answers}) <= 2


def test_a_free_thread_takes_the_next_call(pool: hop.Hop) -> None:
    """Calls one after the other run on one thread; two loops in two threads calling at
    once all get answers, on at most the pool's threads (each free thread is counted once)."""

    async def one_by_one() -> set[str]:
        return {await pool.run(lambda: threading.current_thread().name) for _ in range(5)}

    assert len(uvloop.run(one_by_one())) == 1

    def busy(n: int) -> int:
        time.sleep(0.001)
        return n

    async def many() -> list[int]:
        return list(await asyncio.gather(*(pool.run(busy, n) for n in range(40))))

    answers: list[list[int]] = []
    loops = [threading.Thread(target=lambda: answers.append(uvloop.run(many()))) for _ in range(2)]
    for thread in loops:
        thread.start()
    for thread in loops:
        thread.join(30)
    assert answers == [list(range(40))] * 2
    assert len(pool._threads) <= 2


def test_a_cancelled_caller_waits_for_its_work_to_end(pool: hop.Hop) -> None:
    """As anyio's: the transaction in the thread ends (commit or rollback) before the
    cancellation goes on, however often the caller is cancelled meanwhile."""
    release, ended = threading.Event(), threading.Event()

    def work() -> str:
        release.wait(10)
        ended.set()
        return "done"

    async def main() -> bool:
        task = asyncio.ensure_future(pool.run(work))
        await asyncio.sleep(0.02)
        task.cancel()
        await asyncio.sleep(0.02)
        task.cancel()
        await asyncio.sleep(0.02)
        waiting = not task.done()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert ended.is_set()
        return waiting

    assert uvloop.run(main())


def test_the_nightly_requests_run_on_the_hop(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Token, push and pull of a nightly sync each make one call through ``hop.run`` (not
    anyio's worker threads)."""
    seen: list[str] = []
    service = platform.service
    real_push, real_pull = service.push_all, service.pull_json

    def push_all(*args: Any) -> Any:
        seen.append(threading.current_thread().name)
        return real_push(*args)

    def pull_json(*args: Any) -> Any:
        seen.append(threading.current_thread().name)
        return real_pull(*args)

    monkeypatch.setattr(service, "push_all", push_all)
    monkeypatch.setattr(service, "pull_json", pull_json)
    wang = platform.client("wang")
    assert wang.push([]) == []
    wang.pull()
    assert len(seen) == 2 and all(name.startswith("gc-hop-") for name in seen), seen
