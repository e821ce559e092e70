"""A chunk's creates of new records applied as columns (``sync.server.fresh``, issue 17) leave
the platform exactly as the plain per-op path does: the same answers, the same rows in every
table a push writes, the same order of change numbers. Hypothesis draws chunks mixing new
creates with creates that meet the platform or each other (a held or shared ID number, a
look-alike person, a reference to a merged-away id or to a new id the chunk merges into a held
record), edits, deletes, invalid complete records, replays and reused op ids, on SQLite and
PostgreSQL; a spy shows which ops went which way."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from app.core import records as core_records
from app.core.forms import FormSet
from sync import protocol as p
from sync.server import db, fresh, rows
from sync.server.errors import ApiError
from sync.server.service import Service
from tests.factories import id_number, resident
from tests.sync.conftest import GRID_A, GRID_B, resident_creates
from tests.sync.test_server_batch import KEPT, NAMES, WORKER, _fresh, _state

BIRTH = dt.date(1985, 6, 15)
HELD = [f"0190a0b0-c0d0-7000-8000-00000000010{i}" for i in range(4)]  # the platform's records
HELD_NUMBERS = [id_number(BIRTH, seq) for seq in (301, 303, 305)]
MERGED_AWAY = HELD[3]  # created with HELD_NUMBERS[0]: an alias of HELD[0]
TABLES = {
    **KEPT,
    "records": (*KEPT["records"], "form_version", "stamps", "created_by", "updated_by"),
    "record_versions": (
        *KEPT["record_versions"],
        *("form", "grid", "op_id", "device_id", "username", "author", "edited_at"),
    ),
    "ops": (*KEPT["ops"], "op_hash", "device_id", "username"),
    "record_claims": ("form", "key", "record_id"),
    "pending_terms": ("grid", "record_id"),
}


def _setup() -> list[p.Op]:
    """Three residents the platform holds (one birth date, names alike) and a fourth created
    with the first one's ID number (merged into it: its id becomes an alias)."""
    ops = []
    for n, record in enumerate(HELD):
        seq = int(HELD_NUMBERS[n % 3][14:17])
        fields = resident(birth=BIRTH, seq=seq, name=NAMES[n % 3], grid=GRID_A)
        ops.append(
            p.Op(
                op_id=f"dev:held{n}",
                record_id=record,
                form="resident",
                kind="create",
                fields={**fields, "_status": "draft"},
                edited_at=f"2026-11-30T07:00:0{n}.000Z#0000",
                author="tester",
            )
        )
    return ops


NEXT_DAY = BIRTH + dt.timedelta(days=1)
SHARED = [id_number(BIRTH, 401), id_number(NEXT_DAY, 401)]  # numbers nobody holds yet


RID1 = "0190a0b0-c0d0-7000-8000-000000000001"  # the record id of new record 1


def _create(
    n: int,
    birth: dt.date,
    seq: int,
    name: str,
    status: str = "draft",
    op_id: str | None = None,
    record_id: str | None = None,
    **extra: Any,
) -> p.Op:
    """A create of a new record ``n`` (its own record id and op id unless given)."""
    fields = {**resident(birth=birth, seq=seq, name=name), "grid": GRID_A, **extra}
    return p.Op(
        op_id=op_id or f"dev:n{n}",
        record_id=record_id or f"0190a0b0-c0d0-7000-8000-0000000{n:05d}",
        form="resident",
        kind="create",
        fields={**fields, "_status": status},
        edited_at=f"2026-11-30T08:00:{n % 60:02d}.000Z#0000",
        author="tester",
    )


def _edit(n: int, record: str, base: int | None = 1, **fields: Any) -> p.Op:
    return p.Op(
        op_id=f"dev:o{n}",
        record_id=record,
        form="resident",
        kind="update",
        base_version=base,
        fields=fields,
        edited_at=f"2026-11-30T09:00:{n % 60:02d}.000Z#0000",
        author="tester",
    )


def _known(n: int) -> p.Op:
    """A create of held record ``n`` under a new id: merged into it (``merged_into``)."""
    return _setup()[n].model_copy(
        update={"op_id": f"dev:k{n}", "record_id": f"0190a0b0-c0d0-7000-8000-0000000ab{n:03d}"}
    )


