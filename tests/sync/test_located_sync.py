"""Houses, units and addresses with a location reach the platform (issue 10, item 1).

The device stores a location as lon/lat plus its Gauss-Krüger projection; the wire carries that
value unchanged and the platform checks the projection against lon/lat (PROTOCOL.md §5.2).
Ops an older platform set aside for that shape are sent again after the app upgrades."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core import geo, rules
from app.core.forms import FormSet, load_formset
from app.core.ids import uuid7
from app.core.store import Store, schema
from sync import replica
from tests.factories import undo_record_keys_step, undo_sort_key_step
from tests.sync import devicekit
from tests.sync.conftest import Platform
from tests.sync.located import LOCATED_FORMS, located

devices = devicekit.devices  # fixture


@pytest.mark.parametrize("form", LOCATED_FORMS)
def test_located_records_reach_the_platform_and_come_back_unchanged(
    devices: Any, form: str, formset: FormSet
) -> None:
    a, b = devices(2)
    made = [a.save(form, located(formset, form, i), status="complete") for i in (1, 2, 3)]
    a.edit(made[0].id, location=located(formset, form, 9)["location"])  # the point moved
    summary = a.sync()
    assert (summary.applied, summary.rejected, summary.pushed) == (4, 0, 4)
    assert replica.rejected_ops(a.store) == [] and a.store.count(dirty=True) == 0
    b.sync()
    for record in made:
        mine, theirs = a.get(record.id), b.get(record.id)
        assert theirs.data == mine.data and "gk3" in theirs.data["location"]
        assert theirs.status == "complete" and not theirs.dirty
    assert b.get(made[0].id).data["location"] == located(formset, form, 9)["location"]


def _house_op(client: Any, location: Any) -> dict[str, Any]:
    code = f"H-{uuid7()[-8:]}"  # a new house each time (the house code is its natural key)
    fields = {"house_code": code, "address_text": "幸福路1号", "grid": devicekit.GRID_A}
    return client.op(uuid7(), "create", {**fields, "location": location}, form="house")


def test_the_platform_checks_the_projection_against_lon_lat(
    platform: Platform, formset: FormSet
) -> None:
    c = platform.client("wang")
    stored = located(formset, "house", 1)["location"]
    plain = {"lon": stored["lon"], "lat": stored["lat"]}
    moved = {**stored, "gk3": {**stored["gk3"], "x": stored["gk3"]["x"] + 5.0}}
    other_zone = {**stored, "gk3": {**stored["gk3"], "epsg": stored["gk3"]["epsg"] + 1}}
    extra = {**stored, "alt": 12.0}
    texty = {**stored, "gk3": {**stored["gk3"], "y": "3346122.723"}}
    # what the previous app stored: the projection of the unrounded point (up to ~6 mm off)
    point = geo.LonLat(stored["lon"] + 4.9e-8, stored["lat"] - 4.9e-8)
    gk = geo.to_gk3(point)
    older = {
        **stored,
        "gk3": {"epsg": gk.epsg, "x": round(gk.easting, 3), "y": round(gk.northing, 3)},
    }
    assert older != stored
    for good in (stored, plain, older):
        (res,) = c.push([_house_op(c, good)])
        assert res["status"] == "applied", res
        assert c.record(res["record_id"]).json()["data"]["location"] == good
    for bad in (moved, other_zone, extra, texty, {"lon": stored["lon"]}):
        resp = c.push_raw([_house_op(c, bad)])
        assert resp.status_code == 422, resp.text
        error = resp.json()["error"]
        assert (error["code"], error["field"], error["index"]) == ("bad_value", "location", 0)


@settings(max_examples=200, deadline=None)
@given(
    lon=st.floats(73.0, 136.0, allow_nan=False),
    lat=st.floats(3.0, 54.0, allow_nan=False),
)
def test_every_coerced_location_is_one_the_platform_accepts(lon: float, lat: float) -> None:
    fs = load_formset()
    fld = fs.form("house").field("location")
    stored = rules.coerce(fld, f"{lon!r}, {lat!r}", fs)
    assert isinstance(stored, dict) and rules.coordinates_ok(stored), stored
    assert rules.coerce(fld, stored, fs) == stored  # a stored value is a fixed point


def _set_aside_like_the_old_platform(store: Store) -> None:
    """What the session did when the platform refused the projection: every op naming a
    location set aside with 422 bad_value, one request at a time."""
    while True:
        ops = replica.next_batch(store, 0, 500)
        bad = [op for op in ops if "location" in op.wire["fields"]]
        if not bad:
            return
        replica.set_aside(store, bad[0], "bad_value", "值的形式不对", "bad value")


def _old_store(path: Path, formset: FormSet) -> tuple[Store, dict[str, str]]:
    """A device store as the previous app version left it: located ops set aside, a delete
    settled on the device because its record's create was set aside, a real bad value."""
    store = Store(path, formset)
    house = store.save("house", located(formset, "house", 1), status="complete", author="wang")
    store.save(
        "house",
        {**house.data, "location": located(formset, "house", 2)["location"]},
        record_id=house.id,
        status="complete",
        author="wang",
    )
    gone = store.save("unit", located(formset, "unit", 3), author="wang")
    _set_aside_like_the_old_platform(store)
    store.delete(gone.id, author="wang")
    replica.next_batch(store, 0, 500)  # settles the delete on the device
    bad = store.save("address", {"full_address": {"not": "text"}, "grid": devicekit.GRID_A})
    replica.set_aside(store, replica.next_batch(store, 0, 500)[0], "bad_value", "值", "value")
    states = [r[0] for r in store.conn.execute("SELECT state FROM outbox ORDER BY seq")]
    assert states == ["rejected"] * 5
    version = schema.MIGRATIONS.index(schema.REQUEUE_GK3_OPS)
    undo_sort_key_step(store.conn)  # later steps
    undo_record_keys_step(store.conn)
    for table in ("task_results", "task_items", "tasks", "address_search"):
        store.conn.execute(f"DROP TABLE {table}")
    store.conn.execute(f"PRAGMA user_version = {version}")  # before this app version
    store.close()
    return Store(path, formset), {"house": house.id, "gone": gone.id, "bad": bad.id}


