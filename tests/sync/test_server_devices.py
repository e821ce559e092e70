"""The op log's identity rules and device registration at login, on the real server over HTTP
(SQLite and PostgreSQL): an op id is a replay only with the same content, op ids belong to one
device, and a second installation presenting a known device id is given a new one."""

from __future__ import annotations

import threading
from typing import Any

import requests
from sqlalchemy import update

from app.core.ids import uuid7
from sync.server import db
from tests.factories import resident
from tests.sync.conftest import GRID_A, PASSWORD, Client, Platform

NONCE_1, NONCE_2 = "installation-one-0001", "installation-two-0002"


def _draft(seq: int, **extra: Any) -> dict[str, Any]:
    return {**resident(grid=GRID_A, seq=seq), **extra}


def _login(platform: Platform, device_id: str, installation: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"username": "wang", "password": PASSWORD, "device_id": device_id}
    if installation is not None:
        body["installation"] = installation
    resp = requests.post(f"{platform.url}/v1/login", json=body, timeout=30)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def test_same_op_id_with_other_content_is_refused_not_answered_as_a_replay(
    platform: Platform,
) -> None:
    c = platform.client("wang")
    rid = uuid7()
    first = c.op(rid, "create", _draft(41, name="钱二"))
    (done,) = c.push([first])
    assert done["status"] == "applied"
    before = platform.dump()
    other = {**c.op(uuid7(), "create", _draft(43, name="孙三")), "op_id": first["op_id"]}
    fresh = c.op(uuid7(), "create", _draft(45))
    resp = c.push_raw([fresh, other])
    assert resp.status_code == 409, resp.text
    error = resp.json()["error"]
    assert error["code"] == "op_id_reused"
    assert (error["op_id"], error["index"]) == (first["op_id"], 1)
    assert error["message_zh"] and error["message_en"]
    assert platform.dump() == before  # nothing of the batch was applied
    (again,) = c.push([first])  # the same content is still a replay
    assert again["status"] == "duplicate_op" and again["record_id"] == rid


def test_one_batch_with_one_op_id_twice_and_two_contents_is_refused(platform: Platform) -> None:
    c = platform.client("wang")
    one = c.op(uuid7(), "create", _draft(47))
    two = {**c.op(uuid7(), "create", _draft(49)), "op_id": one["op_id"]}
    resp = c.push_raw([one, two])
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "op_id_reused"


def test_op_logged_before_hashes_existed_still_replays(platform: Platform) -> None:
    """Rows of the op log written by an older server have no hash: a replay is answered from
    them as before (a missing hash counts as the same content)."""
    c = platform.client("wang")
    op = c.op(uuid7(), "create", _draft(51))
    (done,) = c.push([op])
    with platform.engine.begin() as conn:
        conn.execute(update(db.ops).values(op_hash=None))
    (again,) = c.push([op])
    assert again["status"] == "duplicate_op" and again["version"] == done["version"]


def test_op_ids_belong_to_one_device(platform: Platform) -> None:
    """Another device using this device's op ids neither blocks nor answers them."""
    mine = platform.client("wang", device_id="laptop-mine")
    thief = platform.client("wang", device_id="laptop-other")
    op = mine.op(uuid7(), "create", _draft(53))
    squat = {**thief.op(uuid7(), "create", _draft(55)), "op_id": op["op_id"]}
    (taken,) = thief.push([squat])
    assert taken["status"] == "applied"
    (own,) = mine.push([op])
    assert own["status"] == "applied" and own["record_id"] == op["record_id"]


def test_token_pushes_only_for_its_own_device(platform: Platform) -> None:
    c = platform.client("wang", device_id="laptop-a")
    op = c.op(uuid7(), "create", _draft(57))
    other_body = c.push_raw([op], device_id="laptop-b")
    assert other_body.status_code == 400
    assert other_body.json()["error"]["code"] == "device_mismatch"
    headers = {**c.headers, "X-Device-Id": "laptop-b"}
    body = {"protocol": 1, "device_id": "laptop-b", "ops": [op]}
    other_both = requests.post(f"{platform.url}/v1/push", json=body, headers=headers, timeout=30)
    assert other_both.status_code == 401 and other_both.json()["error"]["code"] == "device"


