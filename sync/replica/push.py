"""The outbox side of sync state, coming back: what a batch's answers did (``outgoing`` says
which ops go).

Part of ``sync.replica`` (import it from there). Each step is one local transaction, so a crash
at any instant leaves either the batch's answers all recorded or none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from app.core.forms import FormSet
from app.core.records import canonical_json_all
from app.core.store import OutboxState, Store
from sync.protocol import OpResult
from sync.replica.outgoing import OutOp, refresh_dirty
from sync.replica.rekey import (
    FOLDED,
    Move,
    plain_rename,
    reference_fields_by_form,
    rename_plain,
    rewrite_id,
)

ACKED = {
    "applied": OutboxState.APPLIED,
    "conflict": OutboxState.CONFLICT,
    "merged_into": OutboxState.MERGED,
}


@dataclass
class PushTally:
    """What one batch's answers did."""

    applied: int = 0
    conflicts: int = 0
    merged: int = 0
    rejected: int = 0
    deferred: int = 0  # retryable rejections: still pending, sent again next time
    messages: list[str] = field(default_factory=list)


# -- outbox: what came back -------------------------------------------------------------------


def record_results(
    store: Store, ops: Sequence[OutOp], results: Sequence[OpResult], *, bulk: bool = True
) -> PushTally:
    """Persist one batch's answers, in one transaction (PROTOCOL.md §5.3).

    ``bulk`` (the default) reads the batch's stored results in one query and does the id
    rewrites that are renames, not folds (``rekey.plain_rename``), a run at a time, in one
    statement per table, references to a renamed house or address included;
    ``bulk=False`` is the plain path, one op at a time, that the property tests compare it
    with (tests/sync/test_push_bulk_property.py)."""
    if len(ops) != len(results) or any(
        o.op_id != r.op_id for o, r in zip(ops, results, strict=True)
    ):
        raise ValueError("push results do not match the ops sent")
    tally = PushTally()
    touched: set[str] = set()
    with store.transaction():
        answers = _Answers(store, ops, results, bulk)
        for op, result in zip(ops, results, strict=True):
            target = _record_result(store, op, result, _status(result), tally, answers)
            touched.add(target)
        if bulk:  # the last versions and renames go with the dirty flags: one row write each
            refresh_dirty(store, touched, *answers.write(last=True))
        else:
            answers.write()
            refresh_dirty(store, touched)
    return tally


def leaves_later_ops(
    formset: FormSet,
    ops: Sequence[OutOp],
    results: Sequence[OpResult],
    later: Sequence[OutOp] = (),
    *,
    named: frozenset[str] | None = None,
) -> bool:
    """Whether recording these answers leaves the pending ops ``later`` as they are, so a
    batch read before they were recorded (``read_ahead``) is what ``next_batch`` would read
    after: no rejection (it has its record's later ops completed, §11.3) and no op of
    ``later`` naming a record an answer gives a new id, old id or new (``rewrite_id`` moves
    the old id's ops to the new one, a fold marks them and may make the new id's ops need
    completing, and references to the old id are swapped in reference fields). Ops naming
    neither are untouched, so a push of records the platform knows, all renamed, keeps
    overlapping. ``named``: ``names_of(formset, later)``, worked out before."""
    if any(_status(r) == "rejected" for r in results):
        return False
    renamed = _renamed_ids(ops, results)
    if not renamed:
        return True
    return renamed.isdisjoint(names_of(formset, later) if named is None else named)


def names_of(formset: FormSet, ops: Sequence[OutOp]) -> frozenset[str]:
    """The ids of the records these ops are of, and of those they name in a reference field
    of their form (any target: a superset of those ``rekey`` swaps for one renamed form).
    Why apart: the session works them out while it reads a batch ahead, when the batch
    before it is in flight, not between that batch's answer and the next request (a known
    push's every answer renames: 1.5-2 ms a request there, issue 17)."""
    refs = reference_fields_by_form(formset)
    out = {op.record_id for op in ops}
    for op in ops:
        names = refs.get(op.wire["form"])
        if names:
            fields = op.wire["fields"]
            out.update(v for name in names if type(v := fields.get(name)) is str)
    return frozenset(out)


