"""Issue 15: login throttling on the real server over loopback HTTP, both databases.

The throttle's clock is ``app.state.clock``: tests move it past delays and lockouts instead of
sleeping for minutes. Counting goes through the database, so parallel clients share it.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import requests

from app.core.forms import FormSet
from sync.server import races, throttle
from sync.server.app import create_app
from sync.server.console import audit
from tests.sync.conftest import PASSWORD, Client, Platform, start_server
from tests.sync.consolekit import Browser

WRONG = "not the password 1"


class FakeClock:
    """A clock the test moves (UTC)."""

    def __init__(self) -> None:
        self.now = dt.datetime(2026, 12, 6, 8, 0, tzinfo=dt.UTC)
        self.lock = threading.Lock()

    def __call__(self) -> dt.datetime:
        with self.lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.now += dt.timedelta(seconds=seconds)


def frozen(platform: Platform) -> FakeClock:
    clock = FakeClock()
    platform.app.state.clock = clock
    return clock


def guess(platform: Platform, username: str, device: str, password: str = WRONG) -> Any:
    return Client(platform.url, device).login(username, password)


def retry_after(resp: requests.Response) -> int:
    assert resp.status_code == 429, resp.text
    assert resp.json()["error"]["code"] == "throttled"
    body = resp.json()["error"]
    assert "秒后再试" in body["message_zh"] and "seconds" in body["message_en"]
    return int(resp.headers["Retry-After"])


def attack(platform: Platform, clock: FakeClock, username: str, tries: int) -> Counter[int]:
    """``tries`` wrong logins from a stranger's device, waiting out the growing delays (but not
    a lockout); returns the statuses seen."""
    seen: Counter[int] = Counter()
    for _ in range(tries):
        resp = guess(platform, username, "attacker")
        seen[resp.status_code] += 1
        if resp.status_code == 429 and retry_after(resp) < throttle.ACCOUNT.lock.total_seconds():
            clock.advance(retry_after(resp))
    return seen


def test_thirty_wrong_logins_get_429_and_the_user_gets_in_after_the_lockout(
    platform: Platform,
) -> None:
    clock = frozen(platform)
    laptop = platform.client("wang", "wang-laptop")  # the real user's own device, known
    # Without waiting, only the first few guesses are even checked.
    quick = Counter(guess(platform, "wang", "attacker").status_code for _ in range(30))
    assert quick == {401: throttle.ACCOUNT.free, 429: 30 - throttle.ACCOUNT.free}
    # Waiting out every delay does not help either: the account locks.
    seen = attack(platform, clock, "wang", 30)
    assert seen[401] == throttle.ACCOUNT.lock_after - throttle.ACCOUNT.free
    assert seen[429] >= 10
    locked = guess(platform, "wang", "another-new-device", PASSWORD)
    wait = retry_after(locked)  # the right password from a stranger's device: still 429
    assert 600 < wait <= throttle.ACCOUNT.lock.total_seconds()
    # The user's own laptop is not locked out by a stranger's guesses.
    assert guess(platform, "wang", laptop.device_id, PASSWORD).status_code == 200
    # Once the lockout ends, the user gets in from anywhere.
    clock.advance(wait - 1)
    assert guess(platform, "wang", "new-phone", PASSWORD).status_code == 429
    clock.advance(1)
    assert guess(platform, "wang", "new-phone", PASSWORD).status_code == 200

    rows = audit.rows(platform.engine, limit=1000)
    actions = Counter(r["action"] for r in rows)
    assert actions["login_failed"] == throttle.ACCOUNT.lock_after
    assert [r["target"] for r in rows if r["action"] == "login_locked"] == ["account:wang"]
    assert all(r["username"] == "wang" and r["ip"] == "127.0.0.1" for r in rows)
    assert WRONG not in repr(rows) and PASSWORD not in repr(rows)


def test_an_attack_that_stops_leaves_no_trace_after_the_window(platform: Platform) -> None:
    clock = frozen(platform)
    attack(platform, clock, "li", throttle.ACCOUNT.free)
    clock.advance(throttle.ACCOUNT.window.total_seconds() + 1)
    # A fresh count: the user's own typos get the full allowance again.
    statuses = [guess(platform, "li", "li-pc").status_code for _ in range(throttle.ACCOUNT.free)]
    assert statuses == [401] * throttle.ACCOUNT.free
    assert guess(platform, "li", "li-pc", PASSWORD).status_code == 429  # the 1 s delay
    clock.advance(1)
    assert guess(platform, "li", "li-pc", PASSWORD).status_code == 200


def test_unknown_names_are_logged_without_the_name(platform: Platform) -> None:
    frozen(platform)
    secret_typed_as_name = "Wang-S3cret!"
    assert guess(platform, secret_typed_as_name, "pc").status_code == 401
    rows = audit.rows(platform.engine)
    assert [(r["action"], r["username"], r["target"]) for r in rows] == [
        ("login_failed", "(unknown)", "(unknown)")
    ]
    assert secret_typed_as_name not in repr(rows)


def parallel(n: int, work: Callable[[int], list[int]]) -> Counter[int]:
    results: list[list[int]] = [[] for _ in range(n)]

    def run(i: int) -> None:
        results[i] = work(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return Counter(s for part in results for s in part)


def test_parallel_clients_share_one_count(platform: Platform) -> None:
    frozen(platform)
    # Four clients guessing one account at once: still only `free` guesses are checked.
    seen = parallel(
        4, lambda i: [guess(platform, "chen", f"bot-{i}").status_code for _ in range(10)]
    )
    assert seen == {401: throttle.ACCOUNT.free, 429: 40 - throttle.ACCOUNT.free}
    # Spreading guesses over many accounts from one address hits the address's limit.
    seen = parallel(
        4,
        lambda i: [guess(platform, f"nobody-{i}-{k}", f"b{i}").status_code for k in range(10)],
    )
    free_left = throttle.ADDRESS.free - throttle.ACCOUNT.free  # chen's guesses came from here
    assert seen == {401: free_left, 429: 40 - free_left}


def test_logins_at_once_never_fail_with_a_server_error(platform: Platform) -> None:
    """A community's tablets set up at the same minute with one account from one office
    address. Each attempt counts on the account's and the address's rows, each success gives
    them back and sweeps idle rows: on PostgreSQL those row locks deadlocked (and two attempts
    inserted one new row) and the login answered 500. Every answer is now a login or, past
    the account's free attempts in flight at once, 429 with Retry-After."""
    seen = parallel(
        12,
        lambda i: [guess(platform, "wang", f"pad-{i}-{k}", PASSWORD).status_code for k in range(6)],
    )
    assert set(seen) <= {200, 429} and seen[200] >= 12, seen