@st.composite
def _new(draw: st.DrawFn, n: int) -> p.Op:
    """A create of a new record: often one nobody has (its own ID number and birth date),
    as often with a held or shared number, a birth date shared with the platform's people
    or the chunk's, a look-alike name (or one in its second name field), a reference to a
    merged-away id, a blank value, a number, or complete and invalid."""
    birth = draw(st.sampled_from([BIRTH, NEXT_DAY, BIRTH + dt.timedelta(days=2 + n)]))
    seq = draw(st.sampled_from([301, 401, 500 + n]))
    name = draw(st.sampled_from([*NAMES, f"王{n}五"]))
    status = draw(st.sampled_from(["draft", "draft", "complete"]))
    extra: dict[str, Any] = {}
    if status == "complete" and draw(st.booleans()):
        name = ""  # required: an invalid complete record
    if draw(st.integers(0, 4)) == 0:
        extra["house_ref"] = draw(
            st.sampled_from([MERGED_AWAY, HELD[1], "0190a0b0-0000", _known(1).record_id])
        )
    if draw(st.integers(0, 4)) == 0:
        extra["phone"] = draw(st.sampled_from(["", "  ", None]))
    if draw(st.integers(0, 9)) == 0:
        extra["grid"] = draw(st.sampled_from([GRID_B, ""]))  # out of the caller's scope
    if draw(st.integers(0, 6)) == 0:  # the person spelled from the second name field
        name, extra["former_name"] = "", name
    if draw(st.integers(0, 6)) == 0:  # not all text: merged value by value, keys of numbers
        extra[draw(st.sampled_from(["phone", "id_type"]))] = draw(st.sampled_from([111, 0]))
    return _create(n, birth, seq, name, status, **extra)


@st.composite
def _other(draw: st.DrawFn, n: int) -> p.Op:
    """An op on the held records: an edit (ID number, name, birth date), a delete, a create
    of a held id, an update of an unknown one."""
    kind = draw(st.sampled_from(["update", "delete", "create", "unknown"]))
    record = draw(st.sampled_from(HELD))
    fields: dict[str, Any] = {}
    if kind in ("update", "unknown", "create"):
        fields = {
            "id_number": draw(st.sampled_from([*HELD_NUMBERS, *SHARED])),
            "name": draw(st.sampled_from(NAMES)),
            "birth_date": draw(st.sampled_from([BIRTH, NEXT_DAY])).isoformat(),
        }
    if kind == "unknown":
        record = f"0190a0b0-c0d0-7000-8000-0000000{n:05d}"
    if kind == "create":
        return _edit(n, record, None, **fields).model_copy(update={"kind": "create"})
    if kind == "delete":
        return _edit(n, record, 1).model_copy(update={"kind": "delete"})
    return _edit(n, record, draw(st.sampled_from([None, 1])), **fields)


@st.composite
def chunks(draw: st.DrawFn) -> list[p.Op]:
    """A chunk: mostly new creates, with other ops, replays (of the chunk's own ops and of
    the platform's) and op ids reused for other content."""
    ops: list[p.Op] = []
    counter = itertools.count()
    for _ in range(draw(st.integers(1, 14))):
        roll = draw(st.integers(0, 19))
        if roll < 12:
            ops.append(draw(_new(next(counter))))
        elif roll < 15:
            ops.append(draw(_other(next(counter))))
        elif roll < 16:
            ops.append(_known(draw(st.integers(0, 2))))
        elif roll < 18 and ops:
            ops.append(draw(st.sampled_from(ops)))  # a replay within the chunk
        elif roll < 19:
            ops.append(draw(st.sampled_from(_setup())))  # a replay of a logged op
        else:  # an op id or record id reused for another create
            reused = draw(_new(next(counter)))
            earlier = [op.op_id for op in ops] + ["dev:held0"]
            if draw(st.booleans()):
                update = {"op_id": draw(st.sampled_from(earlier))}
            else:
                update = {"record_id": draw(st.sampled_from([op.record_id for op in ops] + HELD))}
            ops.append(reused.model_copy(update=update))
    return ops


