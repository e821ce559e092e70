"""Record ids and clocks.

Record ids are UUIDv7 (RFC 9562): time-ordered, so SQLite's primary-key index stays
append-mostly and ids made offline on many devices never collide. Python 3.11 has no
``uuid.uuid7``, and the function is ten lines, so it is written here.
"""

from __future__ import annotations

import os
import re
import secrets
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def uuid7() -> str:
    """A new UUIDv7 string; monotonic within this process (12-bit counter in rand_a)."""
    return next(uuid7_many(1))


def uuid7_many(count: int) -> Iterator[str]:
    """``count`` new UUIDv7 strings in ascending order, as ``count`` calls of ``uuid7``
    would give them: one clock read and one ``os.urandom`` for the lot (an import of
    20 000 rows spent 3 % of its time making ids one at a time)."""
    global _last_ms, _counter
    if count <= 0:
        return iter(())
    randoms = os.urandom(8 * count)
    low = (1 << 62) - 1
    values = []
    with _lock:
        now = time.time_ns() // 1_000_000
        for i in range(count):
            if now <= _last_ms:
                _counter += 1
                if _counter > 0xFFF:
                    _last_ms += 1
                    _counter = 0
            else:
                _last_ms = now
                _counter = int.from_bytes(os.urandom(2), "big") & 0x3FF
            rand_b = int.from_bytes(randoms[8 * i : 8 * i + 8], "big") & low
            values.append(_HEAD | (_last_ms & _MS_MASK) << 80 | _counter << 64 | rand_b)
    return map(_text, values)


_HEAD = 0x7 << 76 | 0b10 << 62  # version 7, RFC 9562 variant
_MS_MASK = (1 << 48) - 1


def _text(value: int) -> str:
    """str(uuid.UUID(int=value)), without the object."""
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def new_device_id() -> str:
    """A device id: 128 random bits as 32 lower-case hex digits.

    Random, not time-based: two laptops set up in the same millisecond must not share an id
    (the platform tells devices apart by it); the server confirms it at the first login."""
    return secrets.token_hex(16)


def now_iso() -> str:
    """UTC timestamp with milliseconds, sortable as text."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_CANONICAL_UUID = re.compile(
    "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


def is_uuid(text: str) -> bool:
    """True when ``text`` is a canonical UUID string: ``str(uuid.UUID(text)) == text.lower()``
    (any case), as one regex match (the server asks it for every pushed op; parsing a UUID
    object took five times as long). tests/test_ids.py holds it against that definition."""
    return isinstance(text, str) and _CANONICAL_UUID.fullmatch(text) is not None
