"""What a printed QR code says: which record, which printed version, and a check.

Format (payload version 1), upper-case so it fits QR alphanumeric mode (0-9 A-Z space $ % * + -
. / :), which stores 5.5 bits a character instead of 8::

    GC1:<FORM>:<ID>:<VERSION>:<CHECK>
    GC1:RESIDENT:01M84TH1HSE5DA2454XKEYYVD6:3:0T86XW7     (no key: CRC-32)

* ``GC1``: GridCollect, payload version 1. A higher number means a newer app wrote it.
* ``FORM``: the form id (forms are data, so the id is carried rather than a letter from a
  table); ``[a-z_]`` becomes ``[A-Z-]``.
* ``ID``: the record UUID's 16 bytes as 26 Crockford base32 digits (no I, L, O, U, so a code
  read aloud or typed from the label is not misread).
* ``VERSION``: the printed record version in Crockford base32 (0 .. 2**32-1, at most 7 digits).
* ``CHECK`` covers everything before it, exactly as written:
  - with a deployment key: HMAC-SHA256 truncated to 60 bits (12 digits). Forged codes are
    refused; a forger must get each guess scanned, so 60 bits is ample.
  - without a key: CRC-32 (7 digits). A CRC whose polynomial has degree 32 and a constant term
    detects every error burst of up to 32 bits, so every single-character substitution (one
    byte) is caught. It catches mistyping, not forgery.

Nothing personal goes in: ``encode`` takes an id, a form id and a number, never record data.
A signed ``resident`` code is 54 characters at a small version and at most 60 for versions up to
2**32-1 (QR version 3 at error-correction level M holds 61); unsigned codes are 5 shorter.

Decoding tolerates what keyboard-emulating scanners do (lower case, a trailing Enter or Tab)
and accepts the payload wrapped in a URL, ``gridcollect://r/<payload>`` or
``https://<host>/<any path>/r/<payload>``, so a future phone link can carry the same payload.
``encode`` itself writes the bare payload: shortest, and a phone's camera app does not try to
open it.
"""

from __future__ import annotations

import hmac
import re
import uuid
import zlib
from dataclasses import dataclass
from hashlib import sha256
from urllib.parse import unquote

from app.core.messages import pick

PREFIX = "GC"
PAYLOAD_VERSION = 1
QR_ALPHANUMERIC = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")

_B32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford
_B32_VALUE = {c: i for i, c in enumerate(_B32)}
_ID_DIGITS = 26  # 128 bits
_MAX_VERSION = 2**32 - 1
_MAC_DIGITS = 12  # 60 bits of HMAC-SHA256
_CRC_DIGITS = 7  # 32 bits of CRC-32
_FORM_ID = re.compile(r"[a-z_]{1,32}")
_HEADER = re.compile(r"GC([1-9]\d{0,3}):")

_MESSAGES: dict[str, tuple[str, str]] = {
    "qr.not_ours": (
        "这不是网格采集打印的二维码。",
        "This is not a GridCollect code.",
    ),
    "qr.version": (
        "这个二维码由更新版本的网格采集生成，请升级本软件后再扫。",
        "This code was made by a newer version of GridCollect; update the app and scan again.",
    ),
    "qr.malformed": (
        "二维码内容不完整或已损坏，请重新扫描；仍不行请重新打印。",
        "The code is incomplete or damaged; scan it again, or reprint it.",
    ),
    "qr.integrity": (
        "二维码校验未通过（输错或被篡改），已拒绝。请重新扫描或重新打印。",
        "The code failed its check (mistyped or forged) and was refused; "
        "scan it again or reprint it.",
    ),
    "qr.key": (
        "这个二维码带有本单位的签名，但本机尚未配置签名密钥，无法核验。请先同步或在设置中配置密钥。",
        "This code is signed, but this device has no deployment key to check it; "
        "sync or set the key, then scan again.",
    ),
    # For the scanning layer: the code is valid but this device lacks the record.
    "qr.unknown_record": (
        "本机没有这条记录，请先同步后再扫。",
        "This device does not have this record; sync, then scan again.",
    ),
}


