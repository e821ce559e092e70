"""sync.replica on a local Store alone: pulled chunks, rebase, id rewrites, results, resolve."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core import ids
from app.core.forms import FormSet
from app.core.store import Store
from sync import replica
from sync.merge import DELETED, STATUS
from sync.protocol import Alias, ConflictEntry, OpResult, PulledRecord, PullResponse, Reason
from sync.replica import rows as replica_rows
from tests.factories import id_number, resident

GRID = "330106001001-01"
SCOPE = "http://server|wang"


def pulled(record_id: str, version: int, data: dict[str, Any], **kw: Any) -> PulledRecord:
    return PulledRecord(
        id=record_id,
        form=kw.pop("form", "resident"),
        form_version=1,
        version=version,
        data=data,
        status=kw.pop("status", "draft"),
        deleted=kw.pop("deleted", False),
        conflict=kw.pop("conflict", None),
        updated_at=ids.now_iso(),
        updated_by=kw.pop("by", "li"),
    )


def page(*records: PulledRecord, cursor: int = 1, **kw: Any) -> PullResponse:
    return PullResponse(
        records=list(records),
        aliases=kw.get("aliases", []),
        removed=kw.get("removed", []),
        cursor=cursor,
        more=False,
    )


def ack(store: Store, version: int = 1) -> None:
    """Answer every pending op as applied."""
    ops = replica.next_batch(store, 0, 1000)
    results = [
        OpResult(op_id=o.op_id, status="applied", record_id=o.record_id, version=version)
        for o in ops
    ]
    replica.record_results(store, ops, results)


def synced(store: Store, data: dict[str, Any], version: int = 1) -> str:
    """A record the device created, pushed and pulled back: clean, with a base."""
    rec = store.save("resident", data)
    ack(store, version)
    replica.apply_pull(store, page(pulled(rec.id, version, rec.data)), SCOPE)
    got = store.get(rec.id)
    assert got is not None and not got.dirty and got.base is not None
    return rec.id


# -- pulls ------------------------------------------------------------------------------------


def test_a_pulled_chunk_and_its_cursor_land_together(store: Store) -> None:
    a, b = ids.uuid7(), ids.uuid7()
    tally = replica.apply_pull(
        store, page(pulled(a, 1, resident(seq=1)), pulled(b, 3, resident(seq=3)), cursor=7), SCOPE
    )
    assert (tally.inserted, tally.records) == (2, 2)
    assert replica.read_cursor(store, SCOPE) == 7
    assert replica.read_cursor(store, "http://other|wang") == 0  # another server: start over
    got = store.get(b)
    assert got.server_version == 3 and not got.dirty and got.base[STATUS] == "draft"
    assert store.search("张三") and store.find_by_key("resident", resident(seq=3)) == [b]
    assert store.pending_ops() == []  # pulled records are not local changes


def test_a_failure_inside_a_chunk_leaves_neither_rows_nor_cursor(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    replica.apply_pull(store, page(pulled(ids.uuid7(), 1, resident(seq=1)), cursor=5), SCOPE)
    calls = {"n": 0}
    real = store.derive

    def flaky(form: Any, data: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return real(form, data)

    monkeypatch.setattr(store, "derive", flaky)
    chunk = page(
        pulled(ids.uuid7(), 1, resident(seq=3)), pulled(ids.uuid7(), 1, resident(seq=5)), cursor=9
    )
    with pytest.raises(OSError):
        replica.apply_pull(store, chunk, SCOPE)
    assert store.count() == 1 and replica.read_cursor(store, SCOPE) == 5


def test_a_clean_record_takes_the_server_state(store: Store) -> None:
    rid = synced(store, resident(seq=11))
    new = {**resident(seq=11), "phone": "13900000000"}
    replica.apply_pull(store, page(pulled(rid, 2, new, status="complete"), cursor=2), SCOPE)
    got = store.get(rid)
    assert got.data["phone"] == "13900000000" and got.status == "complete"
    assert got.base == {**new, STATUS: "complete"} and got.server_version == 2
    last = store.history(rid)[-1]
    assert last.kind == "pull" and last.changes["phone"] == ["13800138000", "13900000000"]


def test_an_older_version_than_known_is_ignored(store: Store) -> None:
    rid = synced(store, resident(seq=13), version=4)
    replica.apply_pull(store, page(pulled(rid, 3, {**resident(seq=13), "name": "旧"})), SCOPE)
    assert store.get(rid).data["name"] == "张三"


def test_a_pulled_tombstone_deletes_a_clean_copy(store: Store) -> None:
    rid = synced(store, resident(seq=15))
    replica.apply_pull(store, page(pulled(rid, 2, resident(seq=15), deleted=True)), SCOPE)
    got = store.get(rid)
    assert got.deleted and not store.search("张三") and store.count() == 0


def test_removed_from_scope_drops_clean_copies_only(store: Store) -> None:
    clean = synced(store, resident(seq=17))
    dirty = synced(store, resident(seq=19))
    store.save("resident", {**store.get(dirty).data, "phone": "13100000000"}, record_id=dirty)
    replica.apply_pull(store, page(removed=[clean, dirty], cursor=3), SCOPE)
    assert store.get(clean) is None
    assert store.get(dirty).data["phone"] == "13100000000"


VALUES = st.sampled_from([None, "v1", "v2", "v3"])
STATES = st.fixed_dictionaries({}, optional={f: VALUES for f in ("name", "phone", "former_name")})


@settings(max_examples=300)
@given(STATES, STATES, STATES)
def test_rebase_keeps_every_local_edit_and_takes_the_rest(
    base: dict[str, Any], local: dict[str, Any], server: dict[str, Any]
) -> None:
    merged, conflicts = replica.rebase(base, local, server)
    fields = set(base) | set(local) | set(server)
    by_field = {c["field"]: c for c in conflicts}
    for f in fields:
        b, mine, theirs = base.get(f), local.get(f), server.get(f)
        if mine != b:
            assert merged.get(f) == mine  # a local edit is never overwritten
        else:
            assert merged.get(f) == theirs  # an untouched field follows the server
        both_changed = mine != b and theirs != b and mine != theirs
        assert (f in by_field) == both_changed
        if both_changed:
            assert (by_field[f]["base"], by_field[f]["mine"], by_field[f]["theirs"]) == (
                b,
                mine,
                theirs,
            )


@settings(max_examples=300)
@given(STATES, STATES, STATES, st.sets(st.sampled_from(["name", "phone", "former_name"])))
def test_rebase_keeps_the_unsent_value_of_every_pending_field(
    base: dict[str, Any], local: dict[str, Any], server: dict[str, Any], pending: set[str]
) -> None:
    """A pending field keeps its local value even when it equals the base (typed, sent,
    typed back before the pull): the person's latest value is what the device shows."""
    merged, _conflicts = replica.rebase(base, local, server, pending=pending)
    for f in set(base) | set(local) | set(server) | pending:
        if f in pending or local.get(f) != base.get(f):
            assert merged.get(f) == local.get(f)
        else:
            assert merged.get(f) == server.get(f)


