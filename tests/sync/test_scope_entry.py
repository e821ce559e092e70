"""A grid that enters a user's scope brings its existing records to the device (PROTOCOL.md §8
``entered``), over the real server on loopback HTTP, on SQLite and PostgreSQL: a worker given a
grid, a backfill cut by a dropped link and resumed, a grid taken away and given back, a
supervisor whose community gains a grid, the console's and the CLI's way to change a worker's
grids; and a Hypothesis property: after a sync at quiescence the device holds every record the
platform has in its scope, at the platform's version."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from app.core.forms import FormSet
from app.core.store import Store
from sync import replica
from sync.replica import backfill
from sync.server import admin, db
from tests.sync.conftest import (
    COMMUNITY,
    GRID_A,
    GRID_B,
    GRID_C,
    OTHER_COMMUNITY,
    Client,
    Platform,
)
from tests.sync.devicekit import Device, make_device


@pytest.fixture
def root(platform: Platform) -> Client:
    """The admin's raw HTTP client: writes records in any grid, as another device would."""
    return platform.client("root")


@pytest.fixture
def made(platform: Platform, tmp_path: Path, formset: FormSet) -> Iterator[list[Device]]:
    out: list[Device] = []
    yield out
    for device in out:
        device.close()


def _device(platform: Platform, tmp_path: Path, formset: FormSet, made: list[Device], user: str):
    device = make_device(platform.url, tmp_path, formset, user)
    made.append(device)
    return device


def _create(root: Client, grid: str, n: int, name: str = "居民") -> list[str]:
    ids = [str(uuid.uuid4()) for _ in range(n)]
    ops = [root.op(i, fields={"name": f"{name}{k}", "grid": grid}) for k, i in enumerate(ids)]
    assert all(r["status"] == "applied" for r in root.push(ops))
    return ids


def _held(store: Store) -> dict[str, tuple[int, str | None, dict[str, Any]]]:
    rows = store.conn.execute("SELECT id, server_version, grid, data FROM records").fetchall()
    return {i: (v, g, json.loads(d)) for i, v, g, d in rows}


def _platform_scope(platform: Platform, grids: set[str]) -> dict[str, tuple[int, dict[str, Any]]]:
    r = db.records.c
    with platform.engine.connect() as conn:
        rows = conn.execute(select(r.id, r.version, r.data).where(r.grid.in_(sorted(grids)))).all()
    return {x.id: (int(x.version), db.loads(x.data)) for x in rows}


def _holds_scope(device: Device, platform: Platform, grids: set[str]) -> None:
    """Every record of the platform in ``grids`` is on the device at its version and data."""
    held = _held(device.store)
    for rid, (version, data) in _platform_scope(platform, grids).items():
        assert rid in held, rid
        assert held[rid][0] == version and held[rid][2] == data, rid


def test_a_grid_given_to_a_worker_brings_its_existing_records_and_the_grid(
    platform: Platform, tmp_path: Path, formset: FormSet, made: list[Device], root: Client
) -> None:
    wang = _device(platform, tmp_path, formset, made, "wang")
    _create(root, GRID_A, 2)
    wang.sync()
    in_b = _create(root, GRID_B, 7)
    wang.sync()  # the cursor passes grid B's records: none of them is wang's yet
    assert not set(in_b) & set(_held(wang.store))
    gained, lost = admin.set_user_grids(platform.engine, "wang", [GRID_A, GRID_B])
    assert (gained, lost) == ([GRID_B], [])

    summary = wang.sync(chunk=3)  # grid B comes in pages of 3: 3 + 3 + 1

    assert set(in_b) <= set(_held(wang.store))
    _holds_scope(wang, platform, {GRID_A, GRID_B})
    assert GRID_B in {g.code for g in wang.store.grids()}
    assert (summary.new_grids, summary.new_grid_records) == (1, 7)
    assert "新增网格 1 个（7 条）" in summary.text("zh")
    assert "new grids 1 (7 records)" in summary.text("en")
    scope = replica.scope_of(wang.client.base_url, "wang")
    assert backfill.pending(wang.store, scope) == []  # done, forgotten
    again = wang.sync()
    assert (again.new_grids, again.new_grid_records, again.pulled) == (0, 0, 0)


