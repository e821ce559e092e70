"""Push through the real server over HTTP, on SQLite and PostgreSQL: merges, conflicts,
natural-key duplicates, reordering, idempotent replay, validation and quarantine."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import func, select

from app.core.ids import uuid7
from sync.server import db
from tests.factories import id_number, id_number_15, resident
from tests.sync.conftest import GRID_A, GRID_B, Client, Platform


def complete(**overrides: Any) -> dict[str, Any]:
    return {**resident(grid=GRID_A, **overrides), "_status": "complete"}


def created(client: Client, **overrides: Any) -> str:
    rid = uuid7()
    (res,) = client.push([client.op(rid, "create", complete(**overrides))])
    assert res["status"] == "applied" and res["version"] == 1, res
    return rid


def count(platform: Platform, table: Any, *where: Any) -> int:
    with platform.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def test_versions_increase_and_every_version_is_kept(platform: Platform) -> None:
    c = platform.client("wang")
    rid = created(c)
    (r2,) = c.push([c.op(rid, "update", {"phone": "13911112222"}, base_version=1)])
    (r3,) = c.push([c.op(rid, "update", {"occupation": "教师"}, base_version=2)])
    assert (r2["status"], r2["version"], r3["version"]) == ("applied", 2, 3)
    assert count(platform, db.record_versions, db.record_versions.c.record_id == rid) == 3
    record = c.record(rid).json()
    assert record["version"] == 3
    assert record["data"]["phone"] == "13911112222" and record["data"]["occupation"] == "教师"


def test_edits_of_different_fields_merge(platform: Platform) -> None:
    one, two = platform.client("wang"), platform.client("wang")
    rid = created(one)
    (a,) = one.push([one.op(rid, "update", {"phone": "13911112222"}, base_version=1)])
    (b,) = two.push([two.op(rid, "update", {"occupation": "教师"}, base_version=1)])
    assert (a["status"], b["status"], b["conflicts"]) == ("applied", "applied", [])
    data = one.record(rid).json()["data"]
    assert (data["phone"], data["occupation"]) == ("13911112222", "教师")


def test_same_field_same_value_is_no_conflict(platform: Platform) -> None:
    one, two = platform.client("wang"), platform.client("wang")
    rid = created(one)
    one.push([one.op(rid, "update", {"phone": "13911112222"}, base_version=1)])
    (b,) = two.push([two.op(rid, "update", {"phone": "13911112222"}, base_version=1)])
    assert (b["status"], b["version"], b["conflicts"]) == ("applied", 2, [])
    assert one.record(rid).json()["conflict"] is None


def test_same_field_different_values_conflict_until_resolved(platform: Platform) -> None:
    one, two = platform.client("wang"), platform.client("wang")
    rid = created(one)
    one.push([one.op(rid, "update", {"phone": "13911112222"}, base_version=1)])
    (b,) = two.push([two.op(rid, "update", {"phone": "13700137000"}, base_version=1)])
    assert b["status"] == "conflict"
    (entry,) = b["conflicts"]
    assert entry["field"] == "phone" and entry["kind"] == "hard"
    assert (entry["server"], entry["incoming"]) == ("13911112222", "13700137000")
    assert entry["provisional"] == "13700137000"  # the later edit
    pulled = {r["id"]: r for r in one.pull()["records"]}[rid]
    assert pulled["conflict"][0]["field"] == "phone" and pulled["data"]["phone"] == "13700137000"
    version = pulled["version"]
    (stale,) = one.push(
        [one.op(rid, "resolve", {"phone": "13911112222"}, base_version=version - 1)]
    )
    assert stale["status"] == "rejected" and stale["reason"]["code"] == "stale"
    (done,) = one.push([one.op(rid, "resolve", {"phone": "13911112222"}, base_version=version)])
    assert done["status"] == "applied" and done["version"] == version + 1
    after = one.record(rid).json()
    assert after["conflict"] is None and after["data"]["phone"] == "13911112222"


def test_update_versus_delete_is_a_conflict_never_a_silent_drop(platform: Platform) -> None:
    one, two = platform.client("wang"), platform.client("wang")
    rid = created(one)
    (d,) = one.push([one.op(rid, "delete", {}, base_version=1)])
    assert d["status"] == "applied" and one.record(rid).json()["deleted"] is True
    (u,) = two.push([two.op(rid, "update", {"occupation": "教师"}, base_version=1)])
    assert u["status"] == "conflict" and u["conflicts"][0]["field"] == "_deleted"
    record = one.record(rid).json()
    assert record["deleted"] is False and record["data"]["occupation"] == "教师"
    assert record["conflict"][0]["field"] == "_deleted"
    (r,) = one.push([one.op(rid, "resolve", {"_deleted": True}, base_version=record["version"])])
    assert r["status"] == "applied"
    assert one.record(rid).json()["deleted"] is True


def test_delete_versus_delete_changes_nothing(platform: Platform) -> None:
    one, two = platform.client("wang"), platform.client("wang")
    rid = created(one)
    (a,) = one.push([one.op(rid, "delete", {}, base_version=1)])
    (b,) = two.push([two.op(rid, "delete", {}, base_version=1)])
    assert (a["version"], b["status"], b["version"], b["conflicts"]) == (2, "applied", 2, [])


def test_concurrent_creates_of_one_person_make_one_record(platform: Platform) -> None:
    clients = [platform.client("wang") for _ in range(6)]
    person = complete(id_number=id_number(seq=77))
    ids = [uuid7() for _ in clients]
    results: dict[int, dict[str, Any]] = {}
    barrier = threading.Barrier(len(clients))

    def push(i: int) -> None:
        barrier.wait()
        (results[i],) = clients[i].push([clients[i].op(ids[i], "create", dict(person))])

    threads = [threading.Thread(target=push, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(r["status"] for r in results.values())
    assert statuses == ["applied"] + ["merged_into"] * 5, statuses
    winner = next(ids[i] for i, r in results.items() if r["status"] == "applied")
    assert all(r["record_id"] == winner for r in results.values())
    assert all(r["merged_into"] == winner for r in results.values() if r["status"] == "merged_into")
    assert count(platform, db.records, db.records.c.deleted.is_(False)) == 1
    page = clients[0].pull()
    assert [r["id"] for r in page["records"]] == [winner]
    assert sorted(a["old"] for a in page["aliases"]) == sorted(i for i in ids if i != winner)
    # a later update naming an old id lands on the canonical record
    loser = next(i for i in ids if i != winner)
    (u,) = clients[0].push([clients[0].op(loser, "update", {"occupation": "教师"}, base_version=1)])
    assert (u["status"], u["merged_into"], u["version"]) == ("merged_into", winner, 2)


def test_update_arriving_before_its_create_creates_the_record(platform: Platform) -> None:
    """An update with a null base for an unknown record stands in for its create (it has a
    grid); the late create then fills in the rest without overwriting the newer edit."""
    c = platform.client("wang")
    rid = uuid7()
    create = c.op(rid, "create", complete(phone="13800138000"))
    update = c.op(rid, "update", {"phone": "13911112222", "grid": GRID_A})  # made later
    (first,) = c.push([update])
    assert first["status"] == "applied" and first["version"] == 1
    (second,) = c.push([create])
    assert second["status"] == "applied" and second["conflicts"] == []
    record = c.record(rid).json()
    assert record["data"]["phone"] == "13911112222"  # the newer edit survives the late create
    assert record["data"]["name"] == "张三" and record["status"] == "complete"


def test_update_before_its_create_without_a_grid_waits_for_the_create(platform: Platform) -> None:
    c = platform.client("wang")
    rid = uuid7()
    create = c.op(rid, "create", complete(phone="13800138000"))
    update = c.op(rid, "update", {"phone": "13911112222"})
    (first,) = c.push([update])
    assert first["status"] == "rejected" and first["reason"]["code"] == "unknown_record"
    assert first["reason"]["retryable"] is True
    assert c.record(rid).status_code == 404
    assert [r["status"] for r in c.push([create, update])] == ["applied", "applied"]
    assert c.record(rid).json()["data"]["phone"] == "13911112222"


def test_update_with_a_base_for_an_unknown_record_is_retried(platform: Platform) -> None:
    c = platform.client("wang")
    rid = uuid7()
    early = c.op(rid, "update", {"occupation": "教师"}, base_version=1)
    (r,) = c.push([early])
    assert (
        r["status"] == "rejected"
        and r["reason"]["code"] == "unknown_record"
        and r["reason"]["retryable"]
    )
    (made,) = c.push([c.op(rid, "create", complete())])
    assert made["version"] == 1
    (again,) = c.push([early])  # the same op id: not remembered, so it is applied now
    assert again["status"] == "applied" and again["version"] == 2


def test_replaying_a_batch_changes_nothing(platform: Platform) -> None:
    c = platform.client("wang")
    rid = uuid7()
    batch = [
        c.op(rid, "create", complete()),
        c.op(rid, "update", {"phone": "13911112222"}, base_version=1),
        c.op(
            uuid7(), "create", complete(id_number=id_number(seq=55), _status="complete", phone="12")
        ),
    ]
    first = c.push(batch)
    assert [r["status"] for r in first] == ["applied", "applied", "rejected"]
    before = platform.dump()
    again = c.push(batch)
    assert [r["status"] for r in again] == ["duplicate_op"] * 3
    assert [r["original_status"] for r in again] == ["applied", "applied", "rejected"]
    assert [(r["record_id"], r["version"]) for r in again] == [
        (r["record_id"], r["version"]) for r in first
    ]
    assert platform.dump() == before


def test_invalid_complete_record_is_quarantined_and_reported(platform: Platform) -> None:
    c = platform.client("wang")
    rid = uuid7()
    (r,) = c.push([c.op(rid, "create", complete(phone="12345"))])
    assert r["status"] == "rejected" and r["reason"]["code"] == "invalid"
    assert [i["field"] for i in r["reason"]["issues"]] == ["phone"]
    assert r["reason"]["issues"][0]["message_zh"] and r["reason"]["issues"][0]["message_en"]
    assert count(platform, db.quarantine, db.quarantine.c.record_id == rid) == 1
    assert c.record(rid).status_code == 404
    # the same values as a draft are accepted: drafts only get shape checks
    (d,) = c.push([c.op(rid, "create", {**complete(phone="12345"), "_status": "draft"})])
    assert d["status"] == "applied"


def test_a_second_live_record_with_the_same_key_is_refused(platform: Platform) -> None:
    c = platform.client("wang")
    created(c, id_number=id_number(seq=11))
    other = created(c, id_number=id_number(seq=13), name="李四")
    (r,) = c.push([c.op(other, "update", {"id_number": id_number(seq=11)}, base_version=1)])
    assert r["status"] == "rejected" and r["reason"]["code"] == "duplicate_key"
    assert c.record(other).json()["data"]["id_number"] == id_number(seq=13)


def test_both_generations_of_one_id_number_are_one_person(platform: Platform) -> None:
    """A 15-digit number and its 18-digit form are one natural key, in either order and
    within one push (``app.core.naturalkeys``, the rule the device's guard uses too)."""
    c = platform.client("wang")
    held = created(c, id_number=id_number(seq=31))
    (r,) = c.push([c.op(uuid7(), "create", complete(id_number=id_number_15(seq=31)))])
    assert (r["status"], r["merged_into"]) == ("merged_into", held)
    old = created(c, id_number=id_number_15(seq=33))
    (r,) = c.push([c.op(uuid7(), "create", complete(id_number=id_number(seq=33)))])
    assert (r["status"], r["merged_into"]) == ("merged_into", old)
    pair = [uuid7(), uuid7()]
    a, b = c.push(
        [
            c.op(pair[0], "create", complete(id_number=id_number_15(seq=35))),
            c.op(pair[1], "create", complete(id_number=id_number(seq=35))),
        ]
    )
    assert (a["status"], b["status"], b["merged_into"]) == ("applied", "merged_into", pair[0])
    other = created(c, id_number=id_number(seq=37), name="李四")
    (r,) = c.push([c.op(other, "update", {"id_number": id_number_15(seq=31)}, base_version=1)])
    assert r["status"] == "rejected" and r["reason"]["code"] == "duplicate_key"


def test_deleted_records_release_their_key(platform: Platform) -> None:
    c = platform.client("wang")
    first = created(c, id_number=id_number(seq=21))
    c.push([c.op(first, "delete", {}, base_version=1)])
    second = created(c, id_number=id_number(seq=21))
    assert second != first


def test_base_version_ahead_is_refused_whole(platform: Platform) -> None:
    c = platform.client("wang")
    rid = created(c)
    before = platform.dump()
    resp = c.push_raw(
        [
            c.op(uuid7(), "create", complete(id_number=id_number(seq=3))),
            c.op(rid, "update", {"phone": "13911112222"}, base_version=9),
        ]
    )
    assert resp.status_code == 409
    err = resp.json()["error"]
    assert (err["code"], err["index"]) == ("base_ahead", 1)
    assert platform.dump() == before


def test_a_field_changed_back_before_the_sync_keeps_the_last_value(platform: Platform) -> None:
    """Found while reducing a stateful-test failure: a person typed a new phone number and
    then the old one again, both offline. Both ops start from version 1, so the second one's
    value equals its base; the server took that for "not changed" and kept the first one's
    number: the person's last value was lost (and the pull then overwrote the device)."""
    c = platform.client("wang")
    rid = created(c, phone="13800000001")
    (first, back) = c.push(
        [
            c.op(rid, "update", {"phone": "13800000002"}, base_version=1),
            c.op(rid, "update", {"phone": "13800000001"}, base_version=1),
        ]
    )
    assert (first["version"], back["version"], back["conflicts"]) == (2, 3, [])
    record = c.record(rid).json()
    assert record["data"]["phone"] == "13800000001" and record["conflict"] is None


def test_a_record_deleted_and_restored_before_the_sync_stays_live(platform: Platform) -> None:
    """The same for a record: deleted, then restored without other edits, both offline."""
    c = platform.client("wang")
    rid = created(c)
    c.push([c.op(rid, "delete", {}, base_version=1), c.op(rid, "update", {}, base_version=1)])
    record = c.record(rid).json()
    assert record["deleted"] is False and record["conflict"] is None


def test_a_retry_after_the_record_left_the_scope_gets_the_stored_answers(
    platform: Platform,
) -> None:
    """The answer to a push was lost; meanwhile a supervisor moved the record to a grid the
    worker does not have. The retry is answered from the op log (duplicate_op), not 403."""
    wang, chen = platform.client("wang"), platform.client("chen")
    rid = uuid7()
    ops = [wang.op(rid, "create", complete()), wang.op(rid, "update", {"occupation": "教师"})]
    first = wang.push(ops)
    chen.push([chen.op(rid, "update", {"grid": GRID_B}, base_version=first[-1]["version"])])
    again = wang.push(ops)
    assert [r["status"] for r in again] == ["duplicate_op", "duplicate_op"]
    assert [r["original_status"] for r in again] == [r["status"] for r in first]
    fresh = wang.push_raw([wang.op(rid, "update", {"occupation": "医生"})])
    assert fresh.status_code == 403  # a new op on it is still out of scope
