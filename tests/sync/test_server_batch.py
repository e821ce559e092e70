"""A batch of ops leaves the platform exactly as the same ops sent one request at a time.

Why: a push transaction answers its ops' reads (records, natural-key owners, people who may be
the same, base versions) from bulk prefetches and from its own buffered writes (``tx.Tx``),
so a later op of a batch must see everything an earlier op wrote, as a separate request would.
Hypothesis draws op sequences over a few records and ID numbers (creates of the same person,
key changes and releases, deletes, stale and missing base versions, repeated op ids) on SQLite
and PostgreSQL; records, versions, keys, people, aliases, reviews and op results must match.
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from app.core.forms import FormSet
from sync import protocol as p
from sync.server import admin, db
from sync.server.auth import User
from sync.server.service import Service
from tests.factories import id_number, resident
from tests.sync.conftest import GRID_A, _empty_pg

RECORDS = [f"0190a0b0-c0d0-7000-8000-00000000000{i}" for i in range(4)]
BIRTH = dt.date(1985, 6, 15)
NUMBERS = [id_number(BIRTH, seq) for seq in (301, 303, 305)]  # one birth date: fuzzy matches
NAMES = ["张三", "章三", "李四"]  # 张三/章三 share their pinyin
WORKER = User("wang", "worker", None, frozenset({GRID_A}))
KEPT = {  # columns compared (timestamps and change numbers differ between the two runs)
    "records": ("id", "form", "grid", "title", "data", "status", "deleted", "version", "conflict"),
    "record_versions": ("record_id", "version", "data", "status", "deleted", "conflict", "kind"),
    "record_keys": ("form", "key", "record_id"),
    "people": ("record_id", "form", "name", "pinyin", "birth"),
    "aliases": ("old_id", "canonical_id", "reason"),
    "reviews": ("form", "record_id", "other_id", "reason", "state"),
    "ops": ("op_id", "record_id", "version", "result"),
    "quarantine": ("op_id", "record_id", "code"),
}


def _fields(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    if kind == "delete":
        return {}
    number, name = draw(st.sampled_from(NUMBERS)), draw(st.sampled_from(NAMES))
    seq = int(number[14:17])
    if kind == "create":
        status = draw(st.sampled_from(["draft", "complete"]))
        return {**resident(birth=BIRTH, seq=seq, name=name, grid=GRID_A), "_status": status}
    picked = draw(st.sets(st.sampled_from(["id_number", "name", "phone"]), min_size=1))
    values = {
        "id_number": number,
        "name": name,
        "phone": draw(st.sampled_from(["13800000001", ""])),
    }
    out = {k: values[k] for k in picked}
    if "id_number" in out:
        out["gender"] = "1" if seq % 2 else "2"
    return out


@st.composite
def op_lists(draw: st.DrawFn) -> list[p.Op]:
    """A device's ops: fresh op ids, but now and then one repeated (a replayed op)."""
    ops: list[p.Op] = []
    clock = itertools.count(1)
    for _ in range(draw(st.integers(1, 12))):
        if ops and draw(st.integers(0, 9)) == 0:
            ops.append(draw(st.sampled_from(ops)))
            continue
        kind = draw(st.sampled_from(["create", "create", "update", "update", "delete"]))
        ops.append(
            p.Op(
                op_id=f"dev:{len(ops)}",
                record_id=draw(st.sampled_from(RECORDS)),
                form="resident",
                kind=kind,
                base_version=draw(st.sampled_from([None, None, 1, 2])),
                fields=_fields(draw, kind),
                edited_at=f"2026-11-30T08:00:{next(clock):02d}.000Z#0000",
                author="tester",
            )
        )
    return ops


def _op(record: int, kind: str, number: str, base: int | None = None, n: int = 0) -> p.Op:
    seq = int(number[14:17])
    fields = resident(birth=BIRTH, seq=seq, grid=GRID_A) if kind == "create" else {}
    fields = {**fields, "id_number": number, "gender": "1" if seq % 2 else "2"}
    return p.Op(
        op_id=f"dev:k{n}",
        record_id=RECORDS[record],
        form="resident",
        kind=kind,
        base_version=base,
        fields=fields,
        edited_at=f"2026-11-30T09:00:{n:02d}.000Z#0000",
        author="tester",
    )


# Record 0 gives its ID number up, record 1 takes it, record 0 takes it back (a duplicate_key
# rejection: record 1 holds it now), record 2 is created with it (merged into record 1).
KEY_HANDOVER = [
    _op(0, "update", NUMBERS[1], base=1, n=1),
    _op(1, "create", NUMBERS[0], n=2),
    _op(0, "update", NUMBERS[0], base=2, n=3),
    _op(2, "create", NUMBERS[0], n=4),
]


def _state(
    engine: Engine, tables: dict[str, tuple[str, ...]] | None = None
) -> dict[str, list[tuple[Any, ...]]]:
    """The rows of ``tables`` (default ``KEPT``: table -> columns compared), sorted."""
    out = {}
    with engine.connect() as conn:
        for name, columns in (tables or KEPT).items():
            table = db.metadata.tables[name]
            rows = conn.execute(table.select().with_only_columns(*(table.c[c] for c in columns)))
            out[name] = sorted((tuple(r) for r in rows), key=repr)
    return out


def _fresh(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = db.make_engine(url)
        db.metadata.drop_all(engine)
    else:
        _empty_pg(db.normalize_url(url))
        engine = db.make_engine(url)
    db.init_db(engine)
    admin.put_community(engine, "330106001", "幸福社区")
    admin.put_grid(engine, GRID_A, "一网格", "330106001")
    return engine


def _run(url: str, formset: FormSet, setup: list[p.Op], ops: list[p.Op], batched: bool) -> Any:
    engine = _fresh(url)
    try:
        service = Service(engine, formset)
        service.apply(WORKER, "other-device", setup)
        if batched:
            results = service.apply(WORKER, "dev", ops)
        else:
            results = [r for op in ops for r in service.apply(WORKER, "dev", [op])]
        return results, _state(engine)
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_batch_is_the_same_as_one_op_at_a_time(
    backend: str, request: pytest.FixtureRequest, tmp_path: Any, formset: FormSet
) -> None:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'batch.db'}"
    else:
        url = request.getfixturevalue("pg_database")
    examples = 60 if backend == "sqlite" else 25

    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(setup=op_lists(), ops=op_lists())
    @example(setup=[_op(0, "create", NUMBERS[0])], ops=KEY_HANDOVER)
    def check(setup: list[p.Op], ops: list[p.Op]) -> None:
        setup = [o.model_copy(update={"op_id": "pre" + o.op_id}) for o in setup]
        one_by_one = _run(url, formset, setup, ops, batched=False)
        batch = _run(url, formset, setup, ops, batched=True)
        assert batch[0] == one_by_one[0]
        for table in KEPT:
            assert batch[1][table] == one_by_one[1][table], table

    check()
