"""The outbox: the ops this device owes the platform, their states and the queries on them.

An op goes ``pending`` -> ``applied`` | ``conflict`` | ``merged`` | ``rejected`` (PROTOCOL.md
§5.3; a retryable rejection stays ``pending``), its ``result`` the server's answer as JSON.
``Outbox`` is the part of the narrow interface ``sync.replica`` uses for them (the records'
side is ``replica_io``): each method is one statement or one batch and joins the caller's
transaction.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Mapping, Sequence
from enum import StrEnum
from typing import Any

from app.core.records import dumps
from app.core.store.db import Database


class OutboxState(StrEnum):
    """An outbox op's state (``outbox.state``)."""

    PENDING = "pending"
    APPLIED = "applied"
    CONFLICT = "conflict"
    MERGED = "merged"
    REJECTED = "rejected"


STATUS_FIELD = "_status"  # outbox pseudo-field: a status change travels with the field changes

PENDING, REJECTED = OutboxState.PENDING.value, OutboxState.REJECTED.value
SETTLED = "settled"  # result mark of a rejected op whose values the platform came to hold
_CHUNK = 500  # ids per IN (...) query

# (seq, op_id, record_id, form, kind, base_version, fields, edited_at, author, result,
#  base_record: the merged-away record its base version belongs to, or None)
PendingOpRow = tuple[
    int, str, str, str, str, int | None, str, str, str | None, str | None, str | None
]
# (state, kind, result) of one op, in local order
ChainRow = tuple[str, str, str | None]


def _loads(text: str | None) -> Any:
    return json.loads(text) if text else None


