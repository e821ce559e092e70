"""Two devices and the real server (SQLite and PostgreSQL): push, pull, converge; duplicates
merged with every reference rewritten; dirty records rebased, conflicts kept and resolved."""

from __future__ import annotations

from typing import Any

from app.core.store import Store
from sync import replica
from tests.factories import id_number, resident
from tests.sync import devicekit
from tests.sync.devicekit import GRID_A, Device

devices = devicekit.devices  # fixture


def _house(code: str = "H-001", **extra: Any) -> dict[str, Any]:
    return {"house_code": code, "address_text": "幸福路12号3栋", "grid": GRID_A, **extra}


def _live(store: Store) -> dict[str, tuple[dict[str, Any], str]]:
    rows = store.conn.execute("SELECT id, data, status FROM records WHERE deleted = 0").fetchall()
    import json

    return {i: (json.loads(d), s) for i, d, s in rows}


def _same(*devs: Device) -> None:
    first = _live(devs[0].store)
    for dev in devs[1:]:
        assert _live(dev.store) == first


def test_two_devices_push_pull_and_converge(devices: Any) -> None:
    a, b = devices(2)
    house = a.save("house", _house())
    people = [a.save("resident", resident(seq=i, house_ref=house.id)) for i in (11, 13)]
    gone = b.save("resident", resident(seq=15, name="李四"))
    s1 = a.sync()
    assert (s1.pushed, s1.applied, s1.rejected) == (3, 3, 0)
    s2 = b.sync()
    assert s2.pushed == 1 and s2.pulled >= 4
    b.edit(people[0].id, phone="13911112222")
    b.store.delete(gone.id, author="li")
    b.sync()
    a.sync()
    _same(a, b)
    assert a.get(people[0].id).data["phone"] == "13911112222"
    assert a.get(gone.id).deleted and b.get(gone.id).deleted
    for dev in (a, b):
        assert replica.pending_count(dev.store) == 0
        assert dev.store.count(dirty=True) == 0
        record = dev.get(people[0].id)
        assert record.server_version == 2 and record.base is not None
        assert record.base["phone"] == "13911112222"
    assert a.store.referrers(house.id) == b.store.referrers(house.id)
    assert set(a.store.referrers(house.id)) == {p.id for p in people}
    assert a.store.meta("last_sync") is not None


def test_outbox_results_are_kept_per_op(devices: Any) -> None:
    (a,) = devices(1)
    record = a.save("resident", resident())
    a.edit(record.id, phone="13700000000")
    a.sync()
    rows = a.store.conn.execute("SELECT state, result FROM outbox ORDER BY seq").fetchall()
    assert [r[0] for r in rows] == ["applied", "applied"]
    import json

    versions = [json.loads(r[1])["version"] for r in rows]
    assert versions == [1, 2]


def test_same_house_code_on_two_devices_merges_and_rewrites_references(devices: Any) -> None:
    a, b = devices(2)
    house_a = a.save("house", _house("H-777"))
    house_b = b.save("house", _house("H-777", owner_phone="13800001111"))
    person = b.save("resident", resident(seq=21, house_ref=house_b.id))
    b.store.autosave_put("slot1", "resident", None, {"name": "王五", "house_ref": house_b.id})
    a.sync()
    summary = b.sync()
    assert summary.merged == 1
    # b's house took a's id; b's resident points at it; nothing refers to the old id any more
    assert b.store.get(house_b.id) is None
    merged = b.get(house_a.id)
    assert merged.data["owner_phone"] == "13800001111" and not merged.dirty
    assert b.get(person.id).data["house_ref"] == house_a.id
    assert b.store.referrers(house_a.id) == [person.id]
    assert b.store.referrers(house_b.id) == []
    assert b.store.autosaves()[0][3]["house_ref"] == house_a.id
    kinds = [h.kind for h in b.store.history(house_a.id)]
    assert "merge" in kinds
    assert [h.kind for h in b.store.history(house_b.id)] == ["create"]  # old rows kept
    rows = b.store.conn.execute("SELECT state, record_id FROM outbox ORDER BY seq").fetchall()
    assert rows[0] == ("merged", house_a.id)
    a.sync()
    assert a.get(person.id).data["house_ref"] == house_a.id
    assert a.get(house_a.id).data["owner_phone"] == "13800001111"
    _same(a, b)


def test_same_id_number_created_twice_becomes_one_person(devices: Any) -> None:
    a, b = devices(2)
    number = id_number(seq=31)
    pa = a.save("resident", resident(seq=31, phone="13800000001"))
    pb = b.save("resident", resident(seq=31, former_name="小明"))
    a.sync()
    b.sync()
    a.sync()
    for dev in (a, b):
        people = [i for i, (d, _s) in _live(dev.store).items() if d.get("id_number") == number]
        assert people == [pa.id]
    assert b.store.get(pb.id) is None
    assert a.get(pa.id).data["former_name"] == "小明"
    _same(a, b)


def test_disjoint_edits_during_a_sync_are_rebased_not_overwritten(devices: Any) -> None:
    a, b = devices(2)
    record = a.save("resident", resident(seq=41))
    a.sync()
    b.sync()
    a.edit(record.id, phone="13911110000")
    a.sync()

    def edit_while_pulling(phase: str, done: int, _total: int) -> None:
        if phase == "pull" and done == 0:  # a person types while the sync runs
            b.edit(record.id, former_name="曾用名")

    b.sync(progress=edit_while_pulling)
    mine = b.get(record.id)
    assert mine.data["former_name"] == "曾用名"  # the local edit survived the pull
    assert mine.data["phone"] == "13911110000"  # the server's edit came in
    assert mine.dirty and mine.conflict is None
    assert mine.base is not None and "former_name" not in mine.base
    b.sync()
    a.sync()
    _same(a, b)
    assert a.store.count(conflict=True) == 0


