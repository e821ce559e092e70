"""Issue 17: natural keys name their record by ``records.rid``. Whatever a device does to its
records, in any order (saves, edits, deletes, imports, pushes answered applied or merged into
another id, pulls of new, changed and deleted records, aliases that rename or fold a record,
records leaving the scope, a person's resolution), the key rows are exactly the live records' derived keys, and the
"already registered" look-ups answer from them in key then id order. Removed rows give their
rid back to SQLite (no AUTOINCREMENT), so a key left behind would show on the next record."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.forms import FormSet
from app.core.store import Store
from sync import replica
from sync.protocol import Alias, OpResult
from tests.core.test_record_keys import expected_keys, held_keys
from tests.factories import resident
from tests.sync.test_replica import SCOPE, page, pulled

SEQS = st.sampled_from([1, 3, 5, 7])  # four keys: records share them often
PICK = st.integers(0, 1000)  # a record of the device, modulo their number
PLATFORM = [f"0190b000-0000-7000-8000-00000000000{n}" for n in range(4)]  # platform ids

STEPS = st.one_of(
    st.tuples(st.just("save"), SEQS),
    st.tuples(st.just("edit"), PICK, SEQS),
    st.tuples(st.just("delete"), PICK),
    st.tuples(st.just("import"), st.lists(SEQS, min_size=1, max_size=3)),
    # per pushed record: applied, merged into a platform id (a rename, or a fold when the
    # device holds it) or into another record of the device (a fold)
    st.tuples(
        st.just("push"),
        st.lists(st.tuples(st.sampled_from(["applied", "new", "held"]), PICK), max_size=4),
    ),
    st.tuples(
        st.just("pull"),
        st.lists(st.tuples(st.integers(0, 3), SEQS, st.booleans()), min_size=1, max_size=3),
    ),
    st.tuples(st.just("alias"), PICK, st.integers(0, 3), st.booleans()),
    st.tuples(st.just("drop"), PICK),
    st.tuples(st.just("resolve"), PICK, SEQS, st.booleans()),  # a person's choice, a delete too
)


def _ids(store: Store) -> list[str]:
    return [r[0] for r in store.conn.execute("SELECT id FROM records ORDER BY rid")]


def _push(store: Store, choices: list[tuple[str, int]], version: int, bulk: bool) -> None:
    ops = replica.next_batch(store, 0, 1000)
    pushed = list(dict.fromkeys(op.record_id for op in ops))
    others = [r for r in _ids(store) if r not in pushed]
    into: dict[str, str | None] = {}
    for n, record_id in enumerate(pushed):
        kind, pick = choices[n % len(choices)] if choices else ("applied", 0)
        if kind == "new":
            into[record_id] = PLATFORM[pick % len(PLATFORM)]
        elif kind == "held" and others:
            into[record_id] = others[pick % len(others)]
        else:
            into[record_id] = None
    taken = set()  # two records merged into one id in one batch: the second is applied
    for record_id, canonical in into.items():
        if canonical in taken or canonical in pushed:
            into[record_id] = None
        elif canonical is not None:
            taken.add(canonical)
    results = [
        OpResult(
            op_id=op.op_id,
            status="merged_into" if into[op.record_id] else "applied",
            record_id=into[op.record_id] or op.record_id,
            merged_into=into[op.record_id],
            version=version,
        )
        for op in ops
    ]
    replica.record_results(store, ops, results, bulk=bulk)


def _step(store: Store, step: tuple[Any, ...], version: int, bulk: bool) -> None:
    kind, *args = step
    present = _ids(store)
    if kind == "save":
        store.save("resident", resident(seq=args[0]))
    elif kind == "edit" and present:
        record_id = present[args[0] % len(present)]
        store.save("resident", resident(seq=args[1], phone="13700000000"), record_id=record_id)
    elif kind == "delete" and present:
        store.delete(present[args[0] % len(present)])
    elif kind == "import":
        store.insert_many("resident", [(None, resident(seq=s), "complete") for s in args[0]])
    elif kind == "push":
        _push(store, args[0], version, bulk)
    elif kind == "pull":
        records = {
            PLATFORM[n]: pulled(PLATFORM[n], version, resident(seq=seq), deleted=gone)
            for n, seq, gone in args[0]
        }
        replica.apply_pull(store, page(*records.values(), cursor=version), SCOPE, bulk=bulk)
    elif kind == "alias" and present:
        old = present[args[0] % len(present)]
        canonical = PLATFORM[args[1]] if args[2] or len(present) < 2 else present[args[1] % 2]
        aliases = [Alias(old=old, canonical=canonical)]
        replica.apply_pull(store, page(aliases=aliases, cursor=version), SCOPE, bulk=bulk)
    elif kind == "drop" and present:
        gone = [present[args[0] % len(present)]]
        replica.apply_pull(store, page(removed=gone, cursor=version), SCOPE, bulk=bulk)
    elif kind == "resolve" and present:
        chosen = {"id_number": resident(seq=args[1])["id_number"], "_deleted": args[2]}
        replica.resolve(store, present[args[0] % len(present)], chosen)


def _check(store: Store, step: tuple[Any, ...]) -> None:
    held = held_keys(store)
    assert held == expected_keys(store), step
    by_key: dict[str, list[str]] = {}
    for _form, key, record_id in held:
        by_key.setdefault(key, []).append(record_id)  # type: ignore[arg-type]
    assert store.records_by_keys("resident", [*by_key, "nobody"]) == by_key, step
    form = store.formset.form("resident")
    for seq in (1, 3, 5, 7, 9):
        data = resident(seq=seq)
        keys = sorted(store.derive(form, data).keys)
        want = list(dict.fromkeys(r for k in keys for r in sorted(by_key.get(k, []))))
        assert store.find_by_key("resident", data) == want, step


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(STEPS, min_size=1, max_size=12), bulk=st.booleans())
def test_key_rows_are_the_live_records_keys_after_any_sequence(
    formset: FormSet, steps: list[tuple[Any, ...]], bulk: bool
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "device.sqlite", formset)
        try:
            for version, step in enumerate(steps, start=1):
                _step(store, step, version, bulk)
                _check(store, step)
        finally:
            store.close()