def test_a_dirty_record_is_rebased_with_conflicts_side_by_side(store: Store) -> None:
    rid = synced(store, resident(seq=21, phone="13000000000"))
    store.save(
        "resident",
        {**store.get(rid).data, "phone": "13111111111", "former_name": "阿三"},
        record_id=rid,
    )
    server = {**resident(seq=21), "phone": "13222222222", "name": "张叁"}
    replica.apply_pull(store, page(pulled(rid, 2, server), cursor=2), SCOPE)
    got = store.get(rid)
    assert got.dirty and got.server_version == 2
    assert got.data["phone"] == "13111111111"  # mine stays
    assert got.data["former_name"] == "阿三"  # mine stays
    assert got.data["name"] == "张叁"  # theirs comes in
    assert got.base["phone"] == "13222222222"
    [c] = got.conflict
    assert (c["field"], c["base"], c["mine"], c["theirs"]) == (
        "phone",
        "13000000000",
        "13111111111",
        "13222222222",
    )
    assert replica.open_conflicts(store) == 1
    # the unsent op still carries its old base version: the server merges from that snapshot
    [op] = store.pending_ops()
    assert op["base_version"] == 1


def test_a_local_delete_survives_a_pull_until_the_server_decides(store: Store) -> None:
    rid = synced(store, resident(seq=23))
    store.delete(rid, author="wang")
    replica.apply_pull(store, page(pulled(rid, 2, {**resident(seq=23), "phone": "1"})), SCOPE)
    assert store.get(rid).deleted
    conflict = [
        ConflictEntry(
            field=DELETED, kind="hard", base=False, server=False, incoming=True, provisional=False
        )
    ]
    replica.apply_pull(store, page(pulled(rid, 3, resident(seq=23), conflict=conflict)), SCOPE)
    got = store.get(rid)
    assert not got.deleted and got.conflict[0]["field"] == DELETED  # visible: a person decides
    assert got.conflict[0]["mine"] is True  # this device deleted it


