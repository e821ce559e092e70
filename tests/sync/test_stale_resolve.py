"""A worker's resolve the platform refuses as ``stale`` (the record changed since they looked,
PROTOCOL.md §5.3): the value they typed stays in view in the conflict the pull brings back,
and once they resolve again the record is in sync. Real server over loopback, real device
stores (SQLite: the subject is the device)."""

from __future__ import annotations

from typing import Any

from sync import replica
from tests.factories import resident
from tests.sync import devicekit
from tests.sync.devicekit import Device, db_url  # noqa: F401 - fixture: SQLite only

devices = devicekit.devices  # fixture

TYPED = "13933333333"


def _phone_conflict(a: Device, b: Device) -> str:
    """A record whose phone a and b changed at once: an open hard conflict on the platform,
    pulled by both devices."""
    record = a.save("resident", resident(seq=51, phone="13800000000"))
    a.sync()
    b.sync()
    a.edit(record.id, phone="13911111111")
    a.sync()
    b.edit(record.id, phone="13922222222")
    assert b.sync().conflicts == 1
    a.sync()
    return record.id


def _resolve_refused_stale(a: Device, b: Device, record_id: str) -> None:
    """b types a third phone to settle the conflict; a changes another field first, so b's
    resolve reaches the platform stale."""
    replica.resolve(b.store, record_id, {"phone": TYPED}, author="wang")
    a.edit(record_id, former_name="曾用名")
    a.sync()
    summary = b.sync()
    assert summary.rejected == 1
    (refused,) = replica.rejected_ops(b.store)
    assert refused["kind"] == "resolve" and refused["result"]["reason"]["code"] == "stale"


def test_the_value_typed_in_a_stale_resolve_is_offered_in_the_conflict_again(
    devices: Any,
) -> None:
    """Before: the pull brought the platform's conflict back with its two phones as mine and
    theirs, the typed phone only in the record's data: the conflict view (mine chosen by
    default) did not show it, and resolving again settled on one of the old phones."""
    a, b = devices(2)
    record_id = _phone_conflict(a, b)
    _resolve_refused_stale(a, b, record_id)
    got = b.get(record_id)
    assert got.data["phone"] == TYPED and got.data["former_name"] == "曾用名"
    (entry,) = [c for c in got.conflict or [] if c["field"] == "phone"]
    assert entry["mine"] == TYPED, entry
    assert entry["theirs"] == a.get(record_id).data["phone"]  # what the platform shows now


def test_a_record_resolved_again_after_a_stale_refusal_is_in_sync(devices: Any) -> None:
    """Before: the refused resolve broke the record's chain, and the new resolve, though
    applied, never mended it: the record stayed 'unsynced' (dirty) until some later edit."""
    a, b = devices(2)
    record_id = _phone_conflict(a, b)
    _resolve_refused_stale(a, b, record_id)
    replica.resolve(b.store, record_id, {"phone": TYPED}, author="wang")
    summary = b.sync()
    assert summary.rejected == 0 and summary.open_conflicts == 0
    got = b.get(record_id)
    assert not got.dirty and got.conflict is None and got.data["phone"] == TYPED
    assert b.store.count(dirty=True) == 0
    a.sync()
    assert a.get(record_id).data["phone"] == TYPED and a.get(record_id).conflict is None


def test_a_refusal_the_platform_has_caught_up_with_leaves_the_record_in_sync(
    devices: Any,
) -> None:
    """b's resolve was refused stale; a settled the same conflict with the same phone. The
    pull brings exactly b's values: nothing of b's is missing on the platform. Before, the
    refusal still counted as a broken chain: the record stayed 'unsynced' (dirty, and every
    pull rebased it) until b's next edit."""
    a, b = devices(2)
    record_id = _phone_conflict(a, b)
    _resolve_refused_stale(a, b, record_id)
    replica.resolve(a.store, record_id, {"phone": TYPED}, author="wang")
    a.sync()
    b.sync()
    got = b.get(record_id)
    assert got.data == a.get(record_id).data and got.conflict is None
    assert not got.dirty and b.store.count(dirty=True) == 0
    assert replica.pending_count(b.store) == 0
    b.edit(record_id, former_name="另一个曾用名")  # the next edit goes as it is, not completed
    (op,) = replica.next_batch(b.store, 0, 10)
    assert set(op.wire["fields"]) == {"former_name"} and not op.full, op.wire
