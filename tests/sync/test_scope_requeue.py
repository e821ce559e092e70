"""Ops the platform refused as ``out_of_scope`` because the worker's grid was taken away are
sent again once the grid is given back (PROTOCOL.md §11 rule 3a), over the real server on
loopback HTTP with real device stores: the platform gets the offline edit and the new record,
merged with what changed meanwhile; a ``bad_value`` refusal stays set aside; nothing is sent
twice when the grid enters again."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from sync import replica
from sync.server import admin, db
from tests.factories import resident
from tests.sync import devicekit
from tests.sync.conftest import Platform

db_url = devicekit.db_url  # fixture: SQLite only, the subject is the client
devices = devicekit.devices  # fixture
GRID_A, GRID_B = devicekit.GRID_A, devicekit.GRID_B


def _sent(dev: Any) -> list[str]:
    """The op ids of every push request the device sends, in order (answered or not)."""
    sent: list[str] = []
    real = dev.client.push

    def push(ops: Any, *rest: Any) -> Any:
        sent.extend(op["op_id"] for op in ops)
        return real(ops, *rest)

    dev.client.push = push
    return sent


def _platform(platform: Platform, record_id: str) -> tuple[int, dict[str, Any]] | None:
    r = db.records.c
    with platform.engine.connect() as conn:
        row = conn.execute(select(r.version, r.data).where(r.id == record_id)).first()
    return None if row is None else (int(row.version), db.loads(row.data))


def _logged(platform: Platform, device_id: str) -> list[str]:
    """Op ids the platform logged for this device (applied, or refused for good)."""
    o = db.ops.c
    with platform.engine.connect() as conn:
        return [r.op_id for r in conn.execute(select(o.op_id).where(o.device_id == device_id))]


def _clean(dev: Any) -> None:
    conn = dev.store.conn
    assert conn.execute("SELECT count(*) FROM records WHERE dirty = 1").fetchone()[0] == 0
    assert replica.pending_count(dev.store) == 0


def _setup(platform: Platform, devices: Any) -> tuple[Any, Any, str]:
    """wang holds a record of grid B (version 1) from the platform."""
    admin.set_user_grids(platform.engine, "wang", [GRID_A, GRID_B])
    root = platform.client("root")
    (dev,) = devices(1)
    rid = "0190c5e4-0000-7000-8000-000000000001"
    op = root.op(rid, fields={**resident(seq=11, name="李四", grid=GRID_B), "phone": "13900000000"})
    assert root.push([op])[0]["status"] == "applied"
    dev.sync()
    assert dev.get(rid).data["name"] == "李四"
    return dev, root, rid


def test_ops_refused_while_the_grid_was_away_reach_the_platform_when_it_comes_back(
    platform: Platform, devices: Any
) -> None:
    dev, root, rid = _setup(platform, devices)
    dev.edit(rid, name="李四新")  # offline: an edit ...
    new = dev.save("resident", resident(seq=12, name="王五", grid=GRID_B))  # ... and a record
    admin.set_user_grids(platform.engine, "wang", [GRID_A])  # grid B taken away
    meanwhile = root.op(rid, "update", fields={"phone": "13911112222"}, base_version=1)
    assert root.push([meanwhile])[0]["version"] == 2  # someone else edits another field

    refused = dev.sync()
    assert refused.rejected == 2
    aside = replica.rejected_ops(dev.store)
    assert [r["result"]["reason"]["code"] for r in aside] == ["out_of_scope"] * 2
    assert [r["record_id"] for r in aside] == [rid, new.id]
    original_ids = [r["op_id"] for r in aside]
    assert _platform(platform, new.id) is None
    assert root.record(new.id).status_code == 404

    admin.set_user_grids(platform.engine, "wang", [GRID_A, GRID_B])  # given back
    sent = _sent(dev)
    back = dev.sync()

    version, data = _platform(platform, rid) or (0, {})
    # a base older than the platform's (1 < 2): merged field by field, nothing lost
    assert version == 3 and data["name"] == "李四新" and data["phone"] == "13911112222"
    created = _platform(platform, new.id)
    assert created is not None and created[0] == 1 and created[1]["name"] == "王五"
    assert sent == original_ids  # in their order, once, under their own ids (403: not logged)
    assert back.new_grids == 1 and back.requeued == 2
    assert (back.applied, back.rejected, back.conflicts) == (2, 0, 0)
    assert set(original_ids) <= set(_logged(platform, dev.store.device_id))
    _clean(dev)
    assert replica.rejected_ops(dev.store) == []
    assert dev.get(rid).data["name"] == "李四新" and dev.get(rid).data["phone"] == "13911112222"

    again = dev.sync()
    assert again.pushed == 0 and sent == original_ids  # nothing more to send
    _clean(dev)
    assert dev.get(rid).data == data and dev.get(new.id).data == created[1]

    # the grid enters once more: nothing is queued or sent again
    admin.set_user_grids(platform.engine, "wang", [GRID_A])
    dev.sync()
    admin.set_user_grids(platform.engine, "wang", [GRID_A, GRID_B])
    twice = dev.sync()
    assert twice.new_grids == 1 and twice.requeued == 0 and twice.pushed == 0
    assert sent == original_ids
    assert _platform(platform, rid) == (version, data)
    _clean(dev)


def test_a_bad_value_refusal_stays_set_aside_when_the_grid_comes_back(
    platform: Platform, devices: Any
) -> None:
    dev, _root, rid = _setup(platform, devices)
    bad = dev.save("house", {"address_text": {"not": "text"}, "grid": GRID_B})
    dev.edit(rid, name="李四新")
    admin.set_user_grids(platform.engine, "wang", [GRID_A])
    dev.sync()
    codes = {r["record_id"]: r["result"]["reason"]["code"] for r in replica.rejected_ops(dev.store)}
    assert codes == {bad.id: "bad_value", rid: "out_of_scope"}

    admin.set_user_grids(platform.engine, "wang", [GRID_A, GRID_B])
    sent = _sent(dev)
    back = dev.sync()

    assert (_platform(platform, rid) or (0, {}))[1]["name"] == "李四新"
    assert back.requeued == 1 and back.rejected == 0 and len(sent) == 1
    (left,) = replica.rejected_ops(dev.store)
    assert left["record_id"] == bad.id and left["result"]["reason"]["code"] == "bad_value"
    assert _platform(platform, bad.id) is None
    assert dev.sync().pushed == 0


def test_an_op_refused_in_the_results_goes_back_under_a_new_id(
    platform: Platform, devices: Any
) -> None:
    """An ``out_of_scope`` answered in the push's results (the grid changed between the
    request's check and the op) is logged by the platform, which answers a replay of its id
    from the log as refused again (§5.3): re-queued, it takes a new id and is applied."""
    dev, root, rid = _setup(platform, devices)
    dev.edit(rid, name="李四新")
    admin.set_user_grids(platform.engine, "wang", [GRID_A])
    dev.sync()
    ((seq, op_id, result),) = dev.store.conn.execute(
        "SELECT seq, op_id, result FROM outbox WHERE state = 'rejected'"
    ).fetchall()
    # a refusal in the results is logged: its replay is answered from the log, refused again
    invalid = root.op(
        "0190c5e4-0000-7000-8000-0000000000ff",
        fields={**resident(seq=13, grid=GRID_A), "id_number": "1", "_status": "complete"},
    )
    assert root.push([invalid])[0]["status"] == "rejected"
    replayed = root.push([invalid])[0]
    assert (replayed["status"], replayed["original_status"]) == ("duplicate_op", "rejected")
    # ... so make the device's refusal look like one answered in the results
    answer = {k: v for k, v in json.loads(result).items() if k != "request_error"}
    dev.store.conn.execute("UPDATE outbox SET result = ? WHERE seq = ?", (json.dumps(answer), seq))

    admin.set_user_grids(platform.engine, "wang", [GRID_A, GRID_B])
    sent = _sent(dev)
    back = dev.sync()

    assert (_platform(platform, rid) or (0, {}))[1]["name"] == "李四新"
    assert back.requeued == 1 and len(sent) == 1 and sent[0] != op_id
    assert sent[0].startswith(f"{dev.store.device_id}:")
    _clean(dev)
    assert dev.sync().pushed == 0


def test_a_refused_create_deleted_offline_goes_back_with_its_delete(
    platform: Platform, devices: Any
) -> None:
    """The delete the device settled locally (the platform never had the record) follows its
    create back: the platform must not get a record the person deleted."""
    dev, _root, _rid = _setup(platform, devices)
    admin.set_user_grids(platform.engine, "wang", [GRID_A])
    new = dev.save("resident", resident(seq=14, name="赵六", grid=GRID_B))
    dev.sync()
    dev.store.delete(new.id, author="wang")
    dev.sync()
    states = dev.store.conn.execute(
        "SELECT kind, state FROM outbox WHERE record_id = ? ORDER BY seq", (new.id,)
    ).fetchall()
    assert states == [("create", "rejected"), ("delete", "rejected")]

    admin.set_user_grids(platform.engine, "wang", [GRID_A, GRID_B])
    sent = _sent(dev)
    back = dev.sync()

    assert back.requeued == 2 and len(sent) == 2
    version, data = _platform(platform, new.id) or (0, {})
    r = db.records.c
    with platform.engine.connect() as conn:
        deleted = conn.execute(select(r.deleted).where(r.id == new.id)).scalar_one()
    assert version == 2 and deleted
    _clean(dev)
    assert dev.sync().pushed == 0