def test_server_conflicts_say_which_side_is_mine(store: Store) -> None:
    rid = synced(store, resident(seq=25, phone="13000000000"))
    store.save("resident", {**store.get(rid).data, "phone": "13111111111"}, record_id=rid)
    ops = replica.next_batch(store, 0, 10)
    entry = ConflictEntry(
        field="phone",
        kind="hard",
        base="13000000000",
        server="13222222222",
        incoming="13111111111",
        provisional="13111111111",
    )
    results = [
        OpResult(op_id=ops[0].op_id, status="conflict", record_id=rid, version=3, conflicts=[entry])
    ]
    tally = replica.record_results(store, ops, results)
    assert tally.conflicts == 1 and not store.get(rid).dirty
    replica.apply_pull(
        store, page(pulled(rid, 3, resident(seq=25, phone="13111111111"), conflict=[entry])), SCOPE
    )
    [c] = store.get(rid).conflict
    assert (c["mine"], c["theirs"]) == ("13111111111", "13222222222")
    # a bystander device sees the same entry as server-versus-incoming
    other = Store(store.path.with_name("other.sqlite"), store.formset)
    try:
        replica.apply_pull(other, page(pulled(rid, 3, resident(seq=25), conflict=[entry])), SCOPE)
        [c] = other.get(rid).conflict
        assert (c["mine"], c["theirs"]) == ("13222222222", "13111111111")
    finally:
        other.close()


# -- push results -----------------------------------------------------------------------------


def test_results_mark_each_op_and_the_record(store: Store) -> None:
    a = store.save("resident", resident(seq=31))
    b = store.save("resident", resident(seq=33))
    c = store.save("resident", resident(seq=35))
    ops = replica.next_batch(store, 0, 10)
    retry = Reason(code="unknown_record", message_zh="稍后", message_en="later", retryable=True)
    final = Reason(code="invalid", message_zh="无效", message_en="invalid")
    results = [
        OpResult(
            op_id=ops[0].op_id,
            status="duplicate_op",
            original_status="applied",
            record_id=a.id,
            version=1,
        ),
        OpResult(op_id=ops[1].op_id, status="rejected", record_id=b.id, reason=retry),
        OpResult(op_id=ops[2].op_id, status="rejected", record_id=c.id, reason=final),
    ]
    tally = replica.record_results(store, ops, results)
    assert (tally.applied, tally.deferred, tally.rejected) == (1, 1, 1)
    states = store.conn.execute("SELECT state FROM outbox ORDER BY seq").fetchall()
    assert [s for (s,) in states] == ["applied", "pending", "rejected"]
    assert not store.get(a.id).dirty and store.get(a.id).server_version == 1
    assert store.get(b.id).dirty and store.get(c.id).dirty
    assert len(replica.next_batch(store, 0, 10)) == 1  # the retryable one, next run
    assert replica.rejected_ops(store)[0]["result"]["reason"]["code"] == "invalid"
    with pytest.raises(ValueError):
        replica.record_results(store, ops[:1], results[1:2])