def _renamed_ids(ops: Sequence[OutOp], results: Sequence[OpResult]) -> set[str]:
    """The old and new ids of the records these answers (none rejected) give a new id."""
    out: set[str] = set()
    for op, result in zip(ops, results, strict=True):
        old = op.wire["record_id"]
        canonical = result.merged_into or result.record_id or old
        if canonical != old:
            out.update((old, canonical))
    return out


def _status(result: OpResult) -> str:
    """The status an answer stands for: a replayed op's is the one it had the first time."""
    if result.status == "duplicate_op":
        return result.original_status or "applied"
    return result.status


def _canonical(op: OutOp, result: OpResult) -> str:
    """The id the server knows the op's record by (a merge or a new id, else its own)."""
    return result.merged_into or result.record_id or op.record_id


class _Answers:
    """A batch's outbox and version updates, written with one executemany each; written
    before an id rewrite that is not a plain rename too, which reads the outbox states (what
    the server acknowledged). Renames (no fold) wait in ``moves`` and go in bulk, before any
    other rewrite and at the end, so every rewrite still sees the ones before it done."""

    def __init__(
        self, store: Store, ops: Sequence[OutOp], results: Sequence[OpResult], bulk: bool
    ) -> None:
        self.store, self.bulk = store, bulk
        self.outbox: list[tuple[str | None, dict[str, Any], int]] = []  # JSON when written
        self.owners: list[str] = []  # the record id each answered op was sent with
        self.gone: set[str] = set()  # ids rewritten away earlier in the batch
        self.versions: list[tuple[int, str, int]] = []
        self.moves: list[Move] = []  # the run of renames
        self.moved: dict[str, tuple[str, int]] = {}  # old -> (canonical, versions noted before)
        self.news: set[str] = set()  # the run's canonical ids
        self.stored: dict[int, Any] | None = None
        self.forms: dict[str, str] = {}
        if bulk:
            self.stored = store.outbox.op_results([op.seq for op in ops])
            renamed = [
                (op.record_id, c)
                for op, r in zip(ops, results, strict=True)
                if (c := _canonical(op, r)) != op.record_id
            ]
            self.forms = store.replica.forms_of(i for pair in renamed for i in pair)

    def answer(self, state: str | None, answer: dict[str, Any], op: OutOp) -> None:
        """Note an op's answer (state None: it stays pending); its JSON text is written with
        the others' (``_owned``: one plainness pass for the batch, not one walk each)."""
        self.outbox.append((state, answer, op.seq))
        self.owners.append(op.record_id)

    def folded(self, seq: int) -> bool:
        """Whether the op carries the ``folded`` mark (see ``rekey._mark_folded``)."""
        if self.stored is None:  # plain path, or a fold in this batch may have marked it
            return _folded(self.store, seq)
        return bool((self.stored.get(seq) or {}).get(FOLDED))

    def rewrite(self, old: str, canonical: str) -> None:
        """``rewrite_id`` in the answers' order: a rename joins the run of moves. A run names
        no id twice (it is applied at once): an id already in it starts a new run."""
        if self.bulk and (old in self.news or canonical in self.moved):
            self.write()
        if self.bulk and plain_rename(self.store, self.forms, old, canonical):
            form = self.forms.pop(old)
            self.moves.append(Move(old, canonical, form, len(self.outbox)))
            self.moved[old] = (canonical, len(self.versions))
            self.news.add(canonical)
            self.forms[canonical] = form
            return
        self.write()
        rewrite_id(self.store, old, canonical)
        self.gone.add(old)
        if self.bulk:  # a fold may mark ops and remove records: read them again
            self.stored = None
            self.forms.update(self.store.replica.forms_of([old, canonical]))
            if old not in self.store.replica.forms_of([old]):
                self.forms.pop(old, None)

    def write(self, *, last: bool = False) -> tuple[list[tuple[int, str, int]], dict[str, str]]:
        """The answers so far: renames first, then the versions, each under the id its record
        had when the answer came (a version noted before its record's rename follows it; one
        noted for an id before a rename brought it named no record, as in the plain path).
        ``last`` (the batch's last write): the versions are returned, not written, and so are
        the records' own renames when ``rename_plain`` could leave them (new id -> old id):
        ``refresh_dirty`` writes them with the dirty flags, one row write per record."""
        answered = {seq: n for n, (state, _a, seq) in enumerate(self.outbox) if state}
        left = rename_plain(
            self.store, self.moves, answered, records=not last, answers=self._owned()
        )
        self.gone.update(m.old for m in self.moves)
        noted = self.versions
        if self.moved:
            arrived = {new: at for new, at in self.moved.values()}
            noted = [
                (v, self._renamed(i, n), w)
                for n, (v, i, w) in enumerate(noted)
                if n >= arrived.get(i, 0)  # noted before a record took the id: it had none
            ]
        if not last:
            self.store.replica.set_server_versions(noted)
        self.outbox, self.owners, self.versions, self.moves, self.moved = [], [], [], [], {}
        self.news = set()
        return (noted, left) if last else ([], {})

    def _owned(self) -> list[tuple[str | None, str, int, str | None]]:
        """The run's answers, their JSON texts (``canonical_json_all``: as ``dumps``) and the
        id each op's row has when the run is written: the one it was sent with, unless a
        rewrite earlier in the batch moved that id away (None: not known here, and
        ``rename_plain`` renames such a row by its id, as before)."""
        gone = self.gone
        texts = canonical_json_all([answer for _s, answer, _q in self.outbox])
        return [
            (state, text, seq, None if owner in gone else owner)
            for (state, _a, seq), text, owner in zip(self.outbox, texts, self.owners, strict=True)
        ]

    def _renamed(self, record_id: str, index: int) -> str:
        """The id the n-th noted version's record has after the run's renames."""
        while (move := self.moved.get(record_id)) is not None and index < move[1]:
            record_id = move[0]
        return record_id


