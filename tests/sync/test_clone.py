"""Copied and restored data dirs against the real server over HTTP (SQLite and PostgreSQL):
nothing typed on any copy is lost, each copy becomes a device of its own, and every copy
converges with the platform (issue 10, items 3 and 4)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from app.core.forms import FormSet
from sync import replica
from sync.client import Client
from tests.factories import resident
from tests.sync import devicekit
from tests.sync.devicekit import PASSWORD, Device, make_device, no_wait, server_records


def _open(
    platform: Any, tmp_path: Path, formset: FormSet, name: str, session: Any = None
) -> Device:
    """The data dir ``<tmp_path>/<name>.sqlite`` (made if missing), logged in as wang."""
    return make_device(platform.url, tmp_path, formset, name=name, session=session)


def _copy(src: Device, tmp_path: Path, name: str) -> Path:
    """Copy a closed device's store file as another laptop's data dir."""
    target = tmp_path / f"{name}.sqlite"
    shutil.copyfile(src.store.path, target)
    return target


def _admin(platform: Any) -> Client:
    admin = Client(platform.url, "admin-reader", retry=no_wait())
    admin.login("root", PASSWORD)
    platform.sessions.append(admin.http)
    return admin


def _live(device: Device) -> dict[str, dict[str, Any]]:
    rows = device.store.conn.execute("SELECT id, data FROM records WHERE deleted = 0").fetchall()
    return {rid: json.loads(data) for rid, data in rows}


def _converged(platform: Any, *devs: Device) -> dict[str, Any]:
    """Every device holds exactly the platform's live records, with nothing left to send."""
    pulled = server_records(platform, _admin(platform))
    platform_live = {rid: dict(r.data) for rid, r in pulled.items() if not r.deleted}
    for dev in devs:
        assert replica.pending_count(dev.store) == 0
        assert dev.store.count(dirty=True) == 0
        assert _live(dev) == platform_live
    return platform_live


def test_two_copies_of_a_synced_data_dir_keep_every_person(
    platform: Any, tmp_path: Path, formset: FormSet
) -> None:
    """The issue's office shortcut: one laptop set up and synced, its data dir copied to two
    more; a different person typed on each copy; both reach the platform and both copies."""
    origin = _open(platform, tmp_path, formset, "origin")
    first = origin.save("resident", resident(seq=11, name="赵一"))
    assert origin.sync().applied == 1
    device_id = origin.store.device_id
    origin.close()
    _copy(origin, tmp_path, "c1")
    _copy(origin, tmp_path, "c2")
    c1 = _open(platform, tmp_path, formset, "c1")
    c2 = _open(platform, tmp_path, formset, "c2")
    try:
        p1 = c1.save("resident", resident(seq=13, name="钱二"))
        p2 = c2.save("resident", resident(seq=15, name="孙三"))
        s1, s2 = c1.sync(), c2.sync()
        assert (s1.applied, s2.applied) == (1, 1)
        assert c2.get(p2.id).data["name"] == "孙三"  # not renamed to C1's record
        c1.sync()
        live = _converged(platform, c1, c2)
        assert {first.id, p1.id, p2.id} <= set(live)
        assert live[p1.id]["name"] == "钱二" and live[p2.id]["name"] == "孙三"
        assert s1.new_device and s2.new_device
        ids = {device_id, c1.store.device_id, c2.store.device_id}
        assert len(ids) == 3, "each copy is a device of its own"
        assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)  # 128 random bits, hex
    finally:
        c1.close()
        c2.close()


def test_copy_with_unsent_edits_sends_each_once_and_its_own_edits(
    platform: Any, tmp_path: Path, formset: FormSet
) -> None:
    """Edits waiting in the outbox when the dir was copied are on both copies: the platform
    takes them once (the second copy's are answered from the first's log, same content), and
    what each copy typed afterwards is applied as that copy's own."""
    origin = _open(platform, tmp_path, formset, "origin")
    person = origin.save("resident", resident(seq=21, name="周四"))
    origin.sync()
    origin.edit(person.id, phone="13900000001")  # waiting when the dir is copied
    origin.close()
    _copy(origin, tmp_path, "c1")
    _copy(origin, tmp_path, "c2")
    c1 = _open(platform, tmp_path, formset, "c1")
    c2 = _open(platform, tmp_path, formset, "c2")
    try:
        c1.edit(person.id, hukou_address="浙江省杭州市西湖区文一路9号")
        c2.edit(person.id, residence_address="浙江省杭州市西湖区幸福路14号1栋101室")
        s1 = c1.sync()
        s2 = c2.sync()
        assert (s1.applied, s1.rejected) == (2, 0)
        assert (s2.applied, s2.rejected, s2.conflicts) == (2, 0, 0)
        c1.sync()
        live = _converged(platform, c1, c2)
        assert live[person.id]["phone"] == "13900000001"
        assert live[person.id]["hukou_address"] == "浙江省杭州市西湖区文一路9号"
        assert live[person.id]["residence_address"] == "浙江省杭州市西湖区幸福路14号1栋101室"
        versions = devicekit.server_rows(platform, "record_versions")
        assert len([v for v in versions if v.record_id == person.id]) == 4
        logged = devicekit.server_rows(platform, "ops")
        assert len([o for o in logged if o.device_id == c2.store.device_id]) == 1, (
            "the edit waiting at the copy was answered from C1's log, not applied again"
        )
    finally:
        c1.close()
        c2.close()


