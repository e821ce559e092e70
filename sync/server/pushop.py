"""What one pushed op meets while a chunk applies: who pushes and what the chunk prefetched
(``Ctx``), what the op came to (``Outcome``) and why it was refused (``Reject``).

Apart from ``service`` so the steps of a push (``service``, ``claims``) share them without
importing each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import RowMapping

from sync import protocol as p
from sync.server.auth import User
from sync.server.errors import message


class Reject(Exception):
    """An op that cannot be applied; becomes a ``rejected`` result (PROTOCOL.md §5.3)."""

    def __init__(
        self,
        code: str,
        *,
        retryable: bool = False,
        issues: Sequence[dict[str, str]] = (),
        other_id: str | None = None,
        record_id: str | None = None,
        version: int | None = None,
        store: bool = True,
    ) -> None:
        super().__init__(code)
        self.code, self.retryable, self.issues = code, retryable, list(issues)
        self.other_id, self.record_id, self.version = other_id, record_id, version
        self.store = store and not retryable

    def result(self, op: p.Op) -> dict[str, Any]:
        zh, en = message(self.code)
        reason: dict[str, Any] = {
            "code": self.code,
            "message_zh": zh,
            "message_en": en,
            "retryable": self.retryable,
            "issues": self.issues,
        }
        if self.other_id:
            reason["other_id"] = self.other_id
        return {
            "op_id": op.op_id,
            "status": "rejected",
            "record_id": self.record_id or op.record_id,
            "version": self.version,
            "conflicts": [],
            "reason": reason,
        }


@dataclass
class Ctx:
    """Who is pushing, from which device, and the server clock for this chunk."""

    user: User
    device_id: str
    at: str = ""
    stamp_limit: str = ""
    server_stamp: str = ""
    # What the chunk's first queries found, so most ops skip two lookups: the logged ops the
    # chunk's ops replay (False: this device logged other content under the id; see
    # ``oplog.lookup``), and the aliases of every id the chunk's ops name (kept up to date as
    # the chunk makes aliases: ``aliased``).
    known_ops: dict[str, RowMapping | Literal[False]] = field(default_factory=dict)
    ids_name_content: bool = False  # see Service.apply
    hashes: dict[str, str] = field(default_factory=dict)  # op id -> oplog.op_hash
    aliases: dict[str, str] = field(default_factory=dict)

    _leading: dict[str, set[str]] | None = None  # target -> names in ``aliases`` leading there

    def aliased(self, old: str, canonical: str) -> None:
        """``old`` was merged into ``canonical``; names that led to ``old`` now lead there.

        The names leading to each target are indexed at the first call (a push of residents
        the platform already knows aliases every op: a scan of ``aliases`` per op was
        quadratic in the chunk)."""
        if self._leading is None:
            self._leading = {}
            for name, target in self.aliases.items():
                self._leading.setdefault(target, set()).add(name)
        names = self._leading.pop(old, set())
        for name in names:
            self.aliases[name] = canonical
        previous = self.aliases.get(old)
        if previous is not None and previous in self._leading:
            self._leading[previous].discard(old)
        self.aliases[old] = canonical
        self._leading.setdefault(canonical, set()).update(names | {old})

    def edited_at(self, op: p.Op) -> str:
        """The op's clock, clamped when it runs far ahead of the server's."""
        return self.server_stamp if op.edited_at > self.stamp_limit else op.edited_at


@dataclass
class Outcome:
    result: dict[str, Any]
    version: int | None = None
    store: bool = True
