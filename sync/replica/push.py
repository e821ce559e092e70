"""The outbox side of sync state: which ops to send next, and what their answers did.

Part of ``sync.replica`` (import it from there). Each step is one local transaction, so a crash
at any instant leaves either the batch's answers all recorded or none.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.core.records import dumps
from app.core.store import Store
from sync.merge import DELETED, norm, same
from sync.protocol import OpResult
from sync.replica.rekey import FOLDED, rewrite_id
from sync.replica.rows import _fetch_one, _loads

ACKED = {"applied": "applied", "conflict": "conflict", "merged_into": "merged"}
MAX_AUTHOR = 100


@dataclass
class OutOp:
    """One outbox op ready to send: its local sequence and its wire shape."""

    seq: int
    wire: dict[str, Any]
    full: bool = False  # completed after a rejection: carries every value

    @property
    def op_id(self) -> str:
        return str(self.wire["op_id"])

    @property
    def record_id(self) -> str:
        return str(self.wire["record_id"])


@dataclass
class PushTally:
    """What one batch's answers did."""

    applied: int = 0
    conflicts: int = 0
    merged: int = 0
    rejected: int = 0
    deferred: int = 0  # retryable rejections: still pending, sent again next time
    messages: list[str] = field(default_factory=list)


# -- outbox: what to send ---------------------------------------------------------------------


def pending_count(store: Store) -> int:
    """Ops waiting to be sent."""
    with store.transaction():
        row = store.conn.execute("SELECT count(*) FROM outbox WHERE state = 'pending'").fetchone()
    return int(row[0])


def next_batch(store: Store, after: int, limit: int) -> list[OutOp]:
    """The next pending ops after local sequence ``after``, oldest first, ready to send.

    An op that follows a non-retryable rejection of its record's ops is completed first
    (PROTOCOL.md §11.3): it then carries every field where the local values differ from the
    base, and becomes a ``create`` if the server never accepted the record. The completed op is
    written back, so a resend after a lost answer sends the same thing. A delete of a record
    the server never accepted has nothing to tell the server: it is settled on the device.
    """
    with store.transaction():
        rows = store.conn.execute(
            "SELECT seq, op_id, record_id, form, kind, base_version, fields, edited_at, author, "
            "result FROM outbox WHERE state = 'pending' AND seq > ? ORDER BY seq LIMIT ?",
            (after, limit),
        ).fetchall()
        suspects = _records_with_rejections(store)
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
            if record_id in suspects and not full and _needs_full(store, record_id, seq):
                if _settle_local_delete(store, seq, wire):
                    settled.append(record_id)
                    continue
                wire, full = _complete(store, seq, wire)
            ops.append(OutOp(seq, wire, full))
        if settled:
            _refresh_dirty(store, settled)
    return ops


def _records_with_rejections(store: Store) -> set[str]:
    return {
        r[0]
        for r in store.conn.execute(
            "SELECT DISTINCT record_id FROM outbox WHERE state = 'rejected'"
        )
    }


def _chain_ok(rows: Iterable[tuple[str, str, str | None]]) -> bool:
    """Whether the server has all the record's values so far, from its ops' answers in order:
    a rejection breaks the chain; only an acknowledged op carrying every value (a create or a
    completed op) mends it. An op of a duplicate folded into this record (marked ``folded``)
    carried the duplicate's values, not this record's: it mends nothing."""
    ok = True
    for state, kind, result in rows:
        text = result or ""
        if state == "rejected":
            ok = False
        elif (
            state in ("applied", "conflict", "merged")
            and f'"{FOLDED}":true' not in text
            and (kind == "create" or '"full":true' in text)
        ):
            ok = True
    return ok


def _needs_full(store: Store, record_id: str, seq: int) -> bool:
    rows = store.conn.execute(
        "SELECT state, kind, result FROM outbox WHERE record_id = ? AND seq < ? ORDER BY seq",
        (record_id, seq),
    ).fetchall()
    return not _chain_ok(rows)


def _settle_local_delete(store: Store, seq: int, wire: dict[str, Any]) -> bool:
    if wire["kind"] != "delete":
        return False
    row = _fetch_one(store, wire["record_id"])
    earlier = store.conn.execute(
        "SELECT 1 FROM outbox WHERE record_id = ? AND seq < ? AND state = 'pending' LIMIT 1",
        (wire["record_id"], seq),
    ).fetchone()
    if row is None or row.server_version or earlier:
        return False
    reason = {
        "code": "not_on_server",
        "message_zh": "这条记录从未被平台接收，删除只在本机生效。",
        "message_en": "the platform never accepted this record; the delete applies on this device only.",
        "retryable": False,
    }
    result = {"op_id": wire["op_id"], "status": "rejected", "local": True, "reason": reason}
    store.conn.execute(
        "UPDATE outbox SET state = 'rejected', result = ? WHERE seq = ?", (dumps(result), seq)
    )
    return True


