"""The outbox side of sync state, going out: which ops to send next, completed after a
refusal (PROTOCOL.md §11 rule 3), and whether a record is dirty (the platform lacks some of its
values). ``push`` records what the answers did.

Part of ``sync.replica`` (import it from there). Each step is one local transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from app.core.store import SETTLED, OutboxState, Store
from sync.merge import DELETED, norm, same
from sync.replica.rekey import FOLDED
from sync.replica.rows import _fetch_one, _loads

_ACKNOWLEDGED = (OutboxState.APPLIED, OutboxState.CONFLICT, OutboxState.MERGED)
MAX_AUTHOR = 100


@dataclass
class OutOp:
    """One outbox op ready to send: its local sequence and its wire shape."""

    seq: int
    wire: dict[str, Any]
    full: bool = False  # completed after a rejection: carries every value
    local_id: str | None = None  # the record on the device, when the wire names another

    @cached_property  # read a few times per op while its answer is recorded
    def op_id(self) -> str:
        return str(self.wire["op_id"])

    @cached_property
    def record_id(self) -> str:
        """The op's record on the device (the wire may name the record it was merged from)."""
        return self.local_id or str(self.wire["record_id"])


# -- outbox: what to send ---------------------------------------------------------------------


def pending_count(store: Store) -> int:
    """Ops waiting to be sent."""
    with store.transaction():
        return store.outbox.pending_count()


def next_batch(store: Store, after: int, limit: int) -> list[OutOp]:
    """The next pending ops after local sequence ``after``, oldest first, ready to send.

    An op that follows a non-retryable rejection of its record's ops is completed first
    (PROTOCOL.md §11.3): it then carries every field where the local values differ from the
    base, and becomes a ``create`` if the server never accepted the record. The completed op is
    written back, so a resend after a lost answer sends the same thing. A delete of a record
    the server never accepted has nothing to tell the server: it is settled on the device.
    """
    ops = _next_batch(store, after, limit, complete=True)
    assert ops is not None
    return ops


def read_ahead(store: Store, after: int, limit: int) -> list[OutOp] | None:
    """``next_batch`` while the ops up to ``after`` are still unanswered; None when one of the
    ops read would need completing (its record has a rejected op): what it carries then
    depends on those answers. Writes nothing, so a batch read ahead can be dropped."""
    return _next_batch(store, after, limit, complete=False)


def _next_batch(store: Store, after: int, limit: int, *, complete: bool) -> list[OutOp] | None:
    with store.transaction():
        rows = store.outbox.pending_after(after, limit)
        suspects = store.outbox.records_with_rejections()
        ops: list[OutOp] = []
        settled: list[str] = []
        for (
            seq,
            op_id,
            record_id,
            form,
            kind,
            base_version,
            fields,
            edited_at,
            author,
            result,
            base_record,
        ) in rows:
            wire = {
                "op_id": op_id,
                "record_id": record_id,
                "form": form,
                "kind": kind,
                "base_version": base_version,
                "fields": json.loads(fields),
                "edited_at": edited_at,
                "author": (author or "")[:MAX_AUTHOR],
            }
            full = bool((_loads(result) or {}).get("full"))
            if record_id in suspects and not full and not complete:
                return None
            if record_id in suspects and not full and _needs_full(store, record_id, seq):
                if _settle_local_delete(store, seq, wire):
                    settled.append(record_id)
                    continue
                wire, full = _complete(store, seq, wire)
                base_record = base_record if wire["kind"] == "resolve" else None
            if base_record is not None:
                # merged away on the platform since: its base version is that record's (§5.4)
                wire["record_id"] = base_record
            ops.append(OutOp(seq, wire, full, record_id))
        if settled:
            refresh_dirty(store, settled)
    return ops


def _chain_ok(rows: Iterable[tuple[str, str, str | None]]) -> bool:
    """Whether the server has all the record's values so far, from its ops' answers in order:
    a rejection breaks the chain (unless marked ``settled``: a pull showed the platform holds
    every value since); only an acknowledged op carrying every value (a create or a completed
    op) mends it. An op of a duplicate folded into this record (marked ``folded``) carried
    the duplicate's values, not this record's: it mends nothing."""
    ok = True
    for state, kind, result in rows:
        if state == OutboxState.REJECTED:
            ok = ok and f'"{SETTLED}":true' in (result or "")
        elif _mends(state, kind, result or ""):
            ok = True
    return ok


