"""Pull cursors over real HTTP: paging, and the classic bug — a change numbered before its
transaction commits being skipped by a concurrent pull — shown impossible here."""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import pytest
from sqlalchemy import select, update

from app.core.ids import uuid7
from sync.server import db
from sync.server.tx import Tx
from tests.factories import resident
from tests.sync.conftest import GRID_A, GRID_B, GRID_C, Client, Platform


def person(seq: int, grid: str = GRID_A, **extra: Any) -> dict[str, Any]:
    return {**resident(grid=grid, seq=seq, name=f"居民{seq}", **extra), "_status": "complete"}


def test_pages_follow_the_cursor(platform: Platform) -> None:
    c = platform.client("wang")
    ids = {uuid7() for _ in range(25)}
    c.push([c.op(rid, "create", person(i + 1)) for i, rid in enumerate(sorted(ids))])
    seen: list[str] = []
    cursors, since = [], 0
    while True:
        page = c.pull(since, limit=10)
        seen.extend(r["id"] for r in page["records"])
        cursors.append(page["cursor"])
        since = page["cursor"]
        if not page["more"]:
            break
    assert [len(seen)] == [25] and set(seen) == ids
    assert cursors == sorted(set(cursors))  # strictly increasing
    assert c.pull(since) == {
        "records": [],
        "aliases": [],
        "removed": [],
        "grids": [],
        "tasks": [],
        "task_items": [],
        "cursor": since,
        "more": False,
    }
    url = f"{platform.url}/v1/pull"
    ahead = c.http.get(url, params={"since": since + 1}, headers=c.headers, timeout=30)
    assert ahead.status_code == 409 and ahead.json()["error"]["code"] == "cursor_ahead"
    # a changed record comes back once, at its new version
    first = sorted(ids)[0]
    c.push([c.op(first, "update", {"occupation": "教师"}, base_version=1)])
    again = c.pull(since)
    assert [(r["id"], r["version"]) for r in again["records"]] == [(first, 2)]


def test_pages_over_several_grids_hold_every_change_once_in_order(platform: Platform) -> None:
    """A supervisor's pages merge the changes of two grids (uneven, interleaved, and a grid
    outside the scope in between) into one order, without gaps or repeats."""
    wang, li, root = platform.client("wang"), platform.client("li"), platform.client("root")
    layout = [GRID_A, GRID_B, GRID_B, GRID_C, GRID_A, GRID_B] * 4 + [GRID_B] * 5
    for n, grid in enumerate(layout):
        writer = {GRID_A: wang, GRID_B: li, GRID_C: root}[grid]
        writer.push([writer.op(uuid7(), "create", person(n + 1, grid=grid))])
    everything, _ = root.pull_all(limit=1000)
    expected = [r["id"] for r in everything if r["data"]["grid"] != GRID_C]
    chen = platform.client("chen")
    for limit in (1, 2, 3, 7, 50):
        seen, since, pages = [], 0, 0
        while True:
            page = chen.pull(since, limit=limit)
            assert len(page["records"]) <= limit and page["cursor"] >= since
            seen.extend(r["id"] for r in page["records"])
            since, pages = page["cursor"], pages + 1
            if not page["more"]:
                break
        assert seen == expected, limit
        assert pages >= len(expected) // limit