class PayloadError(ValueError):
    """A scanned code that is refused; ``str()`` is the code alone (safe to log)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code

    def message(self, lang: str = "zh") -> str:
        return message(self.code, lang)


def message(code: str, lang: str = "zh") -> str:
    """The zh (default) or en text for a ``qr.*`` code."""
    return pick(lang, *_MESSAGES[code])


@dataclass(frozen=True)
class Payload:
    record_id: str  # canonical lower-case UUID string
    form: str
    version: int


def _b32(n: int, width: int = 0) -> str:
    digits = []
    while n:
        n, r = divmod(n, 32)
        digits.append(_B32[r])
    return "".join(reversed(digits)).rjust(max(width, 1), "0")


def _unb32(text: str) -> int:
    n = 0
    for c in text:
        n = n * 32 + _B32_VALUE[c]
    return n


def _check(body: str, key: bytes | None) -> str:
    data = body.encode("ascii")
    if key is None:
        return _b32(zlib.crc32(data), _CRC_DIGITS)
    mac = hmac.new(key, data, sha256).digest()
    return _b32(int.from_bytes(mac[:8], "big") >> 4, _MAC_DIGITS)


def _require_key(key: bytes | None) -> None:
    if key is not None and not key:
        raise ValueError("an empty deployment key would sign nothing; pass None instead")


def encode(record_id: str, form: str, version: int, key: bytes | None = None) -> str:
    """The QR text for one printed record version (see the module note for the format)."""
    _require_key(key)
    rid = uuid.UUID(record_id)
    if not _FORM_ID.fullmatch(form):
        raise ValueError("form id must match [a-z_]{1,32}")
    if isinstance(version, bool) or not 0 <= version <= _MAX_VERSION:
        raise ValueError("version must be an integer in 0 .. 2**32-1")
    body = ":".join(
        (
            f"{PREFIX}{PAYLOAD_VERSION}",
            form.upper().replace("_", "-"),
            _b32(rid.int, _ID_DIGITS),
            _b32(version),
        )
    )
    return f"{body}:{_check(body, key)}"


def _unwrap(text: str) -> str:
    """The payload from a bare code or from a gridcollect:// or http(s):// link."""
    text = text.strip()
    scheme, sep, rest = text.partition("://")
    if not sep:
        return text.upper()
    if scheme.lower() not in ("gridcollect", "http", "https"):
        raise PayloadError("qr.not_ours")
    segments = re.split(r"[?#]", rest, maxsplit=1)[0].split("/")
    for i in range(len(segments) - 2, -1, -1):
        if segments[i].lower() == "r":
            return unquote(segments[i + 1]).strip().upper()
    raise PayloadError("qr.not_ours")


def _verify(body: str, check: str, key: bytes | None) -> None:
    if len(check) == _MAC_DIGITS and key is None:
        raise PayloadError("qr.key")
    if len(check) not in (_MAC_DIGITS, _CRC_DIGITS) or not set(check) <= _B32_VALUE.keys():
        raise PayloadError("qr.malformed")
    if len(check) == _CRC_DIGITS and key is not None:
        raise PayloadError("qr.integrity")  # unsigned code where this deployment signs
    if not hmac.compare_digest(check, _check(body, key)):
        raise PayloadError("qr.integrity")


def _parse_id(text: str) -> str:
    if len(text) != _ID_DIGITS or not set(text) <= _B32_VALUE.keys():
        raise PayloadError("qr.malformed")
    value = _unb32(text)
    if value >> 128:
        raise PayloadError("qr.malformed")
    return str(uuid.UUID(int=value))


def _parse_version(text: str) -> int:
    """Digits exactly as ``encode`` writes them: no leading zeros, within range."""
    if not 1 <= len(text) <= 7 or not set(text) <= _B32_VALUE.keys():
        raise PayloadError("qr.malformed")
    if len(text) > 1 and text[0] == "0":
        raise PayloadError("qr.malformed")
    value = _unb32(text)
    if value > _MAX_VERSION:
        raise PayloadError("qr.malformed")
    return value


def decode(text: str, key: bytes | None = None) -> Payload:
    """Read a scanned or typed code; raises ``PayloadError`` (see ``message``) when refused.

    Checks run outside-in: not ours, too new, broken shape, failed check, then field syntax.
    """
    _require_key(key)
    payload = _unwrap(text)
    header = _HEADER.match(payload)
    if not header:
        raise PayloadError("qr.not_ours")
    if int(header.group(1)) != PAYLOAD_VERSION:
        raise PayloadError("qr.version")
    parts = payload.split(":")
    if len(parts) != 5:
        raise PayloadError("qr.malformed")
    body, _, check = payload.rpartition(":")
    _verify(body, check, key)
    _, form, rid, version = parts[:4]
    if not re.fullmatch(r"[A-Z-]{1,32}", form):
        raise PayloadError("qr.malformed")
    return Payload(_parse_id(rid), form.lower().replace("-", "_"), _parse_version(version))


__all__ = [
    "PAYLOAD_VERSION",
    "QR_ALPHANUMERIC",
    "Payload",
    "PayloadError",
    "decode",
    "encode",
    "message",
]