def test_the_pull_names_the_entered_grid_once_and_only_to_its_user(
    platform: Platform, root: Client
) -> None:
    _create(root, GRID_B, 2)
    wang, li = platform.client("wang"), platform.client("li")
    _, cursor = wang.pull_all()  # past grid B's records
    _, li_cursor = li.pull_all()
    admin.set_user_grids(platform.engine, "wang", [GRID_A, GRID_B])
    page = wang.pull(cursor)
    upto = page["cursor"]
    assert page["entered"] == [{"grid": GRID_B, "upto": upto}]
    assert "entered" not in wang.pull(upto)
    assert "entered" not in li.pull(li_cursor)  # li's scope did not change
    back = wang.http.get(
        f"{wang.url}/v1/pull",
        params={"since": 0, "grid": GRID_B, "upto": upto, "limit": 500},
        headers=wang.headers,
        timeout=30,
    )
    assert back.status_code == 200, back.text
    got = back.json()
    assert len(got["records"]) == 2 and not got["more"] and got["cursor"] == upto
    assert all(r["data"]["grid"] == GRID_B for r in got["records"])
    half = wang.http.get(
        f"{wang.url}/v1/pull", params={"since": 0, "grid": GRID_B}, headers=wang.headers, timeout=30
    )
    assert half.status_code == 422 and half.json()["error"]["field"] == "upto"
    # a grid not (or no longer) in the caller's scope: an empty, finished page
    other = li.http.get(
        f"{li.url}/v1/pull",
        params={"since": 0, "grid": GRID_A, "upto": cursor},
        headers=li.headers,
        timeout=30,
    )
    assert other.status_code == 200 and other.json()["records"] == []
    assert other.json()["more"] is False


class _Drop(requests.ConnectionError):
    pass


def test_a_backfill_cut_after_one_page_resumes_and_ends_with_the_same_store(
    platform: Platform, tmp_path: Path, formset: FormSet, made: list[Device], root: Client
) -> None:
    wang = _device(platform, tmp_path, formset, made, "wang")
    _create(root, GRID_A, 1)
    wang.sync()
    in_b = _create(root, GRID_B, 5)
    wang.sync()
    admin.set_user_grids(platform.engine, "wang", [GRID_A, GRID_B])

    real = wang.client.pull
    grid_pages = []

    def cut(since: int, limit: int, **kw: Any) -> Any:
        if kw.get("grid") is not None:
            grid_pages.append(since)
            if len(grid_pages) == 2:
                raise _Drop("link dropped")
        return real(since, limit, **kw)

    wang.client.pull = cut  # type: ignore[method-assign]
    with pytest.raises(requests.ConnectionError):
        wang.sync(chunk=2)
    scope = replica.scope_of(wang.client.base_url, "wang")
    (left,) = backfill.pending(wang.store, scope)
    assert left.grid == GRID_B and left.after > 0  # its own cursor, kept with the first page
    assert len(set(in_b) & set(_held(wang.store))) == 2
    main = replica.read_cursor(wang.store, scope)

    wang.client.pull = real  # type: ignore[method-assign]
    summary = wang.sync(chunk=2)
    assert grid_pages[1] == left.after and summary.new_grid_records == 3  # resumed, not redone
    assert replica.read_cursor(wang.store, scope) >= main
    assert backfill.pending(wang.store, scope) == []

    fresh = _device(platform, tmp_path, formset, made, "wang")
    fresh.sync()
    assert _held(wang.store) == _held(fresh.store)


def test_a_new_grid_brings_its_open_tasks_and_items(
    platform: Platform, tmp_path: Path, formset: FormSet, made: list[Device], root: Client
) -> None:
    wang = _device(platform, tmp_path, formset, made, "wang")
    in_b = _create(root, GRID_B, 2)
    chen = platform.client("chen")
    spec = {"title": "核实电话", "form": "resident", "fields": ["phone"], "grids": [GRID_B]}
    made_task = chen.http.post(
        f"{platform.url}/v1/console/tasks", json=spec, headers=chen.headers, timeout=60
    )
    assert made_task.status_code == 200, made_task.text
    task_id = made_task.json()["task"]["id"]
    wang.sync()  # past the task, its items and grid B's records
    assert wang.store.conn.execute("SELECT count(*) FROM task_items").fetchone()[0] == 0
    admin.set_user_grids(platform.engine, "wang", [GRID_A, GRID_B])

    summary = wang.sync()

    items = wang.store.conn.execute("SELECT task_id, record_id FROM task_items").fetchall()
    assert sorted(r for _t, r in items) == sorted(in_b) and {t for t, _r in items} == {task_id}
    assert wang.store.conn.execute("SELECT count(*) FROM tasks").fetchone()[0] == 1
    assert summary.tasks >= 3  # the task and its two items