def test_after_a_rejection_the_next_op_carries_everything(store: Store) -> None:
    rec = store.save("resident", resident(seq=41), status="complete")
    ops = replica.next_batch(store, 0, 10)
    replica.set_aside(store, ops[0], "invalid", "无效", "invalid")
    store.save(
        "resident", {**rec.data, "phone": "13700000000"}, record_id=rec.id, status="complete"
    )
    [op] = replica.next_batch(store, 0, 10)
    assert op.wire["kind"] == "create"  # the server never accepted the record
    assert op.wire["fields"]["name"] == "张三" and op.wire["fields"][STATUS] == "complete"
    again = replica.next_batch(store, 0, 10)[0]
    assert again.wire == op.wire  # persisted: a resend is the same op

    synced_id = synced(store, resident(seq=43))
    store.save("resident", {**store.get(synced_id).data, "name": "李四"}, record_id=synced_id)
    first = [o for o in replica.next_batch(store, 0, 10) if o.record_id == synced_id]
    replica.set_aside(store, first[0], "invalid", "无效", "invalid")
    store.save(
        "resident", {**store.get(synced_id).data, "phone": "13700000001"}, record_id=synced_id
    )
    [op] = [o for o in replica.next_batch(store, 0, 10) if o.record_id == synced_id]
    assert op.wire["kind"] == "update" and op.wire["base_version"] == 1
    assert op.wire["fields"] == {"name": "李四", "phone": "13700000001"}


# -- merged duplicates ------------------------------------------------------------------------


def test_rewrite_id_reaches_every_reference(store: Store) -> None:
    house = store.save("house", {"house_code": "H1", "address_text": "幸福路1号", "grid": GRID})
    person = store.save("resident", resident(seq=51, house_ref=house.id))
    unit = store.save("unit", {"name": "小店", "house_ref": house.id, "grid": GRID})
    store.autosave_put("s1", "resident", house.id, {"house_ref": house.id, "name": "王"})
    store.decide_duplicate(house.id, person.id, "different", author="wang")
    canonical = ids.uuid7()
    with store.transaction():
        replica.rewrite_id(store, house.id, canonical)
    assert store.get(house.id) is None
    moved = store.get(canonical)
    assert moved.data["house_code"] == "H1" and moved.dirty  # its create is still pending
    assert store.get(person.id).data["house_ref"] == canonical
    assert store.get(unit.id).data["house_ref"] == canonical
    assert sorted(store.referrers(canonical)) == sorted([person.id, unit.id])
    assert store.referrers(house.id) == []
    assert store.find_by_key("house", {"house_code": "H1"}) == [canonical]
    assert store.people_in_house("resident", canonical)[0][0] == person.id
    assert (
        store.autosaves()[0][2] == canonical and store.autosaves()[0][3]["house_ref"] == canonical
    )
    assert store.decisions(canonical)[0][0] == person.id
    ops = store.pending_ops()
    assert {o["record_id"] for o in ops} == {canonical, person.id, unit.id}
    assert all(o["fields"].get("house_ref") in (None, canonical) for o in ops)
    assert [h.kind for h in store.history(house.id)] == ["create"]  # append-only, kept
    note = store.history(canonical)[-1]
    assert note.kind == "merge" and note.changes["_merged_from"] == [house.id, canonical]