def _mends(state: str, kind: str, text: str) -> bool:
    """Whether an op's answer mends its record's chain (``_chain_ok``)."""
    return (
        state in _ACKNOWLEDGED
        and f'"{FOLDED}":true' not in text
        and (kind == "create" or '"full":true' in text)
    )


def _needs_full(store: Store, record_id: str, seq: int) -> bool:
    return not _chain_ok(store.outbox.chain_before(record_id, seq))


def _settle_local_delete(store: Store, seq: int, wire: dict[str, Any]) -> bool:
    if wire["kind"] != "delete":
        return False
    row = _fetch_one(store, wire["record_id"])
    earlier = store.outbox.has_pending_before(wire["record_id"], seq)
    if row is None or row.server_version or earlier:
        return False
    reason = {
        "code": "not_on_server",
        "message_zh": "这条记录从未被平台接收，删除只在本机生效。",
        "message_en": "the platform never accepted this record; the delete applies on this device only.",
        "retryable": False,
    }
    result = {"op_id": wire["op_id"], "status": "rejected", "local": True, "reason": reason}
    store.outbox.reject_op(seq, result)
    return True


def _complete(store: Store, seq: int, wire: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The op carrying every value the platform lacks (PROTOCOL.md §11 rule 3), written back.

    A resolve stays a resolve of the version the person looked at (and of the record it was
    made on: the platform writes its fields as given, or refuses it ``stale`` whole).
    Completed, its acknowledgement mends the record's chain: a resolve after a refusal (one
    refused ``stale``) never did, and the record stayed unsynced until the next edit."""
    row = _fetch_one(store, wire["record_id"])
    if row is None or wire["kind"] == "delete":
        return wire, False
    fields = _off_base(row.base or {}, row.state())
    fields.update(wire["fields"])
    if wire["kind"] == "resolve":
        wire = {**wire, "fields": fields}
    else:
        kind = "update" if row.server_version else "create"  # create: never accepted
        wire = {**wire, "kind": kind, "base_version": row.server_version, "fields": fields}
        store.outbox.forget_base_record(seq)  # its base is now its record's own
    store.outbox.rewrite_op(seq, wire["kind"], wire["base_version"], fields, {"full": True})
    return wire, True


def _off_base(base: Mapping[str, Any], local: Mapping[str, Any]) -> dict[str, Any]:
    """The local values that differ from the base (the platform has not acknowledged them)."""
    return {
        k: norm(local.get(k))
        for k in sorted((set(base) | set(local)) - {DELETED})
        if not same(base.get(k), local.get(k))
    }


def refresh_dirty(
    store: Store,
    record_ids: Iterable[str],
    versions: Sequence[tuple[int, str, int]] | None = None,
    renamed: Mapping[str, str] | None = None,
) -> None:
    """Dirty = unacknowledged ops, or the server does not have all the record's values (a
    rejection not yet mended by a full op): then a pull rebases instead of overwriting.

    One outbox query per call. ``versions`` (version, record id, version) still to raise go
    in the same statement as the flags: a record row is written once, not once for its
    version and again for its flag (issue 17: a push's recording rewrote each pushed record's
    row for each). So do ``renamed`` (new id -> old id): records whose other rows already
    name them by the new id, still to take it themselves; the old ids name no record after
    the rename, as in the plain path (a run never names an id twice)."""
    wanted = list(set(record_ids))
    pending: set[str] = set()
    chains: dict[str, list[tuple[str, str, str | None]]] = {}
    for record_id, state, kind, result in store.outbox.chains(wanted):
        if state == OutboxState.PENDING:
            pending.add(record_id)
        elif state == OutboxState.REJECTED or record_id in chains:
            chains.setdefault(record_id, []).append((state, kind, result))
    flags = [(int(r in pending or not _chain_ok(chains.get(r, []))), r) for r in wanted]
    if versions is None:
        store.replica.set_dirty(flags)
        return
    top: dict[str, int] = {}
    for version, record_id, _again in versions:  # raising to each in turn: raising to the top
        if record_id not in top or top[record_id] < version:
            top[record_id] = version
    dirty = {r: d for d, r in flags}
    renamed = renamed or {}
    gone = set(renamed.values())
    store.replica.set_versions_and_dirty(
        [
            (top.get(r), dirty.get(r), renamed.get(r, r), r if r in renamed else None)
            for r in dict.fromkeys([*dirty, *top, *renamed])
            if r not in gone
        ]
    )
