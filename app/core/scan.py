"""From a scanned code back to a record: decode images, check the code, say what changed.

What a printed code's version number means (``record_version``) is decided here, once, for
printing and scanning alike:

* a record the platform has acknowledged prints its ``server_version``: the same number on
  every device, so a sheet printed anywhere compares against any device's copy;
* a record never synced prints the number of saves in this device's history
  (``len(store.history(id))``): the only count this device can map back to field changes.

Scanning compares the printed number with the record today:

* local numbering: the fields changed by the history entries after the printed one, each with
  its value at print time and now (net changes only: a field changed and changed back is not
  listed);
* platform numbering, printed == ``server_version``: the unsynced local edits (``base`` → data).
  A sheet printed while the record already had unsynced edits lists those too: the number
  cannot tell them apart, so sync before printing for an exact comparison;
* platform numbering, printed < ``server_version``: the platform has newer versions whose
  field-level history lives on the platform; the result says so and lists local edits;
* printed > what this device has: the sheet is newer than this copy: sync first.

The numbering switches when a record is first synced, so a sheet printed before its record's
first sync and scanned after it compares against the wrong version (the result says "sync" or
lists too much); reprint after the first sync when that matters.

The QR key: ``deployment_key`` keeps a per-deployment secret in ``store.meta("qr_key")``,
created at random the first time something is printed. Codes signed with it verify only on
devices holding the same key (the platform is to hand it out at login); a device without it
says so (``qr.key``) instead of guessing. Without any key, codes carry a CRC that still catches
mistyping, not forgery.

No Qt here: ``decode_image`` takes a path, a PIL image, a numpy array or anything else
zxing-cpp reads (a ``QImage`` from the camera or the clipboard works too, passed through).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from app.core import qrpayload
from app.core.display import display_value, field_label
from app.core.forms import FormSet
from app.core.messages import COMMON, lang_of, pick
from app.core.records import DELETED_KEY, Record, diff, state_of
from app.core.store import STATUS_FIELD, Store

QR_KEY_META = "qr_key"
_KEY_BYTES = 32

_MESSAGES: dict[str, tuple[str, str]] = {
    "scan.same": (
        "记录与打印时一致（第 {printed} 版）。",
        "The record is as printed (version {printed}).",
    ),
    "scan.changed": (
        "打印（第 {printed} 版）后已修改 {count} 项：{fields}。",
        "Changed since printing (version {printed}): {count} fields: {fields}.",
    ),
    "scan.platform_newer": (
        "打印（第 {printed} 版）后平台上已有更新（现为第 {current} 版），各项改动请在平台上查看。",
        "The platform has newer versions since printing (printed {printed}, now {current}); "
        "see the platform for what changed.",
    ),
    "scan.device_older": (
        "打印的是第 {printed} 版，本机只有第 {current} 版。请先同步后再扫。",
        "The sheet shows version {printed} but this device only has version {current}; "
        "sync, then scan again.",
    ),
    "scan.deleted": (
        "这条记录已被删除。",
        "This record has been deleted.",
    ),
    "scan.image_unreadable": (
        "无法读取这个图片文件，请选择 PNG、JPEG 等图片。",
        "This image file cannot be read; choose a PNG, JPEG or similar image.",
    ),
    "scan.no_code": (
        "图片中没有找到二维码，请换一张更清晰的图片。",
        "No QR code was found in the image; try a sharper picture.",
    ),
}


def message(code: str, lang: str = "zh", **params: Any) -> str:
    """The zh (default) or en text for a ``scan.*`` or ``qr.*`` code."""
    if code.startswith("qr."):
        return qrpayload.message(code, lang)
    return pick(lang, *_MESSAGES[code]).format(**params)


class ScanImageError(ValueError):
    """An image that cannot be read; ``str()`` is the code only (safe to log)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code

    def message(self, lang: str = "zh") -> str:
        return message(self.code, lang)


class FieldChange(NamedTuple):
    """One field changed since printing: its value on the sheet and now (None: empty)."""

    field: str
    printed: Any
    now: Any


@dataclass(frozen=True)
class ScanResult:
    """What a scan found. ``record_id`` is None when there is no record to open."""

    record_id: str | None
    payload: qrpayload.Payload | None
    message_zh: str
    message_en: str
    changed_fields: list[FieldChange] = field(default_factory=list)
    code: str = "scan.same"  # scan.* or qr.* message code, for callers that branch
    printed_version: int | None = None
    current_version: int | None = None

    @property
    def ok(self) -> bool:
        """The code was accepted and the record is here (it may have changed)."""
        return self.record_id is not None

    def message(self, lang: str = "zh") -> str:
        return self.message_en if lang_of(lang) == "en" else self.message_zh


# -- key and version -----------------------------------------------------------------------


def deployment_key(store: Store, *, create: bool = False) -> bytes | None:
    """The deployment's QR signing key, made at random on first use when ``create``.

    Printing creates it; scanning does not (a device without the key reports ``qr.key``
    for signed codes rather than refusing them as forged).
    """
    stored = store.meta(QR_KEY_META)
    if stored:
        return bytes.fromhex(stored)
    if not create:
        return None
    key = secrets.token_bytes(_KEY_BYTES)
    store.set_meta(QR_KEY_META, key.hex())
    return key


