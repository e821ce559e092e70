"""Grids reach devices through pull (PROTOCOL.md §8), over the real server on loopback HTTP, on
SQLite and PostgreSQL: a boundary a supervisor uploads in the console lands in a worker's store
and drives the app's "outside this grid" warning; a worker never receives another grid; a
rename arrives once; the console shows each device's last pull."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.core import geo, rules
from app.core.forms import FormSet
from app.core.store import Grid, Store
from sync import replica
from sync.protocol import PullResponse
from sync.server import db
from tests.sync.conftest import COMMUNITY, GRID_A, GRID_B, GRID_C, Platform
from tests.sync.consolekit import login
from tests.sync.devicekit import Device, make_device

RING_A = [[120.10, 30.27], [120.11, 30.27], [120.11, 30.28], [120.10, 30.28]]
RING_B = [[120.20, 30.27], [120.21, 30.27], [120.21, 30.28], [120.20, 30.28]]
INSIDE_A = {"lon": 120.105, "lat": 30.275}
OUTSIDE_A = {"lon": 120.205, "lat": 30.275}  # inside grid B


@pytest.fixture
def wang(platform: Platform, tmp_path: Path, formset: FormSet) -> Iterator[Device]:
    """Worker wang's device (grid A): a real store file and the real sync client."""
    device = make_device(platform.url, tmp_path, formset, "wang")
    yield device
    device.close()


def _geojson(ring: list[list[float]]) -> str:
    closed = [*ring, ring[0]]
    return json.dumps({"type": "Polygon", "coordinates": [closed]})


def _upload_boundaries(platform: Platform) -> None:
    """The supervisor uploads both grids' boundaries through the console's forms."""
    chen = login(platform, "chen")
    for code, ring in ((GRID_A, RING_A), (GRID_B, RING_B)):
        resp = chen.post(f"/console/grids/{code}/boundary", {"geojson": _geojson(ring)})
        assert "ok=" in resp.headers["location"], resp.headers["location"]


def test_a_boundary_uploaded_in_the_console_reaches_the_worker_and_flags_a_point_outside(
    platform: Platform, wang: Device, formset: FormSet
) -> None:
    wang.sync()  # the device already has its grid, without a boundary
    (before,) = wang.store.grids()
    assert before.code == GRID_A and before.polygon == []
    _upload_boundaries(platform)
    summary = wang.sync()
    grids = {g.code: g for g in wang.store.grids()}
    assert list(grids) == [GRID_A] and summary.grids == 1
    grid = grids[GRID_A]
    assert (grid.name, grid.community_code, grid.community_name) == (
        "一网格",
        COMMUNITY,
        "幸福社区",
    )
    assert grid.polygon == [tuple(pt) for pt in RING_A]
    polygons = {g.code: g.polygon for g in wang.store.grids() if g.polygon}
    form = formset.form("address")
    outside = rules.location_warnings(form, {"grid": GRID_A, "location": OUTSIDE_A}, polygons)
    assert [(i.field, i.code, i.severity) for i in outside] == [
        ("location", geo.OUTSIDE_GRID, "warning")
    ]
    assert rules.location_warnings(form, {"grid": GRID_A, "location": INSIDE_A}, polygons) == []
    assert wang.sync().grids == 0  # sent once per change, not on every pull


def test_each_role_receives_exactly_the_grids_of_its_scope(platform: Platform) -> None:
    """A worker of grid A never receives grid B's boundary; a supervisor gets their community,
    an admin every grid."""
    _upload_boundaries(platform)
    seen: dict[str, dict[str, Any]] = {}
    for user in ("wang", "li", "zhao", "chen", "root"):
        client = platform.client(user)
        grids: dict[str, Any] = {}
        since = 0
        while True:
            page = client.pull(since, limit=1)
            grids.update({g["code"]: g for g in page["grids"]})
            since = page["cursor"]
            if not page["more"]:
                break
        seen[user] = grids
    assert {u: sorted(g) for u, g in seen.items()} == {
        "wang": [GRID_A],
        "li": [GRID_B],
        "zhao": [GRID_C],
        "chen": [GRID_A, GRID_B],
        "root": [GRID_A, GRID_B, GRID_C],
    }
    assert seen["li"][GRID_B]["polygon"] == RING_B and seen["zhao"][GRID_C]["polygon"] is None
    assert seen["wang"][GRID_A] == {
        "code": GRID_A,
        "name": "一网格",
        "community": COMMUNITY,
        "community_name": "幸福社区",
        "level": "1",
        "polygon": RING_A,
    }


def test_a_rename_in_the_console_reaches_the_device_and_keeps_its_boundary(
    platform: Platform, wang: Device
) -> None:
    _upload_boundaries(platform)
    wang.sync()
    chen = login(platform, "chen")
    resp = chen.post(
        "/console/grids", {"code": GRID_A, "name": "一网格（新）", "community": COMMUNITY}
    )
    assert "ok=" in resp.headers["location"]
    assert wang.sync().grids == 1
    (grid,) = wang.store.grids()
    assert grid.name == "一网格（新）" and grid.polygon == [tuple(pt) for pt in RING_A]
    # saving the same name again is no change: the device hears nothing more
    chen.post("/console/grids", {"code": GRID_A, "name": "一网格（新）", "community": COMMUNITY})
    assert wang.sync().grids == 0


def test_the_console_shows_each_devices_last_pull(platform: Platform, wang: Device) -> None:
    device_id = wang.store.device_id

    def listed() -> dict[str, Any]:
        resp = root.http.get(
            f"{platform.url}/v1/console/overview", headers=root.headers, timeout=30
        )
        assert resp.status_code == 200, resp.text
        (entry,) = [d for d in resp.json()["devices"] if d["device_id"] == device_id]
        return entry

    root = platform.client("root")
    assert listed()["last_pull"] is None  # logged in, never pulled
    wang.sync()
    with platform.engine.connect() as conn:
        stored = conn.execute(
            select(db.devices.c.last_pull_at).where(db.devices.c.device_id == device_id)
        ).scalar_one()
    assert stored and listed()["last_pull"] == stored
    page = login(platform, "chen").get("/console/overview").text
    row = next(line for line in page.splitlines() if f"<td>{device_id}</td>" in line)
    assert f"<td>{stored}</td>" in row and "最近下载" in page


def test_a_device_keeps_its_boundary_and_worker_when_the_platform_sends_none(
    tmp_path: Path, formset: FormSet
) -> None:
    """A grid the platform has no (usable) boundary for does not erase the device's own
    boundary (e.g. the demo's), nor the worker the device assigned."""
    store = Store(tmp_path / "device.sqlite", formset)
    try:
        ring = [tuple(pt) for pt in RING_A]
        store.put_grid(Grid(GRID_A, "旧名", COMMUNITY, "幸福社区", polygon=ring, worker="wang"))
        pulled = [
            {"code": GRID_A, "name": "一网格", "community": COMMUNITY, "polygon": None},
            {"code": GRID_B, "name": "二网格", "community": COMMUNITY, "polygon": [[1, 2], [1, 2]]},
        ]
        page = PullResponse.model_validate(
            {
                "records": [],
                "aliases": [],
                "removed": [],
                "grids": pulled,
                "cursor": 5,
                "more": False,
            }
        )
        assert replica.apply_pull(store, page, "scope").grids == 2
        a, b = store.grids()
        assert (a.name, a.polygon, a.worker) == ("一网格", ring, "wang")
        assert (b.code, b.polygon) == (GRID_B, [])
    finally:
        store.close()
