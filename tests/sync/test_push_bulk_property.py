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

from app.core import ids
from app.core.forms import FormSet, load_formset
from app.core.records import dumps
from app.core.store import Store
from sync import replica
from sync.protocol import OpResult, Reason, ResultStatus
from tests.core.test_record_keys import expected_keys, held_keys
from tests.factories import resident
from tests.sync.test_replica import GRID, SCOPE, page, pulled

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
    "record_keys": "SELECT k.form, k.key, r.id FROM record_keys k LEFT JOIN records r "
    "ON r.rid = k.rid ORDER BY 1, 2, 3",
    "refs": "SELECT * FROM refs ORDER BY 1, 2, 3",
    "outbox": "SELECT o.seq, o.record_id, state, kind, fields, result, b.record_id "
    "FROM outbox o LEFT JOIN outbox_bases b ON b.seq = o.seq ORDER BY o.seq",
    "history": "SELECT record_id, kind, changes, author FROM history ORDER BY seq",
    "people": "SELECT * FROM people ORDER BY 1",
    "autosave": "SELECT slot, form, record_id, data FROM autosave ORDER BY slot",
    "dedup_decisions": "SELECT record_id, other_id, decision FROM dedup_decisions ORDER BY seq",
    "task_items": "SELECT id, record_id, state FROM task_items ORDER BY id",
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
@example(  # a version noted for an id before a later rename in the run brought a record to it
    records=5,
    edits=[5, 1, 2, 5],
    answers=[
        ("merged_held", 0),
        ("merged_new", 2),
        ("retry", 0),
        ("merged_held", 1),
        ("retry", 0),
        ("merged_new", 3),
        ("applied", 0),
        ("merged_new", 3),
        ("rejected", 0),
    ],
)
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
                assert held_keys(store) == expected_keys(store)  # folds leave no key behind
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


# -- renames of records other records point at (houses) ----------------------------------------

HELD_HOUSE = "0190a000-0000-7000-8000-0000000000b0"
HOUSE_POOL = [f"0190a000-0000-7000-8000-0000000000c{n}" for n in range(4)]


def _house(n: int) -> dict[str, Any]:
    return {"house_code": f"H{n}", "address_text": f"幸福路{n}号", "grid": GRID}


def _device_with_houses(path: Path, formset: FormSet, houses: int, links: list[int]) -> None:
    """A house pulled from the platform (a fold target), ``houses`` houses typed on the device,
    a resident or a unit pointing at a house per entry of ``links`` (n: house n % (houses + 1),
    the last one the pulled house), an open form, a duplicate decision and a task item naming
    a house: a rename of a house must reach them all."""
    store = Store(path, formset)
    replica.apply_pull(store, page(pulled(HELD_HOUSE, 1, _house(900), form="house")), SCOPE)
    made = [store.save("house", _house(i)).id for i in range(houses)] + [HELD_HOUSE]
    for n, pick in enumerate(links):
        house = made[pick % len(made)]
        if n % 3 == 2:
            store.save("unit", {"name": f"小店{n}", "house_ref": house, "grid": GRID})
        else:
            store.save("resident", resident(seq=1 + 2 * n, house_ref=house))
    store.autosave_put("s1", "resident", None, {"house_ref": made[0], "name": "王"})
    store.decide_duplicate(made[0], made[-1], "different", author="wang")
    store.conn.execute(
        "INSERT INTO task_items (id, task_id, record_id, grid, state, updated_at) "
        "VALUES ('i1', 't1', ?, ?, 'open', '2026-01-01')",
        (made[0], GRID),
    )
    store.close()