def test_logins_at_once_take_their_rows_in_one_order(platform: Platform, monkeypatch: Any) -> None:
    """The same dozen tablets: no attempt's transaction has to be run again. Before, a fresh
    row's insert held one key while another login locked the other, and PostgreSQL broke the
    deadlock after its one-second ``deadlock_timeout`` (a third of the logins, seconds each,
    until the admission queue answered 503 on a busy machine)."""
    raced: list[int] = []
    pause = races.pause
    monkeypatch.setattr(races, "pause", lambda attempt: (raced.append(attempt), pause(attempt)))
    seen = parallel(
        12,
        lambda i: [guess(platform, "wang", f"pad-{i}-{k}", PASSWORD).status_code for k in range(6)],
    )
    assert set(seen) <= {200, 429} and seen[200] >= 12, seen
    assert raced == []


def test_the_console_login_page_is_throttled_too(platform: Platform) -> None:
    clock = frozen(platform)
    browser = Browser(platform.url)
    statuses = [browser.login("root", WRONG).status_code for _ in range(8)]
    assert statuses == [401] * throttle.ACCOUNT.free + [429] * 3
    page = browser.login("root", PASSWORD)
    assert page.status_code == 429 and int(page.headers["Retry-After"]) >= 1
    assert "秒后再试" in page.text  # the page says why, in the language asked (zh first)
    clock.advance(int(page.headers["Retry-After"]))
    assert browser.login("root", PASSWORD).status_code == 303


def test_two_server_processes_share_the_count(
    platform: Platform, db_url: str, formset: FormSet
) -> None:
    """Guesses spread over two server processes on one database count as one attacker's."""
    clock = frozen(platform)
    second = create_app(db_url, forms=formset, secret="test-secret")  # another process's app
    second.state.clock = clock
    server, thread, url = start_server(second)
    try:
        urls = [platform.url, url]
        statuses = [
            Client(urls[i % 2], "attacker").login("li", WRONG).status_code for i in range(12)
        ]
        assert statuses == [401] * throttle.ACCOUNT.free + [429] * (12 - throttle.ACCOUNT.free)
        refused = Client(url, "attacker").login("li", PASSWORD)
        clock.advance(retry_after(refused))
        assert Client(platform.url, "new-pc").login("li", PASSWORD).status_code == 200
    finally:
        server.should_exit = True
        thread.join(30)
        second.state.engine.dispose()
