"""A pull page over several grids never jumps past changes it did not send.

On PostgreSQL every statement of a pull sees the latest commits. A pull over several grids
first finds where its page ends (``_page_end``), then reads the page's rows. An update that
commits in between renumbers its record past the counter, so the page comes back one row short;
the page must then end where it was found to end, not at the counter, or the changes between
the two are never pulled (found by ``test_counter_property`` on CI: 5 records skipped)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, update

from sync.server import db, pulls
from tests.sync.conftest import GRID_A, GRID_B, Platform
from tests.sync.test_platform_tasks import people


def test_an_update_committed_mid_page_does_not_make_the_pull_skip(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    if platform.engine.dialect.name != "postgresql":
        pytest.skip("SQLite reads a page from one snapshot: nothing commits in between")
    chen = platform.client("chen")  # a supervisor: both grids, so the page end is merged
    start = chen.pull(0, 1)["cursor"]
    wang, li = platform.client("wang"), platform.client("li")
    ids = people(wang, GRID_A, ["1"] * 3) + people(li, GRID_B, ["1"] * 3)
    real_page_end = pulls._page_end
    moved: list[str] = []

    def page_end_then_a_commit(conn: Any, grids: Any, since: int, top: int, limit: int) -> int:
        end = real_page_end(conn, grids, since, top, limit)
        if not moved:  # another writer's update commits now: its record leaves (since, end]
            r, c = db.records.c, db.counters.c
            with platform.engine.begin() as other:
                first = other.execute(
                    select(r.id).where(r.seq > since, r.seq <= end).order_by(r.seq).limit(1)
                ).scalar_one()
                value = other.execute(
                    select(c.value).where(c.name == db.SEQ).with_for_update()
                ).scalar_one()
                other.execute(update(db.counters).where(c.name == db.SEQ).values(value=value + 1))
                other.execute(update(db.records).where(r.id == first).values(seq=value + 1))
            moved.append(first)
        return end

    monkeypatch.setattr(pulls, "_page_end", page_end_then_a_commit)
    since, seen = start, set()
    for _ in range(20):
        page = chen.pull(since, 3)
        seen |= {rec["id"] for rec in page["records"]}
        since = page["cursor"]
        if not page["more"]:
            break
    assert moved and set(ids) <= seen, sorted(set(ids) - seen)
