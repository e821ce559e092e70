"""The console's last push per device: the right time for each (device, user) pair, read with
one index probe per pair (``ix_ops_device_user_at``) instead of every op the device pushed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, text

from sync.server import db
from sync.server.console import queries
from tests.sync.conftest import Platform


def _ops(platform: Platform, device: str, username: str, times: list[str]) -> None:
    rows = [
        {
            "device_id": device,
            "op_id": f"{device}:{username}:{n}",
            "username": username,
            "record_id": f"r{n}",
            "result": "{}",
            "at": at,
        }
        for n, at in enumerate(times)
    ]
    with platform.engine.begin() as conn:
        conn.execute(insert(db.ops), rows)


def test_last_push_is_per_device_and_user(platform: Platform) -> None:
    wang = platform.client("wang", device_id="tablet-1")
    platform.client("li", device_id="tablet-1")  # a shared tablet: two users, one device
    platform.client("li", device_id="laptop-li")
    _ops(platform, "tablet-1", "wang", ["2026-12-01T08:00:00Z", "2026-12-03T09:00:00Z"])
    _ops(platform, "tablet-1", "li", ["2026-12-02T10:00:00Z"])
    assert wang.token
    with platform.engine.connect() as conn:
        shown = {
            (d["device_id"], d["username"]): d["last_push"] for d in queries.devices(conn, None)
        }
    assert shown[("tablet-1", "wang")] == "2026-12-03T09:00:00Z"
    assert shown[("tablet-1", "li")] == "2026-12-02T10:00:00Z"
    assert shown[("laptop-li", "li")] is None


def test_the_last_push_probe_reads_the_index_not_the_op_log(platform: Platform) -> None:
    if platform.engine.dialect.name != "sqlite":
        return  # the plan is SQLite's; PostgreSQL's answer is checked above
    platform.client("wang", device_id="tablet-1")
    _ops(platform, "tablet-1", "wang", [f"2026-12-01T08:{m:02d}:00Z" for m in range(60)])
    captured: list[str] = []

    def plan(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if "max(ops.at)" in statement and not statement.startswith("EXPLAIN"):
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).all()
            captured.extend(str(r[-1]) for r in rows)

    from sqlalchemy import event

    event.listen(platform.engine, "before_cursor_execute", plan)
    try:
        with platform.engine.connect() as conn:
            queries.devices(conn, None)
    finally:
        event.remove(platform.engine, "before_cursor_execute", plan)
    assert captured, "the last-push query did not run"
    assert any("ix_ops_device_user_at" in line for line in captured), captured
    assert not any(line.startswith("SCAN ops") for line in captured), captured
    with platform.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM ops")).scalar() == 60