def test_same_field_conflict_is_kept_side_by_side_and_resolved_everywhere(devices: Any) -> None:
    a, b = devices(2)
    record = a.save("resident", resident(seq=51, phone="13800000000"))
    a.sync()
    b.sync()
    a.edit(record.id, phone="13911111111")
    a.sync()

    def edit_while_pulling(phase: str, done: int, _total: int) -> None:
        if phase == "pull" and done == 0:
            b.edit(record.id, phone="13922222222")

    b.sync(progress=edit_while_pulling)
    local = b.get(record.id)
    assert local.data["phone"] == "13922222222"  # never overwritten
    [entry] = local.conflict
    assert (entry["field"], entry["base"], entry["mine"], entry["theirs"]) == (
        "phone",
        "13800000000",
        "13922222222",
        "13911111111",
    )
    summary = b.sync()  # the edit reaches the server: a hard conflict there too
    assert summary.conflicts == 1 and summary.open_conflicts == 1
    [entry] = b.get(record.id).conflict
    assert {entry["mine"], entry["theirs"]} == {"13922222222", "13911111111"}
    assert entry["mine"] == "13922222222"
    a.sync()
    [theirs] = a.get(record.id).conflict
    assert theirs["mine"] == "13911111111" and theirs["theirs"] == "13922222222"
    assert replica.open_conflicts(a.store) == 1

    op_id = replica.resolve(b.store, record.id, {"phone": "13933333333"}, author="wang")
    assert b.get(record.id).conflict is None and b.get(record.id).data["phone"] == "13933333333"
    op = b.store.conn.execute("SELECT kind, base_version FROM outbox WHERE op_id = ?", (op_id,))
    assert op.fetchone() == ("resolve", b.get(record.id).server_version)
    assert b.sync().open_conflicts == 0
    assert a.sync().open_conflicts == 0
    for dev in (a, b):
        got = dev.get(record.id)
        assert got.conflict is None and got.data["phone"] == "13933333333"
    _same(a, b)


def test_rejected_op_stays_on_the_device_and_is_resent_in_full(devices: Any) -> None:
    (a,) = devices(1)
    bad = resident(seq=61)
    bad["birth_date"] = "1999-01-01"  # contradicts the ID number: invalid when complete
    record = a.save("resident", bad, status="complete")
    summary = a.sync()
    assert summary.rejected == 1 and summary.applied == 0
    [row] = replica.rejected_ops(a.store)
    assert row["result"]["reason"]["code"] == "invalid"
    assert row["result"]["reason"]["message_zh"]
    assert a.get(record.id).dirty  # its values are not on the server
    # the person fixes one field; the next op must carry everything (the create was refused)
    a.edit(record.id, birth_date="1985-06-15")
    summary = a.sync()
    assert summary.applied == 1 and summary.rejected == 0
    kind, fields = a.store.conn.execute(
        "SELECT kind, fields FROM outbox ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    assert kind == "create" and '"name"' in fields and '"_status"' in fields
    got = a.get(record.id)
    assert not got.dirty and got.status == "complete" and got.server_version == 1


def test_progress_and_cancel_are_called_between_batches(devices: Any) -> None:
    (a,) = devices(1)
    a.store.insert_many("resident", [(None, resident(seq=i), "draft") for i in range(100, 113)])
    calls: list[tuple[str, int, int]] = []
    summary = a.sync(batch=5, chunk=4, progress=lambda *c: calls.append(c))
    pushes = [c for c in calls if c[0] == "push"]
    pulls = [c for c in calls if c[0] == "pull"]
    assert pushes[0] == ("push", 0, 13) and pushes[-1] == ("push", 13, 13)
    assert [c[1] for c in pushes] == [0, 5, 10, 13]
    assert [c[1] for c in pulls] == [0, 4, 8, 12, 13]
    assert summary.pushed == 13 and summary.pulled == 13 and not summary.cancelled
    (b,) = devices(1)
    asked: list[int] = []

    def cancel() -> bool:
        asked.append(1)
        return len(asked) > 2  # two pull chunks, then stop

    summary = b.sync(chunk=5, cancel=cancel)
    assert summary.cancelled and summary.pulled == 5
    assert b.store.meta("last_sync") is None


def test_a_value_typed_back_during_a_sync_survives_the_pull(devices: Any) -> None:
    """Typed 张三 and pushed; typed 王五 back before the pull: the pull brings the server's 张三
    (the base still says 王五), the device keeps 王五 until its own op reaches the platform,
    and then both devices agree on it."""
    a, b = devices(2)
    rid = a.save("resident", resident(seq=41, name="王五")).id
    a.sync()
    b.sync()
    a.save("resident", {**a.store.get(rid).data, "name": "张三"}, record_id=rid)
    ops = replica.next_batch(a.store, 0, 100)  # the push half of a sync ...
    replica.record_results(a.store, ops, a.client.push([op.wire for op in ops]).results)
    a.save("resident", {**a.store.get(rid).data, "name": "王五"}, record_id=rid)  # ... typing
    page = a.client.pull(replica.read_cursor(a.store, _scope(a)), 100)  # ... the pull half
    replica.apply_pull(a.store, page, _scope(a))
    assert a.store.get(rid).data["name"] == "王五"
    a.sync()
    b.sync()
    assert b.store.get(rid).data["name"] == "王五" == a.store.get(rid).data["name"]


def _scope(dev: Any) -> str:
    return replica.scope_of(dev.client.base_url, dev.user)