def test_ops_set_aside_for_their_projection_are_sent_after_the_upgrade(
    devices: Any, platform: Any, tmp_path: Path, formset: FormSet
) -> None:
    store, ids = _old_store(tmp_path / "old.sqlite", formset)
    (dev,) = devices(1)
    dev.store.close()
    dev.store = store  # the upgraded store, with the same logged-in user
    dev.client.device_id = store.device_id
    dev.client.login("wang", devicekit.PASSWORD)
    states = [r[0] for r in store.conn.execute("SELECT state FROM outbox ORDER BY seq")]
    assert states == ["pending"] * 4 + ["rejected"]  # the bad address stays set aside
    summary = dev.sync()
    assert (summary.pushed, summary.applied, summary.rejected) == (4, 4, 0), summary
    (root,) = devices(1, user="root")
    on_platform = devicekit.server_records(platform, root.client)
    house = on_platform[ids["house"]]
    assert house.data["location"] == located(formset, "house", 2)["location"]
    assert house.data == dev.get(ids["house"]).data and house.status == "complete"
    assert on_platform[ids["gone"]].deleted  # created and deleted, as on the device
    assert ids["bad"] not in on_platform
    assert not dev.get(ids["house"]).dirty and dev.get(ids["bad"]).dirty
    rejected = replica.rejected_ops(store)
    assert [(r["record_id"], r["result"]["reason"]["code"]) for r in rejected] == [
        (ids["bad"], "bad_value")
    ]


def test_base_data_with_locations_loads_on_the_platform(
    platform: Platform, tmp_path: Path, formset: FormSet
) -> None:
    """``server-admin load-base`` stores what the device would (the same coercion and checks):
    city-mirror houses with a location load instead of being refused for their shape."""
    from sync.server import admin
    from tests.sync.located import raw_located

    path = tmp_path / "houses.csv"
    rows = [raw_located("house", i) for i in range(1, 6)]
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    report = admin.load_base(platform.service, "house", path)
    assert (report.created, report.rejected, report.drafts) == (5, 0, 0), report.problems
    records, _ = platform.client("root").pull_all()
    assert {r["data"]["house_code"]: r["data"]["location"] for r in records} == {
        f"H-{i:05d}": located(formset, "house", i)["location"] for i in range(1, 6)
    }