def test_a_grid_taken_away_and_given_back_brings_what_changed_meanwhile(
    platform: Platform, tmp_path: Path, formset: FormSet, made: list[Device], root: Client
) -> None:
    wang = _device(platform, tmp_path, formset, made, "wang")
    first = _create(root, GRID_B, 3)
    admin.set_user_grids(platform.engine, "wang", [GRID_A, GRID_B])
    wang.sync()
    assert set(first) <= set(_held(wang.store))
    admin.set_user_grids(platform.engine, "wang", [GRID_A])
    wang.sync()
    edited = root.op(first[0], "update", fields={"name": "改名"}, base_version=1)
    assert root.push([edited])[0]["version"] == 2
    later = _create(root, GRID_B, 2, name="新人")
    wang.sync()  # grid B is not wang's: nothing of it arrives
    assert not set(later) & set(_held(wang.store))
    assert _held(wang.store)[first[0]][0] == 1

    admin.set_user_grids(platform.engine, "wang", [GRID_A, GRID_B])
    summary = wang.sync()

    assert summary.new_grids == 1
    _holds_scope(wang, platform, {GRID_A, GRID_B})
    assert _held(wang.store)[first[0]][2]["name"] == "改名"


def test_a_supervisor_whose_community_gains_a_grid_receives_its_records(
    platform: Platform, tmp_path: Path, formset: FormSet, made: list[Device], root: Client
) -> None:
    chen = _device(platform, tmp_path, formset, made, "chen")
    _create(root, GRID_A, 1)
    chen.sync()
    in_c = _create(root, GRID_C, 4)
    chen.sync()
    assert not set(in_c) & set(_held(chen.store))

    admin.put_grid(platform.engine, GRID_C, "和平一网格", COMMUNITY)  # moved into chen's community
    summary = chen.sync()

    assert set(in_c) <= set(_held(chen.store))
    _holds_scope(chen, platform, {GRID_A, GRID_B, GRID_C})
    assert (summary.new_grids, summary.new_grid_records) == (1, 4)
    grids = {g.code: g for g in chen.store.grids()}
    assert grids[GRID_C].community_code == COMMUNITY
    # zhao's community lost it: nothing new for zhao's devices, and none named
    zhao = platform.client("zhao")
    _, cursor = zhao.pull_all()
    admin.put_grid(platform.engine, GRID_C, "和平一网格", OTHER_COMMUNITY)
    assert "entered" not in zhao.pull(cursor)  # a worker's grids did not change


def test_a_supervisor_moved_to_another_community_receives_its_grids(
    platform: Platform, tmp_path: Path, formset: FormSet, made: list[Device], root: Client
) -> None:
    chen = _device(platform, tmp_path, formset, made, "chen")
    in_c = _create(root, GRID_C, 3)
    chen.sync()
    assert not set(in_c) & set(_held(chen.store))
    password = "correct horse battery staple"
    admin.put_user(platform.engine, "chen", password, "supervisor", community=OTHER_COMMUNITY)
    chen.client.login("chen", password)  # a replaced account logs in again, keeping its store

    summary = chen.sync()

    assert set(in_c) <= set(_held(chen.store)) and summary.new_grids == 1


def test_a_supervisor_gives_a_worker_a_grid_in_the_console(
    platform: Platform, tmp_path: Path, formset: FormSet, made: list[Device], root: Client
) -> None:
    wang = _device(platform, tmp_path, formset, made, "wang")
    wang.sync()
    in_b = _create(root, GRID_B, 3)
    wang.sync()
    chen = platform.client("chen")
    url = f"{platform.url}/v1/console/users/wang/grids"
    outside = chen.http.put(url, json={"grids": [GRID_C]}, headers=chen.headers, timeout=30)
    assert outside.status_code == 422 and outside.json()["error"]["code"] == "unknown_grid"
    resp = chen.http.put(url, json={"grids": [GRID_A, GRID_B]}, headers=chen.headers, timeout=30)
    assert resp.status_code == 200 and resp.json()["count"] == 1, resp.text

    summary = wang.sync()  # wang's login still works: the scope is read at each request

    assert set(in_b) <= set(_held(wang.store)) and summary.new_grid_records == 3


def test_the_console_people_page_sets_a_workers_grids(platform: Platform, root: Client) -> None:
    from tests.sync.consolekit import login

    _create(root, GRID_B, 2)
    wang = platform.client("wang")
    _, cursor = wang.pull_all()
    chen = login(platform, "chen")
    assert 'id="grids-wang"' in chen.get("/console/people").text
    resp = chen.post("/console/people/wang/grids", {"grids": [GRID_A, GRID_B]})
    assert resp.status_code == 303 and "err=" not in resp.headers["location"]
    page = wang.pull(cursor)
    assert page["entered"] == [{"grid": GRID_B, "upto": page["cursor"]}]


