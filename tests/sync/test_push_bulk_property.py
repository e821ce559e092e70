"""The bulk way a push batch's answers are recorded (``record_results``: stored results read in
one query, plain renames a run at a time) against the plain one, op by op: on the same device
store and the same answers, both leave exactly the same rows and the same tally."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from app.core.forms import FormSet
from app.core.store import Store
from sync import replica
from sync.protocol import OpResult, Reason
from tests.factories import resident
from tests.sync.test_replica import SCOPE, page, pulled

# what the platform answers to one op: applied, conflict, merged into a new id of a small pool
# (two device records may merge into one), merged into a record the device holds (a fold),
# rejected (retryable or not)
ANSWERS = st.one_of(
    st.just(("applied", 0)),
    st.just(("conflict", 0)),
    st.tuples(st.just("merged_new"), st.integers(0, 3)),
    st.tuples(st.just("merged_held"), st.integers(0, 1)),
    st.just(("retry", 0)),
    st.just(("rejected", 0)),
)

HELD = ["0190a000-0000-7000-8000-0000000000a0", "0190a000-0000-7000-8000-0000000000a1"]
POOL = [f"0190a000-0000-7000-8000-00000000000{n}" for n in range(4)]

TABLES = {
    "records": "SELECT id, form, data, status, deleted, server_version, dirty, base, conflict "
    "FROM records ORDER BY rid",
    "record_keys": "SELECT * FROM record_keys ORDER BY 1, 2, 3",
    "refs": "SELECT * FROM refs ORDER BY 1, 2, 3",
    "outbox": "SELECT seq, record_id, state, kind, fields, result FROM outbox ORDER BY seq",
    "history": "SELECT record_id, kind, changes, author FROM history ORDER BY seq",
    "people": "SELECT * FROM people ORDER BY 1",
}


def _rows(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    return {name: store.conn.execute(sql).fetchall() for name, sql in TABLES.items()}


def _device(path: Path, formset: FormSet, records: int, edits: list[int]) -> None:
    """Two records pulled from the platform (fold targets), ``records`` new residents typed on
    the device and an edit of some of them: the ops of one push batch."""
    store = Store(path, formset)
    for n, rid in enumerate(HELD):
        replica.apply_pull(store, page(pulled(rid, 1, resident(seq=901 + 2 * n))), SCOPE)
    made = [store.save("resident", resident(seq=1 + 2 * i)).id for i in range(records)]
    for i in edits:
        rid = made[i % records]
        store.save("resident", {**store.get(rid).data, "phone": f"1370000{i:04d}"}, record_id=rid)
    store.close()


def _results(store: Store, answers: list[tuple[str, int]]) -> list[OpResult]:
    ops = replica.next_batch(store, 0, 1000)
    out = []
    for n, op in enumerate(ops):
        kind, pick = answers[n % len(answers)]
        status = "merged_into" if kind.startswith("merged") else kind
        into = POOL[pick] if kind == "merged_new" else HELD[pick] if kind == "merged_held" else None
        reason = None
        if kind in ("retry", "rejected"):
            status = "rejected"
            reason = Reason(code="x", message_zh="错", message_en="bad", retryable=kind == "retry")
        out.append(
            OpResult(
                op_id=op.op_id,
                status=status,
                record_id=into or op.record_id,
                merged_into=into,
                version=None if reason else 100 - n,  # falling: a lost write shows
                reason=reason,
            )
        )
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    records=st.integers(1, 6),
    edits=st.lists(st.integers(0, 5), max_size=4),
    answers=st.lists(ANSWERS, min_size=1, max_size=10),
)
@example(
    records=1, edits=[0], answers=[("applied", 0), ("merged_new", 0)]
)  # rename after a version
@example(records=3, edits=[1], answers=[("merged_new", 0), ("merged_held", 1), ("merged_new", 1)])
def test_bulk_answers_leave_the_same_rows_as_the_plain_path(
    formset: FormSet, records: int, edits: list[int], answers: list[tuple[str, int]]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        plain_path, bulk_path = Path(tmp) / "plain.sqlite", Path(tmp) / "bulk.sqlite"
        _device(plain_path, formset, records, edits)
        shutil.copy(plain_path, bulk_path)
        outcome = []
        for path, bulk in ((plain_path, False), (bulk_path, True)):
            store = Store(path, formset)
            try:
                ops = replica.next_batch(store, 0, 1000)
                tally = replica.record_results(store, ops, _results(store, answers), bulk=bulk)
                outcome.append((tally, _rows(store)))
            finally:
                store.close()
        assert outcome[0] == outcome[1]


def test_a_batch_of_known_records_is_renamed_without_reading_each_record(
    formset: FormSet, tmp_path: Path
) -> None:
    """Issue 17: a push of residents the platform already knows answers every op
    ``merged_into`` another id; the device read each record (and ran a dozen statements) per
    op to rename it, most of the push's device time. Plain renames now go in bulk."""
    path = tmp_path / "device.sqlite"
    _device(path, formset, len(POOL), [])
    store = Store(path, formset)
    try:
        ops = replica.next_batch(store, 0, 1000)
        results = _results(store, [("merged_new", n) for n in range(len(POOL))])
        statements: list[str] = []
        store.conn.set_trace_callback(statements.append)
        replica.record_results(store, ops, results)
        store.conn.set_trace_callback(None)
        reads = [s for s in statements if s.startswith("SELECT rid, id, form, data")]
        assert reads == []
        assert {r.record_id for r in results} == set(POOL)
        assert all(store.get(i) is not None for i in POOL)  # renamed on the device
        assert all(store.get(op.record_id) is None for op in ops)
    finally:
        store.close()
