# ruff: noqa: F811 - the platform fixture is imported, then requested by name
"""From a scanned code back to the record: refusals, unknown records and changes since printing."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import qrcode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core import qrpayload, scan
from app.core.store import Store
from sync.client import Client
from sync.session import SyncSession
from tests.factories import resident
from tests.sync.conftest import PASSWORD, platform  # noqa: F401 - fixture
from tests.sync.devicekit import db_url, no_wait  # noqa: F401 - fixture: SQLite only

KEY = b"deployment-key-for-tests-0123456"
B32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _person(store: Store, **overrides: object) -> str:
    return store.save("resident", resident(**overrides), status="complete", author="wang").id


def _printed(store: Store, rid: str, key: bytes | None = KEY) -> str:
    record = store.get(rid)
    return qrpayload.encode(rid, record.form, scan.record_version(store, record), key)


def _sync(store: Store, url: str) -> None:
    """A real sync with the platform server over loopback HTTP (push, then pull)."""
    client = Client(url, store.device_id, retry=no_wait())
    try:
        client.login("wang", PASSWORD)
        summary = SyncSession(store, client).run()
    finally:
        client.close()
    assert summary.open_conflicts == 0


def test_deployment_key_is_made_once_and_only_when_asked(store: Store) -> None:
    assert scan.deployment_key(store) is None
    key = scan.deployment_key(store, create=True)
    assert key is not None and len(key) == 32
    assert scan.deployment_key(store) == key == scan.deployment_key(store, create=True)


def test_an_unchanged_record_scans_as_printed(store: Store) -> None:
    rid = _person(store)
    result = scan.resolve_scan(store, _printed(store, rid), KEY)
    assert result.ok and result.record_id == rid and result.code == "scan.same"
    assert result.changed_fields == [] and result.printed_version == 1
    assert result.message("en") == "The record is as printed (version 1)."


def test_a_code_for_a_record_this_device_lacks_says_to_sync(store: Store) -> None:
    code = qrpayload.encode(str(uuid.uuid4()), "resident", 3, KEY)
    result = scan.resolve_scan(store, code, KEY)
    assert result.record_id is None and result.code == "qr.unknown_record"
    assert "同步" in result.message_zh and "sync" in result.message_en
    assert result.payload is not None and result.payload.version == 3


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_tampered_code_is_refused_and_opens_nothing(store: Store, data: st.DataObject) -> None:
    rid = _person(store, seq=data.draw(st.integers(1, 999), label="seq"))
    code = _printed(store, rid)
    positions = [i for i, ch in enumerate(code) if ch in B32 and i > 3]
    i = data.draw(st.sampled_from(positions), label="position")
    replacement = data.draw(st.sampled_from([c for c in B32 if c != code[i]]), label="char")
    tampered = code[:i] + replacement + code[i + 1 :]

    result = scan.resolve_scan(store, tampered, KEY)

    assert result.record_id is None and not result.ok
    assert result.code in ("qr.integrity", "qr.malformed")
    assert result.message_zh == qrpayload.message(result.code, "zh")


def test_signed_codes_on_a_device_without_the_key_say_so(store: Store) -> None:
    rid = _person(store)
    result = scan.resolve_scan(store, _printed(store, rid))  # this store has no key
    assert result.code == "qr.key" and result.record_id is None
    unsigned = scan.resolve_scan(store, _printed(store, rid, key=None))
    assert unsigned.record_id == rid  # the CRC still guards against mistyping


def test_changes_since_printing_are_the_net_changes_of_later_saves(store: Store) -> None:
    rid = _person(store, name="王五", phone="13800138000", workplace="一厂")
    code = _printed(store, rid)
    data = store.get(rid).data
    store.save(
        "resident",
        {**data, "name": "王小五", "workplace": "二厂"},
        record_id=rid,
        status="complete",
    )
    store.save(
        "resident",
        {**store.get(rid).data, "workplace": "一厂", "phone": "13912345678"},
        record_id=rid,
        status="draft",
    )

    result = scan.resolve_scan(store, code, KEY)

    assert result.code == "scan.changed" and result.record_id == rid
    changes = {c.field: (c.printed, c.now) for c in result.changed_fields}
    assert changes == {
        "name": ("王五", "王小五"),
        "phone": ("13800138000", "13912345678"),
        "_status": ("complete", "draft"),
    }  # workplace changed and changed back: not listed
    assert (result.printed_version, result.current_version) == (1, 3)
    for label in ("姓名", "联系方式", "状态"):
        assert label in result.message_zh
    assert "13912345678" not in result.message_zh + result.message_en
    lines = scan.change_lines(store.formset, "resident", result.changed_fields)
    assert "联系方式: 138****8000 → 139****5678" in lines  # sensitive values masked


def test_a_sheet_newer_than_this_device_says_to_sync(store: Store) -> None:
    rid = _person(store)
    code = qrpayload.encode(rid, "resident", 5, KEY)
    result = scan.resolve_scan(store, code, KEY)
    assert result.code == "scan.device_older" and result.record_id == rid
    assert "同步" in result.message_zh


def test_platform_numbering_after_sync(store: Store, platform: Any) -> None:  # noqa: F811
    """A record synced for real scans as printed: its stored base holds ``_status`` and the
    comparison must not report the status as a change (it did for every synced record)."""
    rid = _person(store, name="钱七")
    _sync(store, platform.url)
    record = store.get(rid)
    assert record.server_version == 1 and not record.dirty
    code = _printed(store, rid)
    assert qrpayload.decode(code, KEY).version == 1
    same = scan.resolve_scan(store, code, KEY)
    assert same.code == "scan.same", same.message_zh
    assert same.changed_fields == []

    store.save(
        "resident", {**store.get(rid).data, "name": "钱小七"}, record_id=rid, status="complete"
    )
    result = scan.resolve_scan(store, code, KEY)
    assert result.code == "scan.changed"
    assert [(c.field, c.printed, c.now) for c in result.changed_fields] == [
        ("name", "钱七", "钱小七")
    ]
    store.save("resident", store.get(rid).data, record_id=rid, status="draft")
    status = scan.resolve_scan(store, code, KEY)  # a local status change is a real change
    assert [(c.field, c.printed, c.now) for c in status.changed_fields] == [
        ("_status", "complete", "draft"),
        ("name", "钱七", "钱小七"),
    ]

    _sync(store, platform.url)
    assert store.get(rid).server_version > 1  # one version per pushed op
    assert scan.resolve_scan(store, _printed(store, rid), KEY).code == "scan.same"
    old = scan.resolve_scan(store, code, KEY)
    assert old.code == "scan.platform_newer" and old.record_id == rid
    assert "平台" in old.message_zh and old.changed_fields == []


def test_a_deleted_record_and_a_form_mismatch(store: Store) -> None:
    rid = _person(store)
    wrong_form = qrpayload.encode(rid, "house", 1, KEY)
    assert scan.resolve_scan(store, wrong_form, KEY).code == "qr.integrity"
    code = _printed(store, rid)
    store.delete(rid, author="wang")
    result = scan.resolve_scan(store, code, KEY)
    assert result.code == "scan.deleted" and result.record_id is None


def test_not_our_code(store: Store) -> None:
    result = scan.resolve_scan(store, "6901234567892", KEY)
    assert result.code == "qr.not_ours" and result.message_zh == qrpayload.message("qr.not_ours")


def test_decode_image_reads_files_and_pil_images(tmp_path: Path) -> None:
    payload = qrpayload.encode(str(uuid.uuid4()), "house", 2, KEY)
    image = qrcode.make(payload, error_correction=qrcode.constants.ERROR_CORRECT_M)
    path = tmp_path / "code.png"
    image.save(path)
    assert scan.decode_image(path) == [payload]
    assert scan.decode_image(str(path)) == [payload]
    assert scan.decode_image(image.get_image().convert("L")) == [payload]

    blank = tmp_path / "blank.png"
    image.get_image().convert("L").point(lambda _v: 255).save(blank)
    assert scan.decode_image(blank) == []

    not_image = tmp_path / "notes.txt"
    not_image.write_text("hello", encoding="utf-8")
    with pytest.raises(scan.ScanImageError) as err:
        scan.decode_image(not_image)
    assert err.value.message("zh").startswith("无法读取这个图片文件")
    with pytest.raises(scan.ScanImageError):
        scan.decode_image(tmp_path / "missing.png")
