"""Login, device-bound tokens, revocation, roles and grid/community scopes over real HTTP."""

from __future__ import annotations

import json
from typing import Any

import requests
from sqlalchemy import select

from app.core.ids import uuid7
from sync.server import admin, db
from tests.factories import id_number, resident
from tests.sync.conftest import COMMUNITY, GRID_A, GRID_B, GRID_C, PASSWORD, Client, Platform


def person(grid: str, seq: int, **extra: Any) -> dict[str, Any]:
    return {**resident(grid=grid, seq=seq, **extra), "_status": "complete"}


def test_login_answers_role_and_scope(platform: Platform) -> None:
    worker = platform.client("wang")
    expected = {"username": "wang", "role": "worker", "community": COMMUNITY, "grids": [GRID_A]}
    assert worker.user == expected
    boss = platform.client("chen")
    assert boss.user["role"] == "supervisor" and boss.user["grids"] == [GRID_A, GRID_B]
    assert platform.client("root").user["grids"] == [GRID_A, GRID_B, GRID_C]
    with platform.engine.connect() as conn:
        stored = conn.execute(select(db.users.c.password_hash)).scalars().all()
    assert all(h.startswith("scrypt$") and PASSWORD not in h for h in stored)


def test_wrong_password_and_unknown_user_look_the_same(platform: Platform) -> None:
    c = Client(platform.url, "dev-x")
    wrong, unknown = c.login("wang", "not the password"), c.login("nobody", "whatever1")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.json()["error"]["code"] == "login_failed"


def test_token_is_bound_to_its_device(platform: Platform) -> None:
    c = platform.client("wang", device_id="laptop-1")
    assert c.http.get(f"{platform.url}/v1/pull", headers=c.headers, timeout=30).status_code == 200
    stolen = {**c.headers, "X-Device-Id": "laptop-2"}
    resp = requests.get(f"{platform.url}/v1/pull", headers=stolen, timeout=30)
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "device"
    bare = requests.get(f"{platform.url}/v1/pull", timeout=30)
    assert bare.status_code == 401 and bare.json()["error"]["code"] == "auth"


def test_tokens_are_revocable(platform: Platform) -> None:
    worker, other_device = platform.client("wang"), platform.client("wang")
    root = platform.client("root")
    url = f"{platform.url}/v1/admin/revoke"
    denied = worker.http.post(url, json={"username": "li"}, headers=worker.headers, timeout=30)
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "forbidden"
    body = {"username": "wang", "device_id": worker.device_id}
    resp = root.http.post(url, json=body, headers=root.headers, timeout=30)
    assert resp.status_code == 200 and resp.json() == {"revoked": 1}
    assert worker.push_raw([]).status_code == 401
    assert other_device.push_raw([]).status_code == 200  # only that device was logged out
    assert admin.revoke_tokens(platform.engine, "wang") == 1  # the CLI path
    assert other_device.push_raw([]).status_code == 401
    out = root.http.post(f"{platform.url}/v1/logout", headers=root.headers, timeout=30)
    assert out.json() == {"revoked": 1}
    assert (
        requests.get(f"{platform.url}/v1/pull", headers=root.headers, timeout=30).status_code == 401
    )


def test_writing_another_grid_is_refused_whole(platform: Platform) -> None:
    wang, li = platform.client("wang"), platform.client("li")
    theirs = uuid7()
    li.push([li.op(theirs, "create", person(GRID_B, 1))])
    mine = uuid7()
    wang.push([wang.op(mine, "create", person(GRID_A, 3))])
    before = platform.dump()
    cases = [
        [wang.op(uuid7(), "create", person(GRID_B, 5))],  # create in another grid
        [wang.op(theirs, "update", {"phone": "13911112222"}, base_version=1)],  # their record
        [wang.op(mine, "update", {"grid": GRID_B}, base_version=1)],  # move mine away
        [wang.op(mine, "update", {"grid": None}, base_version=1)],  # leave it without a grid
        [wang.op(uuid7(), "create", {**person(GRID_A, 7), "grid": ""})],
    ]
    for ops in cases:
        resp = wang.push_raw([wang.op(uuid7(), "create", person(GRID_A, 9)), *ops])
        assert resp.status_code == 403, resp.text
        err = resp.json()["error"]
        assert err["code"] in ("out_of_scope", "grid_missing") and err["index"] == 1
        assert err["message_zh"] and err["message_en"]
    assert platform.dump() == before