def test_rewrite_into_an_existing_copy_keeps_unsynced_typing(store: Store) -> None:
    theirs = ids.uuid7()
    replica.apply_pull(store, page(pulled(theirs, 1, resident(seq=53, phone="13000000000"))), SCOPE)
    mine = store.save("resident", resident(seq=53, former_name="二狗"))
    tally = replica.apply_pull(
        store, page(aliases=[Alias(old=mine.id, canonical=theirs)], cursor=2), SCOPE
    )
    assert tally.aliases == 1 and store.get(mine.id) is None
    got = store.get(theirs)
    assert got.data["former_name"] == "二狗" and got.data["phone"] == "13800138000"
    assert got.dirty
    assert {o["record_id"] for o in store.pending_ops()} == {theirs}


def test_a_pulled_tombstone_of_a_merged_id_is_not_resurrected(store: Store) -> None:
    old, canonical = ids.uuid7(), ids.uuid7()
    chunk = page(
        pulled(canonical, 2, resident(seq=55)),
        pulled(old, 2, resident(seq=57), deleted=True),
        aliases=[Alias(old=old, canonical=canonical)],
    )
    replica.apply_pull(store, chunk, SCOPE)
    assert store.get(old) is None and store.get(canonical) is not None


# -- resolve ----------------------------------------------------------------------------------


def test_resolve_queues_an_op_and_clears_the_chosen_conflicts(store: Store) -> None:
    rid = ids.uuid7()
    conflict = [
        ConflictEntry(
            field="phone", kind="hard", base="1", server="2", incoming="3", provisional="3"
        ),
        ConflictEntry(
            field="name", kind="hard", base="甲", server="乙", incoming="丙", provisional="丙"
        ),
    ]
    replica.apply_pull(
        store, page(pulled(rid, 5, resident(seq=61, phone="3"), conflict=conflict)), SCOPE
    )
    assert replica.open_conflicts(store) == 1
    op_id = replica.resolve(store, rid, {"phone": "2"}, author="wang")
    got = store.get(rid)
    assert got.data["phone"] == "2" and [c["field"] for c in got.conflict] == ["name"]
    assert replica.open_conflicts(store) == 1
    replica.resolve(store, rid, {"name": "乙", STATUS: "complete"}, author="wang")
    got = store.get(rid)
    assert got.conflict is None and got.status == "complete" and got.dirty
    assert replica.open_conflicts(store) == 0
    ops = store.pending_ops()
    assert [o["kind"] for o in ops] == ["resolve", "resolve"] and ops[0]["op_id"] == op_id
    assert ops[0]["base_version"] == 5 and ops[0]["fields"] == {"phone": "2"}
    assert [h.kind for h in store.history(rid)][-2:] == ["resolve", "resolve"]
    # a pull before the resolve is sent does not bring the decided conflict back
    replica.apply_pull(
        store, page(pulled(rid, 5, resident(seq=61, phone="3"), conflict=conflict), cursor=9), SCOPE
    )
    assert store.get(rid).conflict is None and store.get(rid).data["phone"] == "2"


def test_resolve_can_delete_or_keep(store: Store) -> None:
    rid = synced(store, resident(seq=63))
    replica.resolve(store, rid, {DELETED: True}, author="wang")
    assert store.get(rid).deleted and store.count() == 0
    op = store.pending_ops()[-1]
    assert op["fields"] == {DELETED: True}
    with pytest.raises(KeyError):
        replica.resolve(store, ids.uuid7(), {"phone": "1"})


def test_pending_count_and_json_shapes(store: Store) -> None:
    store.save("resident", resident(seq=71))
    assert replica.pending_count(store) == 1
    [op] = replica.next_batch(store, 0, 5)
    json.dumps(op.wire)  # the wire shape is plain JSON
    assert set(op.wire) == {
        "op_id",
        "record_id",
        "form",
        "kind",
        "base_version",
        "fields",
        "edited_at",
        "author",
    }


