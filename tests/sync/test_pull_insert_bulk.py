"""Pulled records new to the device go in by one executemany per table, numbered by the store
itself (no read of the new rows' ids back); against the plain writer (``write_pulled``, one
record at a time, SQLite numbering each row) they leave exactly the same rows."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core import ids
from app.core.forms import FormSet
from app.core.records import clean
from app.core.store import PulledRow, Store
from sync import replica
from tests.factories import resident
from tests.sync.test_pull_restamp import TABLES
from tests.sync.test_replica import SCOPE, page, pulled

NAMES = st.sampled_from(["张三", "李四", "王五", "Ann Lee", "单雄信", ""])
RECORDS = st.lists(
    st.tuples(st.integers(1, 400), NAMES, st.booleans(), st.sampled_from(["draft", "complete"])),
    min_size=1,
    max_size=8,
)


def _rows(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    return {name: store.conn.execute(sql).fetchall() for name, sql in TABLES.items()}


def _store(path: Path, formset: FormSet, before: int, dropped: bool) -> None:
    """A device holding ``before`` records; with ``dropped`` the newest is gone again (a gap
    at the top of the numbering)."""
    store = Store(path, formset)
    made = [store.save("resident", resident(seq=900 + 2 * i)) for i in range(before)]
    if dropped and made:
        row = store.replica.rows([made[-1].id])[made[-1].id]
        with store.transaction():
            store.replica.remove_record(row.rid, row.id, row.form)
    store.close()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=RECORDS, before=st.integers(0, 3), dropped=st.booleans())
def test_bulk_insert_leaves_the_same_rows_as_one_at_a_time(
    formset: FormSet, records: list[tuple[int, str, bool, str]], before: int, dropped: bool
) -> None:
    stamp = ids.now_iso()
    fresh = [
        pulled(ids.uuid7(), 1, resident(seq=seq, name=name), deleted=gone, status=status)
        for seq, name, gone, status in records
    ]
    fresh = [p.model_copy(update={"updated_at": stamp}) for p in fresh]
    with tempfile.TemporaryDirectory() as tmp:
        plain_path, bulk_path = Path(tmp) / "plain.sqlite", Path(tmp) / "bulk.sqlite"
        _store(plain_path, formset, before, dropped)
        shutil.copy(plain_path, bulk_path)
        outcome = []
        for path, bulk in ((plain_path, False), (bulk_path, True)):
            store = Store(path, formset)
            try:
                prepared = []
                for p in fresh:
                    data = clean(p.data)
                    row = PulledRow(
                        1, data, p.status, p.deleted, 1, False, None, None, stamp, p.updated_by
                    )
                    derived = store.derive(formset.form(p.form), data)
                    prepared.append((p.id, p.form, row, derived))
                with store.transaction():
                    if bulk:
                        store.replica.insert_pulled_many(prepared)
                    else:
                        for rec_id, form, row, derived in prepared:
                            store.replica.write_pulled(rec_id, form, row, derived, None)
                outcome.append(_rows(store))
            finally:
                store.close()
        assert outcome[0] == outcome[1]


def test_a_page_of_new_records_reads_no_ids_back(formset: FormSet, tmp_path: Path) -> None:
    store = Store(tmp_path / "device.sqlite", formset)
    try:
        statements: list[str] = []
        store.conn.set_trace_callback(statements.append)
        fresh = [pulled(ids.uuid7(), 1, resident(seq=1 + 2 * i)) for i in range(30)]
        tally = replica.apply_pull(store, page(*fresh, cursor=3), SCOPE)
        store.conn.set_trace_callback(None)
        assert tally.inserted == 30
        # before: the new rows' rids were read back by id, a query per 500 records
        assert not [s for s in statements if s.startswith("SELECT id, rid FROM records")]
        found = {s.id for s in store.search("张三", limit=100)}  # terms under the right rows
        assert found == {p.id for p in fresh}
    finally:
        store.close()
