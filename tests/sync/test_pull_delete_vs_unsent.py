"""A record the platform deletes while this device holds edits the platform never took stays
visible with an update-versus-delete conflict (PROTOCOL.md §6, DESIGN "update vs delete is a
conflict, never a silent drop"), over the real server on loopback HTTP.

The device's edit was refused (a ``complete`` record failing validation: ``invalid``, kept on
the device, never sent again on its own); another device deletes the record meanwhile. The
pull that brings the tombstone used to rebase ``_deleted`` like a plain field: the server
changed it, the device did not, so the tombstone won and the record vanished from the device
with the person's typing in it, without a conflict to decide."""

from __future__ import annotations

from typing import Any

from sync import replica
from sync.merge import DELETED
from tests.factories import resident
from tests.sync import devicekit

db_url = devicekit.db_url  # fixture: SQLite only, the subject is the device
devices = devicekit.devices  # fixture


def test_a_tombstone_does_not_hide_an_edit_the_platform_refused(devices: Any) -> None:
    wang, other = devices(2)
    record = wang.save("resident", resident(seq=1))
    wang.sync()
    other.sync()
    typed = {**wang.get(record.id).data, "phone": "1391111", "name": "张叁"}
    wang.store.save("resident", typed, record_id=record.id, status="complete", author="wang")
    other.store.delete(record.id, author="other")
    other.sync()

    summary = wang.sync()  # the edit is refused (invalid), then the tombstone is pulled

    assert summary.rejected == 1
    assert [r["result"]["reason"]["code"] for r in replica.rejected_ops(wang.store)] == ["invalid"]
    got = wang.get(record.id)
    assert not got.deleted, "the person's refused edit vanished with the pulled tombstone"
    assert (got.data["phone"], got.data["name"]) == ("1391111", "张叁")
    assert got.dirty
    [conflict] = [c for c in got.conflict or [] if c["field"] == DELETED]
    assert (conflict["mine"], conflict["theirs"]) == (False, True)
    assert replica.open_conflicts(wang.store) == 1

    # the person corrects the record and saves: everything they typed reaches the platform,
    # which revives the record (PROTOCOL.md §6: deleted, and the base was deleted too)
    fixed = {**got.data, "phone": "13911112222"}
    wang.store.save("resident", fixed, record_id=record.id, status="complete", author="wang")
    again = wang.sync()
    assert (again.applied, again.rejected) == (1, 0), again
    other.sync()
    theirs = other.get(record.id)
    assert not theirs.deleted
    assert (theirs.data["phone"], theirs.data["name"]) == ("13911112222", "张叁")
    mine = wang.get(record.id)
    assert not mine.dirty and not mine.conflict and mine.data == theirs.data


def test_a_tombstone_still_deletes_a_copy_without_unsent_edits(devices: Any) -> None:
    wang, other = devices(2)
    record = wang.save("resident", resident(seq=3))
    wang.sync()
    other.sync()
    other.store.delete(record.id, author="other")
    other.sync()
    wang.sync()
    got = wang.get(record.id)
    assert got.deleted and not got.dirty and not got.conflict