def test_a_delete_of_a_record_the_server_never_accepted_stays_on_the_device(store: Store) -> None:
    rec = store.save("resident", resident(seq=81, grid="330106002001-01"))
    [create] = replica.next_batch(store, 0, 10)
    replica.set_aside(store, create, "out_of_scope", "超出范围", "out of scope")
    store.delete(rec.id, author="wang")
    assert replica.next_batch(store, 0, 10) == []  # nothing to tell the server
    states = store.conn.execute("SELECT state, result FROM outbox ORDER BY seq").fetchall()
    assert [s for s, _ in states] == ["rejected", "rejected"]
    assert json.loads(states[1][1])["reason"]["code"] == "not_on_server"
    assert replica.pending_count(store) == 0 and store.get(rec.id).deleted


def test_a_partial_op_acknowledged_after_a_rejection_does_not_clear_dirty(store: Store) -> None:
    rec = store.save("resident", resident(seq=83), status="complete")
    store.save(
        "resident", {**rec.data, "phone": "13700000009"}, record_id=rec.id, status="complete"
    )
    ops = replica.next_batch(store, 0, 10)
    invalid = Reason(code="invalid", message_zh="无效", message_en="invalid")
    replica.record_results(
        store,
        ops,
        [
            OpResult(op_id=ops[0].op_id, status="rejected", record_id=rec.id, reason=invalid),
            OpResult(op_id=ops[1].op_id, status="applied", record_id=rec.id, version=1),
        ],
    )
    # the server holds only the phone: a pull must not overwrite the typed record
    assert store.get(rec.id).dirty
    replica.apply_pull(
        store, page(pulled(rec.id, 1, {"phone": "13700000009", "grid": GRID})), SCOPE
    )
    assert store.get(rec.id).data["name"] == "张三"
    store.save("resident", {**store.get(rec.id).data, "former_name": "阿三"}, record_id=rec.id)
    [op] = replica.next_batch(store, 0, 10)
    assert op.wire["kind"] == "update" and op.wire["fields"]["name"] == "张三"  # completed
    replica.record_results(
        store, [op], [OpResult(op_id=op.op_id, status="applied", record_id=rec.id, version=2)]
    )
    assert not store.get(rec.id).dirty  # a full op mended the chain


def test_folding_a_duplicate_keeps_the_canonical_copys_unsent_typing(store: Store) -> None:
    """Found by the stateful test: the same person created twice on one device, the platform
    merges the second into the first, and the person had just retyped the first one's name."""
    first = store.save("resident", resident(name="李四"))
    second = store.save("resident", resident(name="王五", phone="13900139000"))
    synced = json.dumps({**first.data, STATUS: "draft"}, ensure_ascii=False)
    store.conn.execute(
        "UPDATE records SET base = ?, server_version = 1 WHERE id = ?", (synced, first.id)
    )
    store.save("resident", {**first.data, "name": "李小四"}, record_id=first.id)  # unsent typing
    with store.transaction():
        replica.rewrite_id(store, second.id, first.id)
    kept = store.get(first.id)
    assert kept.data["name"] == "李小四"  # the canonical copy's own edit is not overwritten
    assert kept.data["phone"] == "13900139000"  # the folded copy's other typing is kept
    assert store.get(second.id) is None


def test_a_duplicate_merged_without_change_leaves_the_canonical_copy_as_the_server_has_it(
    store: Store,
) -> None:
    """Found by the stateful test: the platform merged a new duplicate into a record whose
    conflict had kept the other device's name, and changed nothing (same version). Folding
    copied the duplicate's sent name over the canonical copy, which then looked synced and
    was never pulled again: the device showed a name the platform did not have."""
    canonical = ids.uuid7()
    server = resident(seq=71, name="张三")
    replica.apply_pull(store, page(pulled(canonical, 2, server), cursor=2), SCOPE)
    dup = store.save("resident", resident(seq=71, name="李四", phone="13900139000"))
    ops = replica.next_batch(store, 0, 10)
    merged = OpResult(
        op_id=ops[0].op_id,
        status="merged_into",
        record_id=canonical,
        merged_into=canonical,
        version=2,  # the merge changed nothing on the platform
    )
    replica.record_results(store, ops, [merged])
    got = store.get(canonical)
    assert store.get(dup.id) is None
    assert got.data == server and got.server_version == 2 and not got.dirty