def _race(platform: Platform) -> tuple[set[str], set[str]]:
    """A slow writer holds its transaction open after numbering its change while a fast writer
    and a reader run; returns (ids written, ids the reader saw across two pulls)."""
    slow, fast, reader = platform.client("wang"), platform.client("wang"), platform.client("wang")
    r1, r2 = uuid7(), uuid7()
    numbered, release = threading.Event(), threading.Event()
    calls = {"n": 0}

    def hold_first_commit() -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            numbered.set()
            release.wait(30)

    platform.service.before_commit = hold_first_commit
    results: dict[str, Any] = {}
    t1 = threading.Thread(
        target=lambda: results.update(a=slow.push([slow.op(r1, "create", person(1))]))
    )
    t1.start()
    assert numbered.wait(30)
    t2 = threading.Thread(
        target=lambda: results.update(b=fast.push([fast.op(r2, "create", person(2))]))
    )
    t2.start()
    t2.join(timeout=1.0)  # a correct server keeps the fast writer waiting for the slow one
    first = reader.pull(0)
    release.set()
    t1.join(30)
    t2.join(30)
    second = reader.pull(first["cursor"])
    platform.service.before_commit = None
    assert results["a"][0]["status"] == results["b"][0]["status"] == "applied"
    seen = {r["id"] for r in first["records"]} | {r["id"] for r in second["records"]}
    return {r1, r2}, seen


def test_a_slow_writer_is_never_skipped_by_a_concurrent_pull(platform: Platform) -> None:
    written, seen = _race(platform)
    assert seen == written


def test_the_race_test_catches_numbering_before_commit(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prove the test above can fail: number changes like a database sequence (taken and
    committed at once, early) and the reader skips the slow writer's record."""
    if platform.engine.dialect.name == "sqlite":
        pytest.skip("SQLite serialises writers, so the early-numbering bug cannot show there")

    def early_numbers(self: Tx) -> dict[tuple[str, Any], int]:
        targets = list(dict.fromkeys(self.pending))
        self.pending.clear()
        c = db.counters.c
        with self.conn.engine.begin() as other:  # like nextval(): outside the transaction
            start = other.execute(
                select(c.value).where(c.name == db.SEQ).with_for_update()
            ).scalar_one()
            other.execute(
                update(db.counters).where(c.name == db.SEQ).values(value=start + len(targets))
            )
        return {target: n for n, target in enumerate(targets, start=start + 1)}

    monkeypatch.setattr(Tx, "take_numbers", early_numbers)
    written, seen = _race(platform)
    assert seen != written


def test_concurrent_pushes_and_pulls_never_skip(platform: Platform) -> None:
    writers = [platform.client("wang") for _ in range(3)] + [platform.client("chen")]
    reader = platform.client("chen")
    platform.service.before_commit = lambda: time.sleep(random.uniform(0, 0.01))
    done = threading.Event()
    view: dict[str, int] = {}
    regressions: list[tuple[str, int, int]] = []
    cursors: list[int] = []

    def read_loop() -> None:
        since = 0
        while True:
            finished = done.is_set()
            page = reader.pull(since, limit=7)
            for r in page["records"]:
                if r["version"] < view.get(r["id"], 0):
                    regressions.append((r["id"], view[r["id"]], r["version"]))
                view[r["id"]] = r["version"]
            since = page["cursor"]
            cursors.append(since)
            if finished and not page["more"]:
                return

    def write_loop(c: Client, w: int) -> None:
        rng = random.Random(w)
        mine: dict[str, int] = {}
        for step in range(12):
            if mine and rng.random() < 0.5:
                rid = rng.choice(sorted(mine))
                (res,) = c.push(
                    [c.op(rid, "update", {"occupation": f"职业{step}"}, base_version=mine[rid])]
                )
            else:
                rid = uuid7()
                grid = GRID_B if w == 3 else GRID_A
                (res,) = c.push([c.op(rid, "create", person(100 * w + step + 1, grid))])
            assert res["status"] == "applied", res
            mine[rid] = res["version"]

    reading = threading.Thread(target=read_loop)
    reading.start()
    threads = [threading.Thread(target=write_loop, args=(c, w)) for w, c in enumerate(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    reading.join(60)
    platform.service.before_commit = None
    with platform.engine.connect() as conn:
        truth = dict(conn.execute(select(db.records.c.id, db.records.c.version)).all())
    assert len(truth) > 20
    assert view == truth  # every record reached the reader at its final version
    assert regressions == []
    assert cursors == sorted(cursors)