def _restore(backup: Path, target: Path, *, in_place: bool) -> None:
    """Put the backup back: over the same file (the file keeps its identity, so only the
    server can tell), or as a new file."""
    for suffix in ("-wal", "-shm"):
        Path(str(target) + suffix).unlink(missing_ok=True)
    if in_place:
        shutil.copyfile(backup, target)
    else:
        target.unlink()
        shutil.copy2(backup, target)


def _restored_from_old_backup(
    platform: Any, tmp_path: Path, formset: FormSet, *, in_place: bool, session: Any = None
) -> Device:
    dev = _open(platform, tmp_path, formset, "laptop")
    person = dev.save("resident", resident(seq=31, name="吴五"))
    dev.sync()
    dev.edit(person.id, phone="13900000002")  # in the outbox of the backup
    dev.close()
    backup = tmp_path / "backup.sqlite"
    shutil.copyfile(dev.store.path, backup)
    dev = _open(platform, tmp_path, formset, "laptop")
    dev.edit(person.id, hukou_address="浙江省杭州市西湖区文二路2号")  # after the backup
    later = dev.save("resident", resident(seq=33, name="郑六"))
    dev.sync()
    dev.close()
    _restore(backup, dev.store.path, in_place=in_place)
    restored = _open(platform, tmp_path, formset, "laptop", session)
    try:
        assert restored.store.meta("op_seq") == "2"  # numbering went back with the backup
        restored.edit(person.id, residence_address="浙江省杭州市西湖区幸福路16号2栋201室")
        newest = restored.save("resident", resident(seq=35, name="王七"))
        summary = restored.sync()
        assert summary.rejected == 0
        live = _converged(platform, restored)
        assert live[person.id]["phone"] == "13900000002"  # the restored outbox
        assert live[person.id]["hukou_address"] == "浙江省杭州市西湖区文二路2号"  # after backup
        assert live[person.id]["residence_address"] == "浙江省杭州市西湖区幸福路16号2栋201室"
        assert live[later.id]["name"] == "郑六"
        assert live[newest.id]["name"] == "王七"
        assert summary.new_device
        return restored
    finally:
        restored.close()


def test_data_dir_restored_over_itself_loses_nothing(
    platform: Any, tmp_path: Path, formset: FormSet
) -> None:
    """The backup copied over the same file: the server notices the reused op ids."""
    _restored_from_old_backup(platform, tmp_path, formset, in_place=True)


def test_data_dir_restored_as_new_file_loses_nothing(
    platform: Any, tmp_path: Path, formset: FormSet
) -> None:
    """The backup restored as a new file: the data dir notices it before logging in."""
    _restored_from_old_backup(platform, tmp_path, formset, in_place=False)


def test_restored_data_dir_with_lost_answers_applies_nothing_twice(
    platform: Any, tmp_path: Path, formset: FormSet
) -> None:
    """The login that gives the restored data dir its new id, and the push after it, both
    lose their answers: the login is repeated (same new id), the push is answered from the
    op log, and nothing is applied twice."""
    is_login = lambda r: (r.path_url or "").startswith("/v1/login")  # noqa: E731
    second_login, second_push = devicekit.nth(is_login, 2), devicekit.nth(devicekit.is_push, 2)
    adapter = devicekit.FaultAdapter(after=lambda r: second_login(r) or second_push(r))
    restored = _restored_from_old_backup(
        platform, tmp_path, formset, in_place=True, session=devicekit.faulty_session(adapter)
    )
    assert adapter.lost == [("POST", "/v1/login"), ("POST", "/v1/push")]
    assert adapter.sent.count(("POST", "/v1/login")) == 3  # open, re-register, its retry
    devices = devicekit.server_rows(platform, "devices")
    assert len(devices) == 2, "one device for the laptop, one for its restored copy"
    assert restored.store.device_id in {d.device_id for d in devices}
    versions = devicekit.server_rows(platform, "record_versions")
    by_record: dict[str, list[int]] = {}
    for v in versions:
        by_record.setdefault(v.record_id, []).append(v.version)
    assert all(sorted(vs) == list(range(1, len(vs) + 1)) for vs in by_record.values())
    assert sorted(len(vs) for vs in by_record.values()) == [1, 1, 4]


def test_device_id_is_random_and_the_installation_follows_the_file(
    tmp_path: Path, formset: FormSet
) -> None:
    from app.core.store import Store
    from sync.replica import identity as replica_identity

    first, second = Store(tmp_path / "a.sqlite", formset), Store(tmp_path / "b.sqlite", formset)
    ids = {first.device_id, second.device_id}
    assert len(ids) == 2 and all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    nonce = replica_identity.installation(first)
    assert replica_identity.installation(first) == nonce  # stable where it was made
    original = first.device_id
    first.close()
    shutil.copyfile(tmp_path / "a.sqlite", tmp_path / "c.sqlite")
    copy = Store(tmp_path / "c.sqlite", formset)
    assert copy.device_id == original
    assert replica_identity.installation(copy) != nonce  # a copy notices
    # a new id taken by one Store numbers the ops of every Store open on the file
    other = Store(tmp_path / "c.sqlite", formset)
    assert replica_identity.adopt_device(copy, "f" * 32)
    record = other.save("resident", resident(seq=71))
    (op,) = [o for o in other.pending_ops() if o["record_id"] == record.id]
    assert op["op_id"].startswith("f" * 32 + ":")
    assert copy.meta(replica_identity.PREVIOUS_KEY) == original
    for store in (second, copy, other):
        store.close()