def test_a_folded_duplicates_create_does_not_mend_the_canonical_copys_rejection(
    store: Store,
) -> None:
    """Found by the stateful test: the platform refused a record's new ID number (another
    person has it), so the record stayed dirty; then the same person was typed again, and
    that create was merged into the record. Its acknowledged create counted as "the server
    has every value" for the record, which became clean while its refused ID number was on
    the device only (and the next op would not have sent it)."""
    rid = synced(store, resident(seq=73))
    store.save("resident", {**resident(seq=73), "id_number": id_number(seq=75)}, record_id=rid)
    [refused] = replica.next_batch(store, 0, 10)
    reason = Reason(code="duplicate_key", message_zh="重复", message_en="duplicate")
    replica.record_results(
        store,
        [refused],
        [OpResult(op_id=refused.op_id, status="rejected", record_id=rid, reason=reason)],
    )
    dup = store.save("resident", resident(seq=73, name="李四"))
    [create] = replica.next_batch(store, 0, 10)
    assert create.record_id == dup.id
    merged = OpResult(
        op_id=create.op_id, status="merged_into", record_id=rid, merged_into=rid, version=1
    )
    replica.record_results(store, [create], [merged])
    got = store.get(rid)
    assert got.data["id_number"] == id_number(seq=75)  # the refused value stays on the device
    assert got.dirty  # ... and is still owed to the server
    store.save("resident", {**got.data, "phone": "13700000002"}, record_id=rid)
    [nxt] = replica.next_batch(store, 0, 10)
    assert nxt.wire["fields"]["id_number"] == id_number(seq=75)  # sent again in full


KEYS = st.sampled_from(["name", "phone", "a", "Z", "0x", "_x", "_t", "__", "~"])


VALUES = st.sampled_from(["v", 1, "张", "x y"])


@settings(max_examples=60, deadline=None)
@given(
    data=st.dictionaries(KEYS, VALUES, min_size=1),
    status=st.sampled_from(["draft", "complete"]),
    deleted=st.booleans(),
    how=st.sampled_from(["save", "delete", "dirty", "pull_again"]),
)
def test_a_pulled_record_keeps_its_server_state_as_base_once_changed(
    tmp_path_factory: pytest.TempPathFactory,
    formset: FormSet,
    data: dict[str, Any],
    status: str,
    deleted: bool,
    how: str,
) -> None:
    """A clean pulled record stores no second copy as base; whatever local write makes it
    dirty (a save, a delete, a refused op) leaves the pulled state as its base, and a clean
    one pulled again has the new state as base."""
    store = Store(tmp_path_factory.mktemp("base") / "d.sqlite", formset)
    rid = ids.uuid7()
    replica.apply_pull(store, page(pulled(rid, 1, data, status=status, deleted=deleted)), SCOPE)
    server_state = {**data, STATUS: status, **({DELETED: True} if deleted else {})}
    assert store.conn.execute("SELECT base FROM records WHERE id = ?", (rid,)).fetchone() == (None,)
    assert store.get(rid).base == server_state
    expected = server_state
    if how == "save" and not deleted:
        store.save("resident", {**data, "phone": "13700000009"}, record_id=rid, status=status)
    elif how == "delete" and not deleted:
        store.delete(rid)
    elif how == "pull_again":
        newer = {**data, "phone": "13700000008"}
        replica.apply_pull(store, page(pulled(rid, 2, newer, status=status)), SCOPE)
        expected = {**newer, STATUS: status}
    else:
        with store.transaction():
            store.conn.execute("UPDATE records SET dirty = 1 WHERE id = ?", (rid,))
    got = store.get(rid)
    assert got.base == expected
    assert replica_rows._fetch_one(store, rid).base == expected  # what push and pull read
    assert got.dirty == (how != "pull_again")
    store.close()
