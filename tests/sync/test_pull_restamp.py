"""A pull that brings back records the device already holds as they are (the nightly pull
after a push) restamps them in one statement instead of rewriting each row, its side tables
and history; against the plain path (every clean copy rewritten in full) it leaves exactly the
same rows."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core import ids
from app.core.forms import FormSet
from app.core.store import Store
from sync import replica
from sync.protocol import ConflictEntry
from tests.factories import resident
from tests.sync.test_replica import SCOPE, ack, page, pulled

TABLES = {
    "records": "SELECT rid, id, form, form_version, grid, title, sort_key, data, status, "
    "deleted, server_version, dirty, base, conflict, updated_at, updated_by FROM records "
    "ORDER BY rid",
    "record_keys": "SELECT k.form, k.key, k.rid, r.id FROM record_keys k LEFT JOIN records r "
    "ON r.rid = k.rid ORDER BY 1, 2, 3",
    "refs": "SELECT * FROM refs ORDER BY 1, 2, 3",
    "people": "SELECT * FROM people ORDER BY 1",
    "search": "SELECT rowid, terms FROM search ORDER BY 1",
    "address_search": "SELECT rowid, address, initials, starts FROM address_search ORDER BY 1",
    "history": "SELECT record_id, kind, changes, author FROM history ORDER BY seq",
    "outbox": "SELECT seq, record_id, state, kind, fields FROM outbox ORDER BY seq",
}

# what the platform sends back for one held record: as held, as held with an open conflict,
# with a field changed, deleted, or completed
CHANGES = st.sampled_from(["same", "same_conflict", "phone", "deleted", "complete"])


def _rows(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    return {name: store.conn.execute(sql).fetchall() for name, sql in TABLES.items()}


def _device(path: Path, formset: FormSet, count: int) -> list[tuple[str, dict[str, Any]]]:
    """``count`` residents typed here, pushed (version 1) and pulled back once: clean copies."""
    store = Store(path, formset)
    made = [store.save("resident", resident(seq=1 + 2 * i)) for i in range(count)]
    ack(store, 1)
    replica.apply_pull(store, page(*(pulled(r.id, 1, r.data) for r in made)), SCOPE)
    held = [(r.id, store.get(r.id).data) for r in made]
    store.close()
    return held


def _echo(record_id: str, data: dict[str, Any], change: str, version: int) -> Any:
    if change == "phone":
        return pulled(record_id, version, {**data, "phone": "13912345678"}, by="li")
    if change == "deleted":
        return pulled(record_id, version, data, deleted=True)
    if change == "complete":
        return pulled(record_id, version, data, status="complete")
    conflict = None
    if change == "same_conflict":
        entry = {"field": "phone", "base": "1", "server": "2", "incoming": "3", "kind": "hard"}
        conflict = [ConflictEntry.model_validate(entry)]
    return pulled(record_id, version, data, conflict=conflict, by="platform")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    changes=st.lists(CHANGES, min_size=1, max_size=5),
    bump=st.booleans(),
)
def test_restamping_leaves_the_same_rows_as_rewriting(
    formset: FormSet, changes: list[str], bump: bool
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        plain_path, bulk_path = Path(tmp) / "plain.sqlite", Path(tmp) / "bulk.sqlite"
        held = _device(plain_path, formset, len(changes))
        shutil.copy(plain_path, bulk_path)
        stamp = ids.now_iso()
        echoes = [
            _echo(rid, data, change, 2 if bump else 1).model_copy(update={"updated_at": stamp})
            for (rid, data), change in zip(held, changes, strict=True)
        ]
        outcome = []
        for path, bulk in ((plain_path, False), (bulk_path, True)):
            store = Store(path, formset)
            try:
                tally = replica.apply_pull(store, page(*echoes, cursor=9), SCOPE, bulk=bulk)
                outcome.append((tally, _rows(store)))
            finally:
                store.close()
        assert outcome[0] == outcome[1]


def test_a_pull_of_what_the_device_pushed_runs_a_statement_per_table_not_per_record(
    formset: FormSet, tmp_path: Path
) -> None:
    path = tmp_path / "device.sqlite"
    held = _device(path, formset, 20)
    store = Store(path, formset)
    try:
        statements: list[str] = []
        store.conn.set_trace_callback(statements.append)
        replica.apply_pull(store, page(*(pulled(r, 2, d) for r, d in held), cursor=9), SCOPE)
        store.conn.set_trace_callback(None)
        # before: per record, the row rewritten and a delete and an insert per side table
        writes = [s for s in statements if s.split()[0] in ("UPDATE", "DELETE", "INSERT")]
        side = ("search", "record_keys", "refs", "people", "address_search", "history")
        assert not [s for s in writes if any(f" {t} " in s for t in side)], writes
        restamps = [s for s in writes if s.startswith("UPDATE records SET form_version")]
        assert len(set(restamps)) == len(held)  # one executemany: each row's UPDATE traced
        assert all(store.get(r).server_version == 2 for r, _d in held)
    finally:
        store.close()