def _record_result(
    store: Store, op: OutOp, result: OpResult, status: str, tally: PushTally, answers: _Answers
) -> str:
    marks = {"full": True} if op.full else {}
    if answers.folded(op.seq):
        marks[FOLDED] = True  # the answer replaces the result: keep the mark (see _chain_ok)
    answer = {**result.model_dump(exclude_none=True), **marks}
    if status == "rejected":
        reason = result.reason
        if reason is not None and reason.retryable:
            tally.deferred += 1
            answers.answer(None, answer, op)  # stays pending
            return op.record_id
        tally.rejected += 1
        if reason is not None:
            tally.messages.append(f"{reason.message_zh} / {reason.message_en}")
        answers.answer(OutboxState.REJECTED, answer, op)
        return op.record_id
    state = ACKED.get(status, OutboxState.APPLIED)
    answers.answer(state, answer, op)
    canonical = _canonical(op, result)
    if canonical != op.record_id:
        answers.rewrite(op.record_id, canonical)
    if state == OutboxState.MERGED:
        tally.merged += 1
    elif state == OutboxState.CONFLICT:
        tally.conflicts += 1
    else:
        tally.applied += 1
    if result.version is not None:
        answers.versions.append((result.version, canonical, result.version))
    return canonical


def _folded(store: Store, seq: int) -> bool:
    return bool((store.outbox.op_result(seq) or {}).get(FOLDED))


def set_aside(
    store: Store,
    op: OutOp,
    code: str,
    message_zh: str,
    message_en: str,
    field: str | None = None,
) -> None:
    """A whole-request 4xx named this op: keep it on the device, marked, and send the others.
    ``field``: the field the 4xx named, kept so the person is told where to correct."""
    reason: dict[str, Any] = {
        "code": code,
        "message_zh": message_zh,
        "message_en": message_en,
        "retryable": False,
    }
    if field:
        reason["field"] = field
    result: dict[str, Any] = {
        "op_id": op.op_id,
        "status": "rejected",
        "request_error": True,
        "reason": reason,
    }
    if op.full:
        result["full"] = True  # completed before it was sent (kept if it is queued again)
    with store.transaction():
        store.outbox.reject_op(op.seq, result)
        refresh_dirty(store, [op.record_id])


def requeue_entered(store: Store, grid: str) -> int:
    """``grid`` entered this device's scope again and its records are fetched: queue again, in
    their order, the ops the platform refused only because the grid was not the user's then
    (``out_of_scope``) for records the device holds in it (PROTOCOL.md §11 rule 3a; other
    refusals would only be refused again). Call in the transaction that finishes the grid's
    fetch. The task results refused so for the grid's items go back too
    (``Tasks.requeue_out_of_scope``). Returns how many ops and results went back to pending."""
    with store.transaction():
        records = store.outbox.requeue_out_of_scope(grid)
        if records:
            refresh_dirty(store, records)
        results = store.tasks.requeue_out_of_scope(grid)
    return len(records) + results