def record_version(store: Store, record: Record) -> int:
    """The version number a sheet or label of ``record`` carries (see the module note)."""
    if record.server_version is not None:
        return int(record.server_version)
    return len(store.history(record.id))


# -- decoding ------------------------------------------------------------------------------


def decode_image(source: Any) -> list[str]:
    """The text of every QR code in an image: a path, a PIL image or a camera frame.

    Raises ``ScanImageError("scan.image_unreadable")`` for a file that is not an image.
    """
    import zxingcpp

    image = source
    if isinstance(source, str | os.PathLike):
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(source) as opened:
                image = opened.convert("L")
        except (OSError, UnidentifiedImageError, ValueError) as exc:
            raise ScanImageError("scan.image_unreadable") from exc
    found = zxingcpp.read_barcodes(
        image, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
    )
    return [b.text for b in found if b.valid]


# -- resolving a scan ------------------------------------------------------------------------


def _result(
    code: str,
    record_id: str | None = None,
    payload: qrpayload.Payload | None = None,
    changes: Sequence[FieldChange] = (),
    printed: int | None = None,
    current: int | None = None,
    **params: Any,
) -> ScanResult:
    return ScanResult(
        record_id,
        payload,
        message(code, "zh", printed=printed, current=current, **params),
        message(code, "en", printed=printed, current=current, **params),
        list(changes),
        code,
        printed,
        current,
    )


def _local_changes(store: Store, record: Record, printed: int) -> list[FieldChange]:
    """Net field changes made by the history entries after the ``printed``-th one."""
    first_old: dict[str, Any] = {}
    for entry in store.history(record.id)[printed:]:
        for name, (old, _new) in entry.changes.items():
            first_old.setdefault(name, old)
    now = {**record.data, STATUS_FIELD: record.status}
    return [
        FieldChange(name, old, now.get(name))
        for name, old in first_old.items()
        if old != now.get(name)
    ]


def _unsynced_changes(record: Record) -> list[FieldChange]:
    """Local edits since the platform's state: the base holds the fields *and* ``_status``
    (``records.state_of``), so it is compared with the same shape, never with bare data (which
    made every synced record scan as "status changed")."""
    now = state_of(record.data, record.status, False)
    return [
        FieldChange(name, old, new)
        for name, (old, new) in diff(record.base or now, now).items()
        if name != DELETED_KEY
    ]


def _field_names(store: Store, form_id: str, changes: Sequence[FieldChange], lang: str) -> str:
    form = store.formset.form(form_id)
    names = [field_label(form.fields.get(c.field), c.field, lang) for c in changes]
    return ("、" if lang_of(lang) == "zh" else ", ").join(names)


def _changed_result(
    store: Store,
    record: Record,
    payload: qrpayload.Payload,
    changes: list[FieldChange],
    printed: int,
    current: int,
) -> ScanResult:
    if not changes:
        return _result("scan.same", record.id, payload, printed=printed, current=current)
    kwargs = {
        "count": len(changes),
        "printed": printed,
        "current": current,
    }
    return ScanResult(
        record.id,
        payload,
        message(
            "scan.changed", "zh", fields=_field_names(store, record.form, changes, "zh"), **kwargs
        ),
        message(
            "scan.changed", "en", fields=_field_names(store, record.form, changes, "en"), **kwargs
        ),
        changes,
        "scan.changed",
        printed,
        current,
    )


def resolve_scan(store: Store, text: str, key: bytes | None = None) -> ScanResult:
    """Check a scanned or typed code and find its record and what changed since printing.

    ``key`` defaults to the store's deployment key (without creating one).
    """
    if key is None:
        key = deployment_key(store)
    try:
        payload = qrpayload.decode(text, key)
    except qrpayload.PayloadError as exc:
        return _result(exc.code)
    record = store.get(payload.record_id)
    if record is None:
        return _result("qr.unknown_record", payload=payload, printed=payload.version)
    if record.form != payload.form:  # a valid check over the wrong form: not our code
        return _result("qr.integrity")
    if record.deleted:
        return _result("scan.deleted", payload=payload, printed=payload.version)
    printed, current = payload.version, record_version(store, record)
    if printed > current:
        return _result("scan.device_older", record.id, payload, printed=printed, current=current)
    if record.server_version is None:
        changes = _local_changes(store, record, printed)
    else:
        changes = _unsynced_changes(record)
        if printed < current:
            return _result("scan.platform_newer", record.id, payload, changes, printed, current)
    return _changed_result(store, record, payload, changes, printed, current)


def change_lines(
    formset: FormSet, form_id: str, changes: Sequence[FieldChange], lang: str = "zh"
) -> list[str]:
    """ "Label: printed → now" per change for display, sensitive values masked, codes as labels."""
    form = formset.form(form_id)
    empty = COMMON.text("empty", lang)
    lines = []
    for change in changes:
        fld = form.fields.get(change.field)
        label = field_label(fld, change.field, lang)
        before, after = (
            display_value(formset, fld, v, lang, field_id=change.field) or empty
            for v in (change.printed, change.now)
        )
        lines.append(f"{label}: {before} → {after}")
    return lines


__all__ = [
    "QR_KEY_META",
    "FieldChange",
    "ScanImageError",
    "ScanResult",
    "change_lines",
    "decode_image",
    "deployment_key",
    "field_label",
    "message",
    "record_version",
    "resolve_scan",
]