def _order(engine: Any) -> list[str]:
    """Record ids in the order of their change numbers."""
    c = db.records.c
    with engine.connect() as conn:
        return list(conn.execute(select(c.id).order_by(c.seq, c.id)).scalars())


def _run(url: str, formset: FormSet, ops: list[p.Op], *, columns: bool, push: bool) -> Any:
    """Answers, stored rows and change order after ``ops``; ``push``: as a push request
    (checked as a whole first, in the chunk's transaction), else applied (``Service.apply``)."""
    engine = _fresh(url)
    try:
        service = Service(engine, formset)
        service.apply(WORKER, "dev", _setup())
        with pytest.MonkeyPatch.context() as patch:
            if not columns:
                patch.setattr(fresh, "sort_creates", lambda *_a, **_k: fresh.Creates({}, {}))
            if push:
                req = p.PushRequest(protocol=max(p.SUPPORTED_PROTOCOLS), device_id="dev", ops=ops)
                try:
                    results: Any = service.push(WORKER, req, "dev")
                except ApiError as exc:
                    results = exc.body()
            else:
                results = service.apply(WORKER, "dev", ops)
        return results, _state(engine, TABLES), _order(engine)
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_columns_answer_and_store_as_the_plain_path(
    backend: str, request: pytest.FixtureRequest, tmp_path: Any, formset: FormSet
) -> None:
    """Random chunks: the same answers, stored rows and change-number order with the fast
    path as with every op applied one by one; and the fast path did take ops."""
    url = f"sqlite:///{tmp_path / 'f.db'}" if backend == "sqlite" else None
    url = url or request.getfixturevalue("pg_database")
    taken: list[int] = []
    plain = fresh.sort_creates

    def spied(*args: Any, **kw: Any) -> Any:
        found = plain(*args, **kw)
        taken.append(len(found.fresh))
        return found

    @settings(
        max_examples=60 if backend == "sqlite" else 15,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(ops=chunks(), push=st.booleans())
    @example(ops=[_create(1, BIRTH, 401, "张三")], push=False)  # like a held person: a review
    @example(
        ops=[_create(1, NEXT_DAY, 401, "张三"), _create(2, NEXT_DAY, 401, "李四")], push=False
    )  # a key
    @example(
        ops=[_create(1, NEXT_DAY, 401, "张三"), _create(2, NEXT_DAY, 402, "章三")], push=False
    )  # alike
    @example(
        ops=[_edit(0, HELD[1], birth_date=NEXT_DAY.isoformat()), _create(1, NEXT_DAY, 9, "章三")],
        push=False,
    )
    @example(
        ops=[_edit(0, HELD[1], id_number=SHARED[1]), _create(1, NEXT_DAY, 401, "李四")], push=False
    )
    @example(ops=[_create(1, NEXT_DAY, 401, "李四", house_ref=MERGED_AWAY)], push=False)
    @example(
        ops=[_known(0), _create(1, NEXT_DAY, 401, "李四", house_ref=_known(0).record_id)],
        push=False,
    )  # names the new id of a create the chunk merges into a held record
    @example(ops=[_create(1, NEXT_DAY, 401, "李四", grid=GRID_B)], push=False)  # out of scope
    @example(
        ops=[_create(1, NEXT_DAY, 9, "李四"), _create(1, NEXT_DAY, 9, "李四")], push=False
    )  # a replay
    @example(
        ops=[_create(1, NEXT_DAY, 9, "李四").model_copy(update={"op_id": "dev:held0"})], push=False
    )
    @example(
        ops=[_create(1, NEXT_DAY, 9, "李四"), _create(2, BIRTH, 8, "王五", op_id="dev:n1")],
        push=False,
    )
    @example(
        ops=[_create(1, NEXT_DAY, 9, "李四"), _create(2, BIRTH, 8, "王五", record_id=RID1)],
        push=False,
    )
    def check(ops: list[p.Op], push: bool) -> None:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(fresh, "sort_creates", spied)
            fast = _run(url, formset, ops, columns=True, push=push)
        assert fast == _run(url, formset, ops, columns=False, push=push)

    check()
    assert sum(taken) > 0


def test_a_chunk_of_new_residents_goes_as_columns(
    db_url: str, formset: FormSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """50 new residents: no op goes the per-op way (``Service._apply``), and their rows are
    all stored; in a chunk with a replay and a create sharing an ID number, only those go it."""
    engine = _fresh(db_url)
    try:
        service = Service(engine, formset)
        applied: list[str] = []
        one_by_one = Service._apply

        def spied(self: Service, tx: Any, ctx: Any, op: p.Op) -> Any:
            applied.append(op.op_id)
            return one_by_one(self, tx, ctx, op)

        monkeypatch.setattr(Service, "_apply", spied)
        ops = resident_creates(50, "dev", dt.date(1970, 1, 1))
        results = service.apply(WORKER, "dev", ops)
        assert [r["status"] for r in results] == ["applied"] * 50
        assert applied == []
        state = _state(engine, TABLES)
        assert len(state["records"]) == len(state["record_versions"]) == 50
        assert len(state["ops"]) == len(state["record_keys"]) == len(state["people"]) == 50
        more = resident_creates(3, "dev", dt.date(1980, 1, 1), start=100)
        twin = more[2].model_copy(
            update={"op_id": "dev:twin", "record_id": "0190a0b0-c0d0-7000-8000-0000000000ff"}
        )
        results = service.apply(WORKER, "dev", [ops[0], *more, twin])
        assert [r["status"] for r in results] == [
            "duplicate_op",
            "applied",
            "applied",
            "applied",
            "merged_into",
        ]
        assert applied == [ops[0].op_id, more[2].op_id, "dev:twin"]
    finally:
        engine.dispose()


def test_a_push_of_new_residents_works_each_out_once_and_writes_texts_as_columns(
    db_url: str, formset: FormSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """50 new residents pushed: no op's keys or person is asked of the transaction's memo
    (``Derived``: twice each per op, prefetch and create, before ``fresh.made``), and no op,
    record data or answer is checked for orjson value by value (the op hash, data and answer
    of each were: 150 walks; now a column's one pass). What is stored is the plain path's
    (``test_columns_answer_and_store_as_the_plain_path``)."""
    engine = _fresh(db_url)
    try:
        service = Service(engine, formset)
        probes: list[str] = []
        for name in ("natural_keys", "person_of"):
            plain_probe = getattr(rows.Derived, name)

            def probed(self: Any, *args: Any, _p: Any = plain_probe, _n: str = name) -> Any:
                probes.append(_n)
                return _p(self, *args)

            monkeypatch.setattr(rows.Derived, name, probed)
        walked: list[Any] = []
        plain_walk = core_records._orjson_plain

        def walk(value: Any, depth: int = 0) -> bool:
            if depth == 0 and isinstance(value, dict):
                walked.append(value)
            return plain_walk(value, depth)

        monkeypatch.setattr(core_records, "_orjson_plain", walk)
        ops = resident_creates(50, "dev", dt.date(1972, 1, 1))
        req = p.PushRequest(protocol=max(p.SUPPORTED_PROTOCOLS), device_id="dev", ops=ops)
        results = service.push(WORKER, req, "dev")
        assert [r["status"] for r in results] == ["applied"] * 50
        assert probes == []
        assert walked == []
        assert len(_state(engine, TABLES)["records"]) == 50
    finally:
        engine.dispose()


def test_a_reference_to_a_new_id_merged_in_the_chunk_names_the_held_record(
    db_url: str, formset: FormSet
) -> None:
    """A device pushes a record the platform holds under a new id (merged into the held one)
    and, in the same request, a new record naming that new id: the new record stores the
    held record's id, as when the two come one request after the other."""
    engine = _fresh(db_url)
    try:
        service = Service(engine, formset)
        service.apply(WORKER, "dev", _setup())
        known = _known(1)
        new = _create(1, NEXT_DAY, 401, "李四", house_ref=known.record_id)
        results = service.apply(WORKER, "dev", [known, new])
        assert [r["status"] for r in results] == ["merged_into", "applied"]
        c = db.records.c
        with engine.connect() as conn:
            data = conn.execute(select(c.data).where(c.id == new.record_id)).scalar_one()
        assert db.loads(data)["house_ref"] == HELD[1]
    finally:
        engine.dispose()