class Outbox:
    """Queries and updates of the outbox for ``sync.replica`` (``Store.outbox``)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.conn = db.conn

    def pending_count(self) -> int:
        """Ops waiting to be sent."""
        row = self.conn.execute(f"SELECT count(*) FROM outbox WHERE state = '{PENDING}'").fetchone()
        return int(row[0])

    def pending_after(self, after: int, limit: int) -> list[PendingOpRow]:
        """The next pending ops after local sequence ``after``, oldest first."""
        return self.conn.execute(
            "SELECT o.seq, op_id, o.record_id, form, kind, base_version, fields, edited_at, "
            "author, result, b.record_id FROM outbox o LEFT JOIN outbox_bases b ON b.seq = o.seq "
            f"WHERE state = '{PENDING}' AND o.seq > ? ORDER BY o.seq LIMIT ?",
            (after, limit),
        ).fetchall()

    def records_with_rejections(self) -> set[str]:
        """Records with at least one rejected op."""
        return {
            r[0]
            for r in self.conn.execute(
                f"SELECT DISTINCT record_id FROM outbox WHERE state = '{REJECTED}'"
            )
        }

    def live_records_refused(self) -> list[str]:
        """Live records with an op the platform refused (not a delete the device settled
        itself, marked ``local``), oldest refusal first."""
        rows = self.conn.execute(
            "SELECT o.record_id FROM outbox o JOIN records r ON r.id = o.record_id "
            f"WHERE o.state = '{REJECTED}' AND r.deleted = 0 "
            "AND coalesce(json_extract(o.result, '$.local'), 0) = 0 ORDER BY o.seq"
        ).fetchall()
        return list(dict.fromkeys(r[0] for r in rows))

    def chain_before(self, record_id: str, seq: int) -> list[ChainRow]:
        """(state, kind, result) of a record's ops before ``seq``, in order."""
        return self.conn.execute(
            "SELECT state, kind, result FROM outbox WHERE record_id = ? AND seq < ? ORDER BY seq",
            (record_id, seq),
        ).fetchall()

    def chains(self, record_ids: Sequence[str]) -> Iterator[tuple[str, str, str, str | None]]:
        """(record_id, state, kind, result) of these records' ops, in order per record (one
        outbox scan per chunk: the outbox has no index on record_id)."""
        for start in range(0, len(record_ids), _CHUNK):
            part = record_ids[start : start + _CHUNK]
            marks = ",".join("?" * len(part))
            yield from self.conn.execute(
                "SELECT record_id, state, kind, result FROM outbox "
                f"WHERE record_id IN ({marks}) ORDER BY seq",
                part,
            )

    def has_pending_before(self, record_id: str, seq: int) -> bool:
        """Whether a pending op of the record comes before ``seq``."""
        row = self.conn.execute(
            f"SELECT 1 FROM outbox WHERE record_id = ? AND seq < ? AND state = '{PENDING}' LIMIT 1",
            (record_id, seq),
        ).fetchone()
        return row is not None

    def reject_op(self, seq: int, result: Mapping[str, Any]) -> None:
        """Mark an op rejected with this answer."""
        self.conn.execute(
            f"UPDATE outbox SET state = '{REJECTED}', result = ? WHERE seq = ?",
            (dumps(dict(result)), seq),
        )

    def rewrite_op(
        self,
        seq: int,
        kind: str,
        base_version: int | None,
        fields: Mapping[str, Any],
        result: Mapping[str, Any],
    ) -> None:
        """Write back an op completed before sending (kind, base version, fields, marks)."""
        self.conn.execute(
            "UPDATE outbox SET kind = ?, base_version = ?, fields = ?, result = ? WHERE seq = ?",
            (kind, base_version, dumps(dict(fields)), dumps(dict(result)), seq),
        )

    def forget_base_record(self, seq: int) -> None:
        """The op's base version became its record's own (completed): it no longer names the
        merged-away record it was made on (``outbox_bases``)."""
        self.conn.execute("DELETE FROM outbox_bases WHERE seq = ?", (seq,))

    def set_answers(self, answers: Sequence[tuple[str | None, str, int]]) -> None:
        """(state or None to keep it, answer JSON, seq) per op."""
        self.conn.executemany(
            "UPDATE outbox SET state = coalesce(?, state), result = ? WHERE seq = ?", answers
        )

    def set_answers_renaming(self, answers: Sequence[tuple[str | None, str, str, int]]) -> None:
        """(state or None to keep it, answer JSON, the op's new record id, seq) per op: its
        answer and its record's rename in one row write (``rekey.rename_plain``)."""
        self.conn.executemany(
            "UPDATE outbox SET state = coalesce(?, state), result = ?, record_id = ? WHERE seq = ?",
            answers,
        )

    def op_result(self, seq: int) -> Any:
        """An op's stored result (parsed), None when it has none."""
        row = self.conn.execute("SELECT result FROM outbox WHERE seq = ?", (seq,)).fetchone()
        return _loads(row[0]) if row else None

    def op_results(self, seqs: Sequence[int]) -> dict[int, Any]:
        """``op_result`` of many ops at once (parsed; ops without a result are left out)."""
        out: dict[int, Any] = {}
        for start in range(0, len(seqs), _CHUNK):
            part = list(seqs[start : start + _CHUNK])
            marks = ",".join("?" * len(part))
            for seq, result in self.conn.execute(
                f"SELECT seq, result FROM outbox WHERE seq IN ({marks}) AND result IS NOT NULL",
                part,
            ):
                out[seq] = _loads(result)
        return out

    def mark_ops(self, record_id: str, mark: str) -> None:
        """Add ``mark: true`` to the result of every op of a record."""
        rows = self.conn.execute(
            "SELECT seq, result FROM outbox WHERE record_id = ?", (record_id,)
        ).fetchall()
        self.conn.executemany(
            "UPDATE outbox SET result = ? WHERE seq = ?",
            [(dumps({**(_loads(result) or {}), mark: True}), seq) for seq, result in rows],
        )

    def settle_rejections(self, record_id: str) -> None:
        """Mark the record's rejected ops ``settled``: the platform has since come to hold
        every value of the record (a pull brought them), so they no longer break its chain
        (``sync.replica.outgoing``), nor go back to pending when their grid returns."""
        rows = self.conn.execute(
            f"SELECT seq, result FROM outbox WHERE record_id = ? AND state = '{REJECTED}'",
            (record_id,),
        ).fetchall()
        self.conn.executemany(
            "UPDATE outbox SET result = ? WHERE seq = ?",
            [(dumps({**(_loads(result) or {}), SETTLED: True}), seq) for seq, result in rows],
        )

    def ops_of(self, record_id: str) -> list[tuple[str, str, str, str | None]]:
        """(state, kind, fields, result) of a record's ops, in order."""
        return self.conn.execute(
            "SELECT state, kind, fields, result FROM outbox WHERE record_id = ? ORDER BY seq",
            (record_id,),
        ).fetchall()

    def pending_fields(
        self, record_id: str, kinds: Collection[str] | None = None
    ) -> Iterator[tuple[str, str]]:
        """(kind, fields) of a record's pending ops (of ``kinds`` when given)."""
        sql = f"SELECT kind, fields FROM outbox WHERE record_id = ? AND state = '{PENDING}'"
        args: list[Any] = [record_id]
        if kinds is not None:
            sql += f" AND kind IN ({','.join('?' * len(kinds))})"
            args.extend(kinds)
        yield from self.conn.execute(sql, args)

    def sent_newest_first(self, record_id: str) -> Iterator[tuple[str, str]]:
        """(kind, fields) of every op of a record, newest first."""
        yield from self.conn.execute(
            "SELECT kind, fields FROM outbox WHERE record_id = ? ORDER BY seq DESC", (record_id,)
        )

    def queue_resolve(
        self,
        record_id: str,
        form: str,
        base_version: int | None,
        fields: Mapping[str, Any],
        author: str,
    ) -> str:
        """Queue a ``resolve`` op for a person's choice; returns its op id."""
        op_id = self._db.next_op_id()
        self.conn.execute(
            "INSERT INTO outbox (op_id, record_id, form, kind, base_version, fields, edited_at, "
            "author) VALUES (?, ?, ?, 'resolve', ?, ?, ?, ?)",
            (op_id, record_id, form, base_version, dumps(dict(fields)), self._db.hlc(), author),
        )
        return op_id

    def requeue_out_of_scope(self, grid: str) -> list[str]:
        """Put back to ``pending``, in their order, the ops the platform refused as
        ``out_of_scope`` for records this device holds in ``grid`` (which has just entered its
        scope again, PROTOCOL.md §11 rule 3a), and the deletes the device settled locally
        because such a record's create had been refused (they must follow it). A whole-request
        refusal (403, ``request_error``) left nothing on the platform: the op keeps its id. A
        refusal answered in the push's results was logged, and a replay of its id would be
        answered from that log as refused again: the op takes a new id. A completed op keeps
        its ``full`` mark. Returns the record id of each op that went back, in order."""
        refused = f"""state = 'rejected'
            AND json_extract(result, '$.reason.code') = 'out_of_scope'
            AND json_extract(result, '$.{SETTLED}') IS NULL
            AND record_id IN (SELECT id FROM records WHERE grid = ?)"""
        rows = self.conn.execute(
            f"SELECT seq, record_id, result FROM outbox WHERE ({refused}) "
            f"OR (state = '{REJECTED}' AND json_extract(result, '$.local') = 1 "
            f"AND record_id IN (SELECT record_id FROM outbox WHERE {refused})) ORDER BY seq",
            (grid, grid),
        ).fetchall()
        for seq, _record_id, text in rows:
            old = _loads(text) or {}
            mark: dict[str, Any] = {"requeued": True}
            if old.get("full"):
                mark["full"] = True
            keep_id = old.get("request_error") or old.get("local")
            if keep_id:
                self.conn.execute(
                    f"UPDATE outbox SET state = '{PENDING}', result = ? WHERE seq = ?",
                    (dumps(mark), seq),
                )
            else:
                self.conn.execute(
                    f"UPDATE outbox SET state = '{PENDING}', result = ?, op_id = ? WHERE seq = ?",
                    (dumps(mark), self._db.next_op_id(), seq),
                )
        return [r for _s, r, _t in rows]

    def rejected_ops(self) -> list[tuple[str, str, str, str, str | None]]:
        """(op_id, record_id, form, kind, result) of rejected ops, oldest first."""
        return self.conn.execute(
            "SELECT op_id, record_id, form, kind, result FROM outbox "
            f"WHERE state = '{REJECTED}' ORDER BY seq"
        ).fetchall()