def test_login_registers_confirms_and_replaces_device_ids(platform: Platform) -> None:
    device = "0123456789abcdef0123456789abcdef"
    first = _login(platform, device, NONCE_1)
    assert (first["device_id"], first["device_status"]) == (device, "new")
    again = _login(platform, device, NONCE_1)
    assert (again["device_id"], again["device_status"]) == (device, "known")
    copy = _login(platform, device, NONCE_2)
    assert copy["device_status"] == "copied" and copy["device_id"] != device
    assert len(copy["device_id"]) == 32 and int(copy["device_id"], 16) >= 0
    # the copy logging in again before it stored its new id gets the same new id
    assert _login(platform, device, NONCE_2)["device_id"] == copy["device_id"]
    assert _login(platform, copy["device_id"], NONCE_2)["device_status"] == "known"
    # the token works with the id it was bound to, not with the one presented
    headers = {"Authorization": f"Bearer {copy['token']}", "X-Device-Id": copy["device_id"]}
    assert requests.get(f"{platform.url}/v1/pull", headers=headers, timeout=30).status_code == 200
    headers["X-Device-Id"] = device
    assert requests.get(f"{platform.url}/v1/pull", headers=headers, timeout=30).status_code == 401
    old_app = _login(platform, device, None)  # an app without installations: taken as given
    assert (old_app["device_id"], old_app["device_status"]) == (device, "unchecked")


def test_copy_is_answered_from_the_originals_log_only_for_the_same_content(
    platform: Platform,
) -> None:
    """Ops a copy carried over from before the copy (same id, same content) are answered from
    the original's log; its own ops under a colliding id are applied as its own."""
    device = "fedcba9876543210fedcba9876543210"
    orig = Client(platform.url, device)
    orig.token = _login(platform, device, NONCE_1)["token"]
    carried = orig.op(uuid7(), "create", _draft(61))
    mine = orig.op(uuid7(), "create", _draft(63))
    orig.push([carried, mine])
    answer = _login(platform, device, NONCE_2)
    copy = Client(platform.url, answer["device_id"])
    copy.token = answer["token"]
    theirs = {**copy.op(uuid7(), "create", _draft(65)), "op_id": mine["op_id"]}
    results = copy.push([carried, theirs])
    assert [r["status"] for r in results] == ["duplicate_op", "applied"]
    assert results[1]["record_id"] == theirs["record_id"] != mine["record_id"]
    # a row of the original logged before hashes existed proves nothing for the copy
    with platform.engine.begin() as conn:
        conn.execute(update(db.ops).where(db.ops.c.device_id == device).values(op_hash=None))
    late = {**copy.op(uuid7(), "create", _draft(67)), "op_id": carried["op_id"]}
    (own,) = copy.push([late])
    assert own["status"] == "applied" and own["record_id"] == late["record_id"]


def test_simultaneous_first_logins_of_one_device_all_succeed(platform: Platform) -> None:
    """A login retried while the first is still running: both register the same id, neither
    fails (PostgreSQL runs them in parallel transactions). Five at once: the login throttle
    counts attempts before their password is checked, and lets five through without a wait
    (a sixth parallel attempt of one account is answered 429 with Retry-After, by design)."""
    device = "00112233445566778899aabbccddeeff"
    barrier = threading.Barrier(5)
    answers: list[tuple[int, str]] = []

    def login() -> None:
        body = {"username": "wang", "password": PASSWORD, "device_id": device}
        barrier.wait()
        resp = requests.post(
            f"{platform.url}/v1/login", json={**body, "installation": NONCE_1}, timeout=60
        )
        answers.append((resp.status_code, resp.json().get("device_status", "")))

    threads = [threading.Thread(target=login) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [(200, "known")] * 4 + [(200, "new")]