def test_pull_only_delivers_the_callers_scope(platform: Platform) -> None:
    root = platform.client("root")
    made = {}
    for seq, grid in enumerate((GRID_A, GRID_B, GRID_C), start=1):
        made[grid] = uuid7()
        root.push([root.op(made[grid], "create", person(grid, seq * 2 + 1))])

    def seen(user: str) -> set[str]:
        return {r["id"] for r in platform.client(user).pull_all()[0]}

    assert seen("wang") == {made[GRID_A]}
    assert seen("li") == {made[GRID_B]}
    assert seen("chen") == {made[GRID_A], made[GRID_B]}
    assert seen("root") == set(made.values())
    wang = platform.client("wang")
    assert wang.record(made[GRID_B]).status_code == 404
    assert wang.record(made[GRID_A]).status_code == 200


def test_a_person_registered_in_another_grid_is_not_revealed(platform: Platform) -> None:
    li, wang = platform.client("li"), platform.client("wang")
    number = id_number(seq=101)
    li.push([li.op(uuid7(), "create", person(GRID_B, 101, id_number=number))])
    (r,) = wang.push([wang.op(uuid7(), "create", person(GRID_A, 101, id_number=number))])
    # answered like any create (a transfer claim waits for the supervisors, PROTOCOL.md §9.1)
    assert r["status"] == "applied" and r["version"] == 1 and "reason" not in r


def test_moving_a_record_tells_the_old_grid(platform: Platform) -> None:
    wang, boss = platform.client("wang"), platform.client("chen")
    rid = uuid7()
    wang.push([wang.op(rid, "create", person(GRID_A, 11))])
    _, cursor = wang.pull_all()
    (moved,) = boss.push([boss.op(rid, "update", {"grid": GRID_B}, base_version=1)])
    assert moved["status"] == "applied"
    page = wang.pull(cursor)
    assert page["records"] == [] and page["removed"] == [rid]
    assert [r["id"] for r in platform.client("li").pull()["records"]] == [rid]


def test_reviews_are_for_supervisors(platform: Platform) -> None:
    wang, boss = platform.client("wang"), platform.client("chen")
    url = f"{platform.url}/v1/reviews"
    resp = wang.http.get(url, headers=wang.headers, timeout=30)
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "forbidden"
    assert boss.http.get(url, headers=boss.headers, timeout=30).json() == {"reviews": []}


def test_odd_credentials_are_refused_not_crashed(platform: Platform) -> None:
    """Text PostgreSQL cannot store, or non-ASCII header text, gets a 4xx on both backends."""
    root = platform.client("root")
    for name in ("wa\u0000ng", "\ud800"):
        raw = json.dumps({"username": name}).encode()  # ASCII escapes keep "\ud800" sendable
        headers = {**root.headers, "Content-Type": "application/json"}
        resp = root.http.post(
            f"{platform.url}/v1/admin/revoke", data=raw, headers=headers, timeout=30
        )
        assert resp.status_code == 422, resp.text
        login = requests.post(
            f"{platform.url}/v1/login",
            data=json.dumps({"username": name, "password": "x", "device_id": "d"}),
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        assert login.status_code == 422, login.text
    odd = {**root.headers, "X-Device-Id": "gerät".encode().decode("latin-1")}
    resp = requests.get(f"{platform.url}/v1/pull", headers=odd, timeout=30)
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "device"
    missing = root.record("0190c5e4-0000-7000-8000-000000000000\u0000".replace("\u0000", "%00"))
    assert missing.status_code in (404, 422)
