"""Issue 17: natural keys name their record by ``records.rid``, which a rename keeps, so the
device's answers to a push of records the platform already knows (every create "merged into"
the platform's id) write no key row; a fold (the platform's copy is on the device too) leaves
the keys of the copy it keeps only, and "already registered" answers stay right."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core import ids
from app.core.forms import FormSet
from app.core.store import Store
from sync import replica
from sync.protocol import OpResult
from tests.core.test_record_keys import expected_keys, held_keys
from tests.factories import resident
from tests.sync.test_replica import SCOPE, page, pulled


def _merged(store: Store, into: dict[str, str] | None = None) -> tuple[list, list[OpResult]]:
    """The pending batch and its answers: each create merged into ``into[record id]``, or
    into a platform id new to the device."""
    ops = replica.next_batch(store, 0, 1000)
    results = []
    for op in ops:
        canonical = (into or {}).get(op.record_id) or ids.uuid7()
        results.append(
            OpResult(
                op_id=op.op_id,
                status="merged_into",
                record_id=canonical,
                merged_into=canonical,
                version=1,
            )
        )
    return ops, results


@pytest.mark.parametrize("bulk", [True, False])
def test_a_known_push_renames_records_without_writing_a_key_row(
    formset: FormSet, tmp_path: Path, bulk: bool
) -> None:
    store = Store(tmp_path / "device.sqlite", formset)
    try:
        made = [store.save("resident", resident(seq=1 + 2 * n)) for n in range(8)]
        ops, results = _merged(store)
        before = store.conn.execute("SELECT * FROM record_keys ORDER BY 1, 2, 3").fetchall()
        statements: list[str] = []
        store.conn.set_trace_callback(statements.append)
        replica.record_results(store, ops, results, bulk=bulk)
        store.conn.set_trace_callback(None)
        assert [s for s in statements if "record_keys" in s] == []
        after = store.conn.execute("SELECT * FROM record_keys ORDER BY 1, 2, 3").fetchall()
        assert after == before  # the same rows: each names the record's unchanged rid
        assert held_keys(store) == expected_keys(store)
        for record, result in zip(made, results, strict=True):
            assert store.get(record.id) is None
            assert store.find_by_key("resident", record.data) == [result.record_id]
    finally:
        store.close()


@pytest.mark.parametrize("bulk", [True, False])
def test_a_fold_leaves_the_kept_copys_keys_and_a_reused_rid_none(
    formset: FormSet, tmp_path: Path, bulk: bool
) -> None:
    """The device typed a resident the platform holds and the device has pulled: the answer
    folds the typed copy (the highest rid) into the pulled one and removes its row. The next
    record saved takes that rid again and must not look registered under the folded keys."""
    store = Store(tmp_path / "device.sqlite", formset)
    try:
        held = ids.uuid7()
        replica.apply_pull(store, page(pulled(held, 1, resident(seq=1))), SCOPE)
        other = store.save("resident", resident(seq=3))
        typed = store.save("resident", resident(seq=1, phone="13700000000"))
        assert sorted(store.find_by_key("resident", typed.data)) == sorted([held, typed.id])
        rid = store.reads.rid(typed.id)
        ops, results = _merged(store, {typed.id: held, other.id: other.id})
        results = [
            r
            if r.record_id != other.id
            else OpResult(op_id=r.op_id, status="applied", record_id=other.id, version=1)
            for r in results
        ]
        replica.record_results(store, ops, results, bulk=bulk)
        assert store.get(typed.id) is None
        assert held_keys(store) == expected_keys(store)
        assert store.find_by_key("resident", typed.data) == [held]
        newcomer = store.save("resident", resident(seq=5))
        assert store.reads.rid(newcomer.id) == rid  # the folded copy's number again
        assert store.find_by_key("resident", typed.data) == [held]
        assert store.find_by_key("resident", newcomer.data) == [newcomer.id]
        assert store.find_by_key("resident", other.data) == [other.id]
        assert held_keys(store) == expected_keys(store)
    finally:
        store.close()