def _house_results(
    store: Store, ops: list[replica.OutOp], answers: list[tuple[str, int]]
) -> list[OpResult]:
    """``_results`` with each form's own pool of platform ids (a house merges into a house)."""
    out = []
    for n, op in enumerate(ops):
        kind, pick = answers[n % len(answers)]
        into = None
        if kind == "merged_new":
            into = (HOUSE_POOL if op.wire["form"] == "house" else POOL)[pick]
        elif kind == "merged_held":
            into = HELD_HOUSE if op.wire["form"] == "house" else HELD[pick]
        status: ResultStatus = "merged_into" if into else "applied"
        if kind == "conflict":
            status = "conflict"
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
                version=None if reason else 100 - n,
                reason=reason,
            )
        )
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    houses=st.integers(1, 5),
    links=st.lists(st.integers(0, 5), max_size=6),
    answers=st.lists(ANSWERS, min_size=1, max_size=10),
    limit=st.integers(1, 12),
)
@example(houses=2, links=[0, 1, 0], answers=[("merged_new", 0), ("merged_new", 1)], limit=2)
@example(houses=2, links=[0, 2], answers=[("merged_new", 0), ("merged_held", 0)], limit=12)
@example(  # a unit's op pointing at a renamed house is answered after the rename
    houses=2,
    links=[5, 1, 0, 4],
    answers=[
        ("merged_new", 3),
        ("rejected", 0),
        ("merged_held", 1),
        ("merged_new", 0),
        ("rejected", 0),
        ("merged_held", 1),
    ],
    limit=10,
)
def test_bulk_renames_of_referenced_records_leave_the_same_rows_as_the_plain_path(
    formset: FormSet, houses: int, links: list[int], answers: list[tuple[str, int]], limit: int
) -> None:
    """Houses renamed in a run (one statement per table) against ``rewrite_id`` one at a
    time: the records, refs and people pointing at them, the pending ops (those outside the
    batch too), the open form, the decision and the task item end up the same."""
    with tempfile.TemporaryDirectory() as tmp:
        plain_path, bulk_path = Path(tmp) / "plain.sqlite", Path(tmp) / "bulk.sqlite"
        _device_with_houses(plain_path, formset, houses, links)
        shutil.copy(plain_path, bulk_path)
        outcome = []
        for path, bulk in ((plain_path, False), (bulk_path, True)):
            store = Store(path, formset)
            try:
                ops = replica.next_batch(store, 0, limit)
                results = _house_results(store, ops, answers)
                tally = replica.record_results(store, ops, results, bulk=bulk)
                outcome.append((tally, _rows(store)))
            finally:
                store.close()
        assert outcome[0] == outcome[1]


# statements run once per answered op whatever the answer (the outbox state, the version, the
# dirty flag): a push of new records runs them too. The records' write from the temp table is
# one statement, but the trace shows it again for each row its dirty trigger looks at
_PER_ANSWER = (
    "UPDATE outbox SET state = coalesce(",
    "UPDATE records SET server_version = ",
    "UPDATE records SET dirty = ",
    "INSERT INTO temp.settle_rows ",
    "UPDATE records SET id = s.new, server_version = ",
)
# the rows of the run's one executemany into its temp table (traced once per row)
_PER_MOVE = "INSERT INTO temp.rekey_moves "


def _statements_of_known_push(formset: FormSet, path: Path, count: int, houses: bool) -> list[str]:
    """The statements the device runs to record one batch of ``count`` answers that all
    merge into ids new to the device (residents, or houses each lived in by a resident whose
    op is not in the batch), less those run per answered op anyway (``_PER_ANSWER``)."""
    store = Store(path, formset)
    try:
        if houses:
            made = [store.save("house", _house(i)).id for i in range(count)]
            for n, house in enumerate(made):
                store.save("resident", resident(seq=1 + 2 * n, house_ref=house))
        else:
            for n in range(count):
                store.save("resident", resident(seq=1 + 2 * n))
        ops = replica.next_batch(store, 0, count)
        results = [
            OpResult(
                op_id=op.op_id,
                status="merged_into",
                record_id=(canonical := ids.uuid7()),
                merged_into=canonical,
                version=1,
            )
            for op in ops
        ]
        statements: list[str] = []
        store.conn.set_trace_callback(statements.append)
        replica.record_results(store, ops, results)
        store.conn.set_trace_callback(None)
        assert all(store.get(r.record_id) is not None for r in results)
        if houses:  # every resident (ops still pending) now names its house's platform id
            named = {op["fields"]["house_ref"] for op in store.pending_ops()}
            assert named == {r.record_id for r in results}
        return [s for s in statements if not s.startswith((*_PER_ANSWER, _PER_MOVE))]
    finally:
        store.close()


def test_a_run_of_renames_runs_the_same_statements_for_4_records_as_for_40(
    formset: FormSet, tmp_path: Path
) -> None:
    """Issue 17: a push of residents the platform already knows renames every record; the
    device ran each rename's statements once per record (nine an executemany row each, a
    dozen and a scan of the pending ops per house). A run now loads its moves into a temp
    table and runs one statement per table: the count does not grow with the run."""
    for houses in (False, True):
        few = _statements_of_known_push(formset, tmp_path / f"few{houses}.sqlite", 4, houses)
        many = _statements_of_known_push(formset, tmp_path / f"many{houses}.sqlite", 40, houses)
        if houses:  # each resident's data and pending op is rewritten: executemany rows
            rows = ("UPDATE records SET data = ", "UPDATE outbox SET fields = ")
            assert sum(s.startswith(rows) for s in many) == 10 * sum(
                s.startswith(rows) for s in few
            )
            few = [s for s in few if not s.startswith(rows)]
            many = [s for s in many if not s.startswith(rows)]
        assert len(many) == len(few), (houses, len(few), len(many))