def test_a_grant_committed_after_the_callers_scope_was_read_is_still_named(
    platform: Platform, root: Client
) -> None:
    """The scope a request carries was read before its page (``caller.find``): a grant that
    commits in between is in the page's range while the page was chosen without the grid. The
    page still names it, with ``upto`` = the page's cursor, also on a first pull."""
    from sync.server.auth import User

    in_b = _create(root, GRID_B, 2)
    _, cursor = platform.client("wang").pull_all()
    stale = User("wang", "worker", None, frozenset({GRID_A}))  # read before the grant
    admin.set_user_grids(platform.engine, "wang", [GRID_A, GRID_B])

    page = platform.service.pull(stale, cursor, 500)
    assert page["entered"] == [{"grid": GRID_B, "upto": page["cursor"]}]
    first = platform.service.pull(stale, 0, 500)
    assert not {r["id"] for r in first["records"]} & set(in_b)
    assert first["entered"] == [{"grid": GRID_B, "upto": first["cursor"]}]
    fresh = User("wang", "worker", None, frozenset({GRID_A, GRID_B}))
    assert "entered" not in platform.service.pull(fresh, 0, 500)  # its pages hold grid B


def test_server_admin_set_grids(platform: Platform, capsys: pytest.CaptureFixture[str]) -> None:
    from sync.server.cli import main

    url = platform.engine.url.render_as_string(hide_password=False)
    grids = ["--grid", GRID_A, "--grid", GRID_B]
    assert main(["--lang", "en", "server-admin", "--db", url, "set-grids", "wang", *grids]) == 0
    assert "1 grid(s) added, 0 removed" in capsys.readouterr().out
    assert main(["server-admin", "--db", url, "set-grids", "chen", "--grid", GRID_A]) != 0
    with platform.engine.connect() as conn:
        s = db.scope_grants.c
        rows = conn.execute(select(s.grid, s.username)).all()
    assert (GRID_B, "wang") in [tuple(r) for r in rows]


# -- the property ---------------------------------------------------------------------------

GRIDS = (GRID_A, GRID_B)
_step = st.one_of(
    st.tuples(st.just("create"), st.sampled_from(GRIDS)),
    st.tuples(st.just("move"), st.integers(0, 50), st.sampled_from(GRIDS)),
    st.tuples(st.just("scope"), st.sampled_from([(GRID_A,), (GRID_B,), GRIDS])),
    st.tuples(st.just("sync"), st.integers(1, 4)),
)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(_step, min_size=1, max_size=12))
@example(steps=[("sync", 1), ("create", GRID_B), ("sync", 2), ("scope", GRIDS)])
@example(
    steps=[("scope", GRIDS), ("create", GRID_B), ("sync", 1), ("scope", (GRID_A,))]
    + [("move", 0, GRID_A), ("move", 0, GRID_B), ("sync", 3), ("scope", (GRID_B,))]
)
def test_scope_changes_and_syncs_interleaved_leave_the_device_with_its_scope(
    platform: Platform, tmp_path: Path, formset: FormSet, steps: list[tuple[Any, ...]]
) -> None:
    """Each example is a new worker (so examples on one platform do not meet) with one device.
    At the end: one sync at quiescence, and every record of the platform in the worker's scope
    is on the device at its version; when no grid ever left the scope, nothing else is."""
    user = f"w{uuid.uuid4().hex[:10]}"
    admin.put_user(platform.engine, user, "correct horse battery staple", "worker", grids=[GRID_A])
    root = platform.client("root")
    device = make_device(platform.url, tmp_path, formset, user, name=user)
    try:
        mine, made_ids, left = {GRID_A}, [], False
        versions: dict[str, int] = {}
        for step in steps:
            if step[0] == "create":
                made_ids.extend(_create(root, step[1], 1))
                versions[made_ids[-1]] = 1
            elif step[0] == "move" and made_ids:
                rid = made_ids[step[1] % len(made_ids)]
                op = root.op(rid, "update", fields={"grid": step[2]}, base_version=versions[rid])
                versions[rid] = root.push([op])[0]["version"]
            elif step[0] == "scope":
                left = left or bool(mine - set(step[1]))
                mine = set(step[1])
                admin.set_user_grids(platform.engine, user, list(step[1]))
            elif step[0] == "sync":
                device.sync(chunk=step[1])
        device.sync(chunk=2)
        theirs = _platform_scope(platform, mine)
        held = _held(device.store)
        for rid, (version, data) in theirs.items():
            assert rid in held and held[rid][0] == version and held[rid][2] == data
        ours = {rid for rid in held if rid in made_ids}
        if not left:
            assert ours == set(theirs) & set(made_ids)
    finally:
        device.close()