def _complete(store: Store, seq: int, wire: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    row = _fetch_one(store, wire["record_id"])
    if row is None or wire["kind"] in ("delete", "resolve"):
        return wire, False
    base = row.base or {}
    local = row.state()
    fields = {
        k: norm(local.get(k))
        for k in sorted((set(base) | set(local)) - {DELETED})
        if not same(base.get(k), local.get(k))
    }
    fields.update(wire["fields"])
    never_accepted = not row.server_version
    wire = {
        **wire,
        "kind": "create" if never_accepted else "update",
        "base_version": row.server_version,
        "fields": fields,
    }
    store.conn.execute(
        "UPDATE outbox SET kind = ?, base_version = ?, fields = ?, result = ? WHERE seq = ?",
        (wire["kind"], wire["base_version"], dumps(fields), dumps({"full": True}), seq),
    )
    return wire, True


# -- outbox: what came back -------------------------------------------------------------------


def record_results(store: Store, ops: Sequence[OutOp], results: Sequence[OpResult]) -> PushTally:
    """Persist one batch's answers, in one transaction (PROTOCOL.md §5.3)."""
    if len(ops) != len(results) or any(
        o.op_id != r.op_id for o, r in zip(ops, results, strict=True)
    ):
        raise ValueError("push results do not match the ops sent")
    tally = PushTally()
    touched: set[str] = set()
    answers = _Answers()
    with store.transaction():
        for op, result in zip(ops, results, strict=True):
            status = result.status
            if status == "duplicate_op":
                status = result.original_status or "applied"
            target = _record_result(store, op, result, status, tally, answers)
            touched.add(target)
        answers.write(store)
        _refresh_dirty(store, touched)
    return tally


@dataclass
class _Answers:
    """A batch's outbox and version updates, written with one executemany each; written
    before an id rewrite too, which reads the outbox states (what the server acknowledged)."""

    outbox: list[tuple[str | None, str, int]] = field(default_factory=list)
    versions: list[tuple[int, str, int]] = field(default_factory=list)

    def write(self, store: Store) -> None:
        store.conn.executemany(
            "UPDATE outbox SET state = coalesce(?, state), result = ? WHERE seq = ?", self.outbox
        )
        store.conn.executemany(
            "UPDATE records SET server_version = ? WHERE id = ? "
            "AND (server_version IS NULL OR server_version < ?)",
            self.versions,
        )
        self.outbox, self.versions = [], []


def _record_result(
    store: Store, op: OutOp, result: OpResult, status: str, tally: PushTally, answers: _Answers
) -> str:
    marks = {"full": True} if op.full else {}
    if _folded(store, op.seq):
        marks[FOLDED] = True  # the answer replaces the result: keep the mark (see _chain_ok)
    answer = dumps({**result.model_dump(exclude_none=True), **marks})
    if status == "rejected":
        reason = result.reason
        if reason is not None and reason.retryable:
            tally.deferred += 1
            answers.outbox.append((None, answer, op.seq))  # stays pending
            return op.record_id
        tally.rejected += 1
        if reason is not None:
            tally.messages.append(f"{reason.message_zh} / {reason.message_en}")
        answers.outbox.append(("rejected", answer, op.seq))
        return op.record_id
    state = ACKED.get(status, "applied")
    answers.outbox.append((state, answer, op.seq))
    canonical = result.merged_into or result.record_id or op.record_id
    if canonical != op.record_id:
        answers.write(store)
        rewrite_id(store, op.record_id, canonical)
    if state == "merged":
        tally.merged += 1
    elif state == "conflict":
        tally.conflicts += 1
    else:
        tally.applied += 1
    if result.version is not None:
        answers.versions.append((result.version, canonical, result.version))
    return canonical


def _folded(store: Store, seq: int) -> bool:
    row = store.conn.execute("SELECT result FROM outbox WHERE seq = ?", (seq,)).fetchone()
    return bool(row) and bool((_loads(row[0]) or {}).get(FOLDED))


def set_aside(store: Store, op: OutOp, code: str, message_zh: str, message_en: str) -> None:
    """A whole-request 4xx named this op: keep it on the device, marked, and send the others."""
    reason = {
        "code": code,
        "message_zh": message_zh,
        "message_en": message_en,
        "retryable": False,
    }
    result = {"op_id": op.op_id, "status": "rejected", "request_error": True, "reason": reason}
    with store.transaction():
        store.conn.execute(
            "UPDATE outbox SET state = 'rejected', result = ? WHERE seq = ?",
            (dumps(result), op.seq),
        )
        _refresh_dirty(store, [op.record_id])


def _refresh_dirty(store: Store, record_ids: Iterable[str]) -> None:
    """Dirty = unacknowledged ops, or the server does not have all the record's values (a
    rejection not yet mended by a full op): then a pull rebases instead of overwriting.

    One outbox scan per call (the outbox has no index on record_id).
    """
    wanted = list(set(record_ids))
    pending: set[str] = set()
    chains: dict[str, list[tuple[str, str, str | None]]] = {}
    for start in range(0, len(wanted), 500):
        part = wanted[start : start + 500]
        marks = ",".join("?" * len(part))
        for record_id, state, kind, result in store.conn.execute(
            f"SELECT record_id, state, kind, result FROM outbox WHERE record_id IN ({marks}) "
            "ORDER BY seq",
            part,
        ):
            if state == "pending":
                pending.add(record_id)
            elif state == "rejected" or record_id in chains:
                chains.setdefault(record_id, []).append((state, kind, result))
    store.conn.executemany(
        "UPDATE records SET dirty = ? WHERE id = ?",
        [(int(r in pending or not _chain_ok(chains.get(r, []))), r) for r in wanted],
    )


def rejected_ops(store: Store) -> list[dict[str, Any]]:
    """Ops set aside by the server, with its reason (for a person to look at)."""
    with store.transaction():
        rows = store.conn.execute(
            "SELECT op_id, record_id, form, kind, result FROM outbox WHERE state = 'rejected' "
            "ORDER BY seq"
        ).fetchall()
    return [
        {"op_id": o, "record_id": r, "form": f, "kind": k, "result": _loads(res) or {}}
        for o, r, f, k, res in rows
    ]