def _known_answers(ops: list[replica.OutOp]) -> list[OpResult]:
    """Each op answered ``merged_into`` a platform id new to the device, at version 3 (a
    push of records the platform knows)."""
    return [
        OpResult(op_id=o.op_id, status="merged_into", record_id=n, merged_into=n, version=3)
        for o, n in zip(ops, ids.uuid7_many(len(ops)), strict=True)
    ]


@settings(max_examples=60, deadline=None)
@given(
    ids_=st.lists(
        st.text(st.characters(exclude_categories=["Cs"]), min_size=1),
        min_size=2,
        max_size=6,
        unique=True,
    )
)
def test_a_runs_merge_history_text_is_what_dumps_writes(ids_: list[str]) -> None:
    """The run's ``merge`` history rows are written by SQLite's JSON functions: the text is
    the one ``dumps`` writes for the plain path, whatever the ids hold."""
    half = len(ids_) // 2
    moves = list(zip(ids_[:half], ids_[half : 2 * half], strict=True))
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "device.sqlite", load_formset())
        try:
            with store.transaction():
                store.replica.load_moves([(o, n, "resident", False) for o, n in moves])
                store.replica.rename_moved()
            got = store.conn.execute(
                "SELECT record_id, changes FROM history WHERE kind = 'merge' ORDER BY seq"
            ).fetchall()
        finally:
            store.close()
    assert got == [(n, dumps({"_merged_from": [o, n]})) for o, n in moves]


def test_a_batch_of_known_records_looks_their_forms_up_in_one_statement(
    formset: FormSet, tmp_path: Path
) -> None:
    """Issue 17, the known push: a batch of 1,000 answers ``merged_into`` new ids names 2,000
    ids whose forms the bulk path looks up; that was a statement per 500 bound ids,
    and is now one, the ids passed as one JSON text (``ReplicaIO.forms_of``)."""
    path = tmp_path / "device.sqlite"
    store = Store(path, formset)
    try:
        store.insert_many("resident", [(None, resident(seq=n), "draft") for n in range(600)])
        ops = replica.next_batch(store, 0, 1000)
        results = _known_answers(ops)
        fresh = [r.record_id for r in results]
        statements: list[str] = []
        store.conn.set_trace_callback(statements.append)
        replica.record_results(store, ops, results)
        store.conn.set_trace_callback(None)
        lookups = [s for s in statements if s.startswith("SELECT") and "form FROM" in s]
        assert len(lookups) == 1, lookups
        assert store.replica.forms_of(fresh[:3] + ["nope"]) == dict.fromkeys(fresh[:3], "resident")
        assert store.replica.forms_of([]) == {}
    finally:
        store.close()


def _count_row_writes(store: Store) -> None:
    """Count every update of a record or outbox row from now on, by row, in
    ``temp.row_writes`` (temp triggers: the store's own schema is left as it is)."""
    store.conn.execute("CREATE TEMP TABLE row_writes (tbl TEXT NOT NULL, row INTEGER NOT NULL)")
    for table, key in (("records", "rid"), ("outbox", "seq")):
        store.conn.execute(
            f"CREATE TEMP TRIGGER count_{table} AFTER UPDATE ON main.{table} "
            f"BEGIN INSERT INTO temp.row_writes VALUES ('{table}', NEW.{key}); END"
        )


def _row_writes(store: Store) -> dict[str, list[int]]:
    """Table -> how many times each of its written rows was written (sorted)."""
    out: dict[str, list[int]] = {}
    for table, n in store.conn.execute(
        "SELECT tbl, count(*) FROM temp.row_writes GROUP BY tbl, row ORDER BY tbl, 2"
    ):
        out.setdefault(table, []).append(n)
    return out


def test_a_batch_writes_each_record_row_once_for_its_version_and_flag(
    formset: FormSet, tmp_path: Path
) -> None:
    """Issue 17: recording a batch raised each record's server version in one statement and
    set its dirty flag in another, two writes of the same row per pushed record; the bulk
    path now does both in one (``ReplicaIO.set_versions_and_dirty``), the same rows as the
    plain path (the property test above)."""
    store = Store(tmp_path / "device.sqlite", formset)
    try:
        store.insert_many("resident", [(None, resident(seq=n), "draft") for n in range(20)])
        ops = replica.next_batch(store, 0, 1000)
        results = [
            OpResult(op_id=o.op_id, status="applied", record_id=o.record_id, version=4) for o in ops
        ]
        _count_row_writes(store)
        replica.record_results(store, ops, results)
        # a row write per op's outbox answer, and one per record (two before)
        assert _row_writes(store) == {"records": [1] * len(ops), "outbox": [1] * len(ops)}
        rows = store.conn.execute("SELECT DISTINCT server_version, dirty FROM records").fetchall()
        assert rows == [(4, 0)]
    finally:
        store.close()


