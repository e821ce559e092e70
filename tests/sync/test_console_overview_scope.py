"""The overview's per-grid summaries: an admin sees every grid even when only one community's
summaries were cached, and finding changed grids reads the change index, not every record."""

from __future__ import annotations

from sqlalchemy import create_engine

from app.core.ids import uuid7
from sync.server import db
from sync.server.console import stats
from tests.factories import resident
from tests.sync.conftest import GRID_A, GRID_C, Platform


def _totals(platform: Platform, username: str) -> dict[str, int]:
    client = platform.client(username)
    got = client.http.get(f"{platform.url}/v1/console/overview", headers=client.headers, timeout=60)
    got.raise_for_status()
    return {g["code"]: g["stats"]["total"] for g in got.json()["grids"]}


def test_an_admin_sees_every_grid_after_a_supervisor_cached_theirs(platform: Platform) -> None:
    for username, grid, seq in (("wang", GRID_A, 31), ("zhao", GRID_C, 33)):
        client = platform.client(username)
        op = client.op(uuid7(), "create", {**resident(grid=grid, seq=seq), "_status": "complete"})
        assert client.push([op])[0]["status"] == "applied"
    assert _totals(platform, "chen")[GRID_A] == 1  # caches community 1's grids only
    assert _totals(platform, "root")[GRID_C] == 1  # community 2's grid is counted too


def test_changed_grids_are_found_through_the_change_index() -> None:
    """On SQLite, ``DISTINCT`` made the query walk the whole (grid, seq) index."""
    engine = create_engine("sqlite://")
    db.metadata.create_all(engine)
    sql = str(stats.changed_since(5).compile(engine, compile_kwargs={"literal_binds": True}))
    with engine.connect() as conn:
        plan = " ".join(r[-1] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
    assert "SEARCH records USING" in plan and "(seq>?)" in plan, plan