def test_a_known_batch_writes_each_record_row_once_for_its_id_version_and_flag(
    formset: FormSet, tmp_path: Path
) -> None:
    """Issue 17, the known push: every record of the batch is renamed to the platform's id,
    then its version and dirty flag were written, two writes of each record row, and each
    op's row was renamed and then given its answer, two more (the device's recording of
    such a batch cost twice a new push's). The rename now goes with the version and the flag
    (``rename_plain(records=False)``) and with the answer (``rename_plain(answers=...)``):
    one write of each row."""
    store = Store(tmp_path / "device.sqlite", formset)
    try:
        store.insert_many("resident", [(None, resident(seq=n), "draft") for n in range(20)])
        ops = replica.next_batch(store, 0, 1000)
        results = _known_answers(ops)
        fresh = [r.record_id for r in results]
        _count_row_writes(store)
        replica.record_results(store, ops, results)
        assert _row_writes(store) == {"records": [1] * len(ops), "outbox": [1] * len(ops)}
        rows = store.conn.execute(
            "SELECT id, server_version, dirty FROM records ORDER BY id"
        ).fetchall()
        assert rows == [(n, 3, 0) for n in sorted(fresh)]
    finally:
        store.close()


def test_an_id_renamed_away_then_taken_again_in_one_batch_leaves_the_plain_rows(
    formset: FormSet, tmp_path: Path
) -> None:
    """The answers write a moved op's new id with its answer (``rename_plain(answers=...)``)
    by the id the op was sent with; when a rewrite earlier in the batch moved that id away
    and another record took it, the op's row names the first record's new id, not the one
    the run moves: it must keep it, as op by op (the platform's ids never come back to a
    device id in the property tests above, so this one is spelled out)."""
    plain_path, bulk_path = tmp_path / "plain.sqlite", tmp_path / "bulk.sqlite"
    _device(plain_path, formset, 3, [0])  # x, z and q created, x updated
    shutil.copy(plain_path, bulk_path)
    outcome = []
    for path, bulk in ((plain_path, False), (bulk_path, True)):
        store = Store(path, formset)
        try:
            ops = replica.next_batch(store, 0, 1000)
            x, z, q = (op.record_id for op in ops[:3])
            assert [op.record_id for op in ops] == [x, z, q, x]
            # x -> y; z takes the id x; q folds into it (a run ends); x's update -> w moves
            # the record now named x, while the update's own row belongs to y
            into = [POOL[0], x, x, POOL[1]]
            results = [
                OpResult(
                    op_id=op.op_id, status="merged_into", record_id=i, merged_into=i, version=5
                )
                for op, i in zip(ops, into, strict=True)
            ]
            tally = replica.record_results(store, ops, results, bulk=bulk)
            outcome.append((tally, _rows(store)))
        finally:
            store.close()
    assert outcome[0] == outcome[1]


# scans that stay small: the run's temp tables, open forms and a person's duplicate decisions
_SMALL_SCANS = ("SCAN m", "SCAN s", "SCAN autosave", "SCAN dedup_decisions")


def test_recording_a_known_batch_reads_no_table_whole(formset: FormSet, tmp_path: Path) -> None:
    """Every statement that records a batch of renames, the record rows written from the temp
    table (``set_versions_and_dirty``) included, finds its rows by an index: on a store of
    1.6 M records a statement that scanned a table (as an ``UPDATE ... FROM`` the run is
    planned for record_keys, refs, outbox and task items) would cost seconds per batch."""
    store = Store(tmp_path / "device.sqlite", formset)
    try:
        store.insert_many("resident", [(None, resident(seq=n), "draft") for n in range(20)])
        ops = replica.next_batch(store, 0, 1000)
        results = _known_answers(ops)
        statements: list[str] = []
        store.conn.set_trace_callback(statements.append)
        replica.record_results(store, ops, results)
        store.conn.set_trace_callback(None)
        writes = sorted({s for s in statements if s.startswith(("UPDATE", "DELETE FROM"))})
        assert any("FROM temp.settle_rows" in s for s in writes)
        scans = []
        for statement in writes:
            for *_ids, detail in store.conn.execute(f"EXPLAIN QUERY PLAN {statement}"):
                if detail.startswith("SCAN") and not detail.startswith(_SMALL_SCANS):
                    scans.append((statement[:60], detail))
        assert scans == []
    finally:
        store.close()
