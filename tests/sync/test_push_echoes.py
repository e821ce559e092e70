"""A chunk's creates that echo a record the platform holds, answered as a batch
(``sync.server.echoes``, issue 17), leave the platform exactly as the plain per-op path does:
the same answers, the same rows in every table a push writes, the same order of change numbers.

Hypothesis draws chunks mixing creates of held residents under new ids (every value echoed,
some left out, one changed, the status raised, a value blanked) with creates of new residents
(some with a held ID number, some naming another op's new id in a reference), edits and
deletes of the held records, the same held record echoed twice, ids reused, replays and ops
refused, over held records that are complete, in conflict, deleted, merged away or claiming a
key another grid holds; on SQLite and PostgreSQL. A spy shows which ops went which way."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from app.core.forms import Form, FormSet
from sync import protocol as p
from sync.server import admin, claims, db, echoes, fresh, rows
from sync.server.auth import User
from sync.server.errors import ApiError
from sync.server.service import Service
from sync.server.tx import Tx
from tests.factories import id_number, resident
from tests.sync.conftest import GRID_A, GRID_B, resident_creates
from tests.sync.test_push_fresh import TABLES
from tests.sync.test_server_batch import WORKER, _fresh, _state

BIRTH = dt.date(1979, 3, 8)
OUTSIDE = "0190a0b0-c0d0-7000-8000-0000000003ff"  # GRID_B's holder of NUMBERS[4]
HELD = [f"0190a0b0-c0d0-7000-8000-0000000002{i:02d}" for i in range(8)] + [OUTSIDE]
NUMBERS = [id_number(BIRTH, seq) for seq in (201, 203, 205, 207, 209, 211, 213)]
HOUSE = "0190a0b0-c0d0-7000-8000-0000000004aa"  # a record id HELD[0] names in house_ref
# HELD[0] draft, named a house; HELD[1] complete; HELD[2] in a hard conflict; HELD[3] deleted;
# HELD[4] created with HELD[0]'s number (an alias of it); HELD[5] claims NUMBERS[4] (GRID_B
# holds it: a transfer claim, stored without the key). As older code or older rules left
# them: HELD[6] complete without a name (now required), HELD[7] with two open conflicts out of
# field order. HELD[8] is OUTSIDE, out of the caller's scope.
HOLDER = {0: 0, 1: 1, 2: 2, 3: 3, 5: 4, 6: 5, 7: 6, 8: 4}  # held record -> its ID number
NAMES = ["张三", "章三", "李四", "王五"]
B_WORKER = User("li", "worker", None, frozenset({GRID_B}))


def _op(
    op_id: str, record: str, kind: Any, fields: dict[str, Any], at: str, base: int | None = None
) -> p.Op:
    return p.Op(
        op_id=op_id,
        record_id=record,
        form="resident",
        kind=kind,
        base_version=base,
        fields=fields,
        edited_at=f"2026-11-30T{at}.000Z#0000",
        author="tester",
    )


def _person(h: int, **extra: Any) -> dict[str, Any]:
    seq = int(NUMBERS[HOLDER.get(h, 0)][14:17])
    return resident(**{"birth": BIRTH, "seq": seq, "name": NAMES[h % 4], "grid": GRID_A, **extra})


def _setup(service: Service) -> list[p.Op]:
    """The held records (see HELD); returns the logged ops of device ``dev``."""
    service.apply(
        B_WORKER,
        "devb",
        [
            _op(
                "devb:x",
                OUTSIDE,
                "create",
                {**_person(5, grid=GRID_B), "_status": "draft"},
                "06:00:00",
            )
        ],
    )
    mine = [
        _op(
            "dev:h0",
            HELD[0],
            "create",
            {**_person(0, house_ref=HOUSE), "_status": "draft"},
            "07:00:00",
        ),
        _op("dev:h1", HELD[1], "create", {**_person(1), "_status": "complete"}, "07:00:01"),
        _op("dev:h2", HELD[2], "create", {**_person(2), "_status": "draft"}, "07:00:02"),
        _op("dev:h3", HELD[3], "create", {**_person(3), "_status": "draft"}, "07:00:03"),
        _op(
            "dev:h4",
            HELD[4],
            "create",
            {**_person(0, phone="13900000004"), "_status": "draft"},
            "07:00:04",
        ),
        _op("dev:h5", HELD[5], "create", {**_person(5), "_status": "draft"}, "07:00:05"),
        _op("dev:h6", HELD[6], "create", {**_person(6), "_status": "complete"}, "07:00:06"),
        _op("dev:h7", HELD[7], "create", {**_person(7), "_status": "draft"}, "07:00:07"),
        _op("dev:d3", HELD[3], "delete", {}, "07:00:08", base=1),
    ]
    service.apply(WORKER, "dev", mine)
    # two devices edit HELD[2]'s phone from version 1: a hard conflict stays open
    service.apply(
        WORKER, "dev2", [_op("dev2:c", HELD[2], "update", {"phone": "13700000001"}, "07:10:00", 1)]
    )
    service.apply(
        WORKER, "dev3", [_op("dev3:c", HELD[2], "update", {"phone": "13700000002"}, "07:10:01", 1)]
    )
    _legacy(service.engine)
    return mine


def _legacy(engine: Engine) -> None:
    """HELD[6] and HELD[7] as older code or rules left them (see HELD)."""
    c = db.records.c
    with engine.begin() as conn:
        data = db.loads(conn.execute(select(c.data).where(c.id == HELD[6])).scalar_one())
        del data["name"]
        conn.execute(db.records.update().where(c.id == HELD[6]).values(data=db.dumps(data)))
        open_ = [
            {"field": f, "kind": "hard", "base": None, "server": "1", "incoming": "2"}
            | {"provisional": "1"}
            for f in ("phone", "ethnicity")
        ]
        conn.execute(db.records.update().where(c.id == HELD[7]).values(conflict=db.dumps(open_)))


def _held(engine: Engine) -> dict[str, tuple[dict[str, Any], str]]:
    """Each held record's values and status."""
    c = db.records.c
    with engine.connect() as conn:
        rows = conn.execute(select(c.id, c.data, c.status).where(c.id.in_(HELD)))
        return {r.id: (db.loads(r.data), r.status) for r in rows}


def _new_id(n: int) -> str:
    return f"0190a0b0-c0d0-7000-8000-0000001{n:05d}"


Spec = tuple[Any, ...]


@st.composite
def _echo(draw: st.DrawFn, n: int) -> Spec:
    """A create of a held resident under a new id: ``exact`` echoes every value, ``partial``
    leaves some out, the others change something."""
    h = draw(st.sampled_from([0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8]))
    variant = draw(
        st.sampled_from(["exact", "exact", "exact", "partial", "phone", "status", "blank"])
    )
    house = draw(st.integers(0, 9)) == 0  # under the id HELD[0] names in house_ref
    return ("echo", n, h, variant, house)


@st.composite
def _new(draw: st.DrawFn, n: int) -> Spec:
    """A create of a new resident: its own ID number, or a held one (a changing merge), now
    and then naming another op's id (or a held or merged-away one) in ``house_ref``."""
    number = draw(st.sampled_from([None, None, 0, 1, 4]))
    ref = draw(st.sampled_from([None, None, None, "chunk", HELD[0], HELD[4], HOUSE]))
    status = draw(st.sampled_from(["draft", "draft", "complete"]))
    grid = draw(st.sampled_from([GRID_A] * 9 + [GRID_B]))
    return ("new", n, number, ref, status, grid, draw(st.integers(0, 99)))


@st.composite
def _other(draw: st.DrawFn, n: int) -> Spec:
    """An edit or delete of a held record, or an update of an unknown one."""
    kind = draw(st.sampled_from(["phone", "number", "name", "delete", "unknown"]))
    return (
        "other",
        n,
        draw(st.sampled_from([0, 1, 2, 3, 5, 6, 7])),
        kind,
        draw(st.sampled_from([None, 1])),
    )


@st.composite
def chunks(draw: st.DrawFn) -> list[Spec]:
    """A chunk: mostly echoes of held residents, with new creates, edits, replays (of the
    chunk's ops and of logged ones) and op ids or record ids reused."""
    specs: list[Spec] = []
    counter = itertools.count()
    for _ in range(draw(st.integers(1, 14))):
        roll = draw(st.integers(0, 19))
        if roll < 11:
            specs.append(draw(_echo(next(counter))))
        elif roll < 14:
            specs.append(draw(_new(next(counter))))
        elif roll < 16:
            specs.append(draw(_other(next(counter))))
        elif roll < 17 and specs:
            specs.append(("replay", draw(st.integers(0, len(specs) - 1))))
        elif roll < 18:
            specs.append(("logged", draw(st.integers(0, 8))))
        elif specs:  # the op id or the record id of an earlier op (or of a held one)
            what = draw(st.sampled_from(["op_id", "record_id"]))
            specs.append(
                ("reuse", draw(_echo(next(counter))), what, draw(st.integers(0, len(specs))))
            )
    return specs


def _build(
    specs: list[Spec], held: dict[str, tuple[dict[str, Any], str]], logged: list[p.Op]
) -> list[p.Op]:
    """The ops ``specs`` stand for, over the held records' stored values."""
    ops: list[p.Op] = []
    for spec in specs:
        ops.append(_one(spec, held, logged, ops))
    return ops


def _one(
    spec: Spec, held: dict[str, tuple[dict[str, Any], str]], logged: list[p.Op], ops: list[p.Op]
) -> p.Op:
    kind = spec[0]
    if kind == "replay":
        return ops[spec[1]]
    if kind == "logged":
        return logged[spec[1]]
    if kind == "reuse":
        op = _one(spec[1], held, logged, ops)
        earlier = [*ops, logged[0]]
        return op.model_copy(update={spec[2]: getattr(earlier[spec[3] % len(earlier)], spec[2])})
    n = spec[1]
    at = f"08:00:{n % 60:02d}"
    if kind == "echo":
        h, variant = spec[2], spec[3]
        if HELD[h] in held:
            data, status = held[HELD[h]]
            fields: dict[str, Any] = {**data, "_status": status}
        else:  # merged away: what was pushed for it (HELD[0]'s person, another phone)
            fields = dict(logged[h].fields)
        if variant == "partial":
            fields = {k: v for k, v in fields.items() if k not in ("phone", "name", "_status")}
        elif variant == "phone":
            fields["phone"] = "13600000099"
        elif variant == "status":
            fields["_status"] = "complete"
        elif variant == "blank":
            fields["ethnicity"] = ""
        return _op(f"dev:e{n}", HOUSE if spec[4] else _new_id(n), "create", fields, at)
    if kind == "new":
        _n, number, ref, status, grid, seed = spec[1:]
        seq = int(NUMBERS[number][14:17]) if number is not None else 301 + 2 * n
        values = resident(
            birth=BIRTH if number is not None else BIRTH + dt.timedelta(days=1 + seed),
            seq=seq,
            name=NAMES[seed % 4],
            grid=grid,
        )
        if ref == "chunk":
            values["house_ref"] = ops[seed % len(ops)].record_id if ops else HOUSE
        elif ref is not None:
            values["house_ref"] = ref
        return _op(f"dev:n{n}", _new_id(n), "create", {**values, "_status": status}, at)
    _n, h, what, base = spec[1:]
    record = HELD[h]
    if what == "delete":
        return _op(f"dev:o{n}", record, "delete", {}, at, base or 1)
    if what == "unknown":
        return _op(f"dev:o{n}", _new_id(n), "update", {"phone": "13500000000"}, at, base)
    fields = {
        "phone": {"phone": "13500000001"},
        "number": {"id_number": NUMBERS[(h + 1) % 5], "gender": "1"},
        "name": {"name": "赵六"},
    }[what]
    return _op(f"dev:o{n}", record, "update", fields, at, base)


def _order(engine: Engine) -> list[tuple[str, str]]:
    """Records and aliases in the order of their change numbers."""
    r, a = db.records.c, db.aliases.c
    with engine.connect() as conn:
        found = [("record", i, s) for i, s in conn.execute(select(r.id, r.seq))]
        found += [("alias", i, s) for i, s in conn.execute(select(a.old_id, a.seq))]
    return [(kind, i) for kind, i, _s in sorted(found, key=lambda x: (x[2], x[0], x[1]))]


ECHO_TABLES = {**TABLES, "scope_exits": ("record_id", "grid")}


def _run(url: str, formset: FormSet, specs: list[Spec], *, fast: bool, push: bool) -> Any:
    """Answers, stored rows and change order after the chunk ``specs`` stands for; ``push``:
    as a push request (checked first), else applied (``Service.apply``)."""
    engine = _fresh(url)
    try:
        admin.put_grid(engine, GRID_B, "二网格", "330106001")
        service = Service(engine, formset)
        logged = _setup(service)
        ops = _build(specs, _held(engine), logged)
        with pytest.MonkeyPatch.context() as patch:
            if not fast:
                patch.setattr(fresh, "sort_creates", lambda *_a, **_k: fresh.Creates({}, {}))
            if push:
                req = p.PushRequest(protocol=max(p.SUPPORTED_PROTOCOLS), device_id="dev", ops=ops)
                try:
                    results: Any = service.push(WORKER, req, "dev")
                except ApiError as exc:
                    results = exc.body()
            else:
                results = service.apply(WORKER, "dev", ops)
        return results, _state(engine, ECHO_TABLES), _order(engine)
    finally:
        engine.dispose()


def _e(n: int, h: int, variant: str = "exact", house: bool = False) -> Spec:
    return ("echo", n, h, variant, house)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_echoes_answer_and_store_as_the_plain_path(
    backend: str, request: pytest.FixtureRequest, tmp_path: Any, formset: FormSet
) -> None:
    """Random chunks: the same answers, stored rows and change-number order with the batch
    paths (``fresh``, ``echoes``) as with every op applied one by one; and echoes were taken."""
    url = f"sqlite:///{tmp_path / 'e.db'}" if backend == "sqlite" else None
    url = url or request.getfixturevalue("pg_database")
    taken: list[int] = []
    plain = echoes.known_creates

    def spied(*args: Any, **kw: Any) -> Any:
        found = plain(*args, **kw)
        taken.append(len(found))
        return found

    @settings(
        max_examples=60 if backend == "sqlite" else 15,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(specs=chunks(), push=st.booleans())
    @example(specs=[_e(0, 0), _e(1, 1), _e(2, 2), _e(3, 4), _e(4, 5)], push=True)  # all echo
    @example(specs=[_e(0, 0), _e(1, 0)], push=False)  # one held record echoed twice
    @example(specs=[("other", 0, 0, "phone", None), _e(1, 0)], push=False)  # edited first
    @example(specs=[_e(0, 0), ("other", 1, 0, "phone", None)], push=False)  # edited after
    @example(specs=[_e(0, 1), ("other", 1, 0, "number", 1)], push=False)  # takes its key
    @example(specs=[_e(0, 1), ("new", 1, 1, None, "draft", GRID_A, 5)], push=False)  # its key
    @example(specs=[("new", 0, 1, None, "draft", GRID_A, 5), _e(1, 1)], push=False)
    @example(specs=[_e(0, 1), ("new", 1, None, "chunk", "draft", GRID_A, 0)], push=False)
    @example(specs=[_e(0, 0, "phone"), _e(1, 1, "partial"), _e(2, 1, "status")], push=False)
    @example(specs=[_e(0, 3), _e(1, 5), _e(2, 2, "blank")], push=False)
    @example(specs=[_e(0, 0), ("replay", 0), ("logged", 1)], push=True)
    @example(specs=[_e(0, 1, house=True), _e(1, 0)], push=False)  # its house_ref is merged
    @example(specs=[_e(0, 6), _e(1, 7), _e(2, 8)], push=False)  # invalid, conflicts, outside
    @example(specs=[_e(0, 0), ("reuse", _e(1, 1), "op_id", 0)], push=False)
    def check(specs: list[Spec], push: bool) -> None:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(echoes, "known_creates", spied)
            fast = _run(url, formset, specs, fast=True, push=push)
        assert fast == _run(url, formset, specs, fast=False, push=push)

    check()
    assert sum(taken) > 0


def test_a_chunk_of_known_residents_is_answered_as_a_batch(
    db_url: str, formset: FormSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """50 residents pushed again from another device: no op goes the per-op way
    (``Service._apply``), each is answered merged_into its held record, which keeps its
    version, and each new id becomes an alias; a changed one, and one whose id another op
    reuses, go the plain way."""
    engine = _fresh(db_url)
    try:
        service = Service(engine, formset)
        held = resident_creates(50, "dev", dt.date(1970, 1, 1))
        service.apply(WORKER, "dev", held)
        applied: list[str] = []
        one_by_one = Service._apply

        def spied(self: Service, tx: Any, ctx: Any, op: p.Op) -> Any:
            applied.append(op.op_id)
            return one_by_one(self, tx, ctx, op)

        monkeypatch.setattr(Service, "_apply", spied)
        again = [
            op.model_copy(update={"op_id": f"dev2:{i}", "record_id": _new_id(i)})
            for i, op in enumerate(held)
        ]
        results = service.apply(WORKER, "dev2", again)
        assert [r["status"] for r in results] == ["merged_into"] * 50
        assert [r["record_id"] for r in results] == [op.record_id for op in held]
        assert {r["version"] for r in results} == {1}
        assert applied == []
        state = _state(engine, TABLES)
        assert len(state["records"]) == len(state["record_versions"]) == 50
        assert sorted(state["aliases"]) == sorted(
            (op.record_id, h.record_id, "natural_key") for op, h in zip(again, held, strict=True)
        )
        assert len(state["ops"]) == 100
        changed = held[0].model_copy(
            update={
                "op_id": "dev3:0",
                "record_id": _new_id(100),
                "fields": {**held[0].fields, "phone": "13600000001"},
            }
        )
        same = held[1].model_copy(update={"op_id": "dev3:1", "record_id": _new_id(101)})
        twice = held[2].model_copy(update={"op_id": "dev3:2", "record_id": _new_id(101)})
        results = service.apply(
            WORKER,
            "dev3",
            [
                changed,
                same,
                held[3].model_copy(update={"op_id": "dev3:3", "record_id": _new_id(103)}),
                twice,
            ],
        )
        assert [r["status"] for r in results[:3]] == ["merged_into"] * 3
        assert results[3]["reason"]["code"] == "duplicate_key"  # held[1] with held[2]'s number
        assert applied == ["dev3:0", "dev3:1", "dev3:2"]
    finally:
        engine.dispose()


class _ByPosition(tuple):  # type: ignore[type-arg]
    """A result row that may only be read by position (a spy: reading it by name fails)."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"read by name: {name}")


def test_held_records_are_read_by_position_as_by_name(db_url: str, formset: FormSet) -> None:
    """``rows.from_result`` (how ``Tx.load_many`` reads the held records of a push) gives what
    ``rows.from_db`` gives for each row, without reading a row by name."""
    from sync.server import rows

    engine = _fresh(db_url)
    try:
        service = Service(engine, formset)
        admin.put_grid(engine, GRID_B, "二网格", "330106001")
        _setup(service)
        with engine.connect() as conn:
            result = conn.execute(select(db.records).order_by(db.records.c.id))
            keys, found = list(result.keys()), result.all()
        assert len(found) == len(HELD) - 1  # HELD[4] was merged away
        by_name = [rows.from_db(r) for r in found]
        assert list(rows.from_result([_ByPosition(r) for r in found], keys)) == by_name
        assert any(r.conflict for r in by_name)  # conflicts and stamps read too
        shuffled = [*reversed(keys)]  # another column order
        turned = [_ByPosition(reversed(tuple(r))) for r in found]
        assert list(rows.from_result(turned, shuffled)) == by_name
    finally:
        engine.dispose()


# -- the columns against the per-op rules ----------------------------------------------------

FIELDS = sorted(resident())
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
VALUES = st.one_of(
    st.sampled_from(["", " ", "张三", " 张三", "01", "1", GRID_A, GRID_B, NUMBERS[1]]),
    # text spelled otherwise: the same key or grid normalised, not the same text
    st.sampled_from(["张三 ", "\u3000张三", NUMBERS[1].translate(FULL_WIDTH), GRID_A + " "]),
    st.sampled_from(["1.0", "True", "true", "null", "[]"]),  # text of other types' spellings
    st.none(),
    st.integers(0, 2),
    st.sampled_from([1.0, 0.0]),
    st.booleans(),
    st.just(["01"]),
    st.sampled_from([[30.27, 120.15], {"lat": 30.27, "lng": 120.15}, {}, []]),  # a point
)
# a held record's stored values changed as older code, older rules or another device left them
CHANGES = st.lists(
    st.tuples(
        st.sampled_from([0, 1, 2, 5, 6, 7]),
        st.sampled_from(
            ["data", "data", "data", "status", "conflict", "deleted", "pseudo", "tomb", "claim"]
        ),
        st.sampled_from(FIELDS),
        VALUES,
    ),
    max_size=4,
)
# a create of a held resident: its stored values, some sent otherwise or not at all
SENT = st.lists(
    st.tuples(
        st.sampled_from([0, 0, 1, 1, 2, 3, 5, 6, 7, 8]),
        st.lists(
            st.tuples(st.sampled_from([*FIELDS, "_status", "_deleted"]), VALUES | st.just(...)),
            max_size=2,
        ),
    ),
    min_size=1,
    max_size=8,
)


def _change(conn: Any, form: Form, changes: list[tuple[int, str, str, Any]]) -> None:
    """Store ``changes`` in the held records (see ``CHANGES``)."""
    c = db.records.c
    for h, what, name, value in changes:
        row = conn.execute(select(c.data, c.status).where(c.id == HELD[h])).one()
        data = db.loads(row.data)
        if what == "data":
            data[name] = value
            values: dict[str, Any] = {"data": db.dumps(data)}
        elif what == "claim":  # a second claimant in the scope of NUMBERS[4] (GRID_B holds it)
            data["id_number"] = NUMBERS[4]
            k = db.record_claims.c
            for key in rows.natural_keys(form, data):
                claim = {"form": "resident", "key": key, "record_id": HELD[h]}
                there = select(k.key).where(*(k[n] == v for n, v in claim.items()))
                if conn.execute(there).first() is None:
                    conn.execute(db.record_claims.insert().values(**claim))
            values = {"data": db.dumps(data)}
        elif what == "pseudo":
            values = {"data": db.dumps({**data, "_status": row.status})}
        elif what == "tomb":  # a deleted flag among the values, as the record's is
            values = {"data": db.dumps({**data, "_deleted": bool(value)})}
        elif what == "status":
            values = {"status": "complete" if row.status == "draft" else " "}
        elif what == "conflict":
            open_ = [{"field": name, "kind": "hard", "base": None, "server": "1", "incoming": "2"}]
            values = {"conflict": db.dumps(open_ if value else [])}
        else:
            values = {"deleted": True}
        conn.execute(db.records.update().where(c.id == HELD[h]).values(**values))


def test_echo_columns_decide_as_the_per_op_rules(tmp_path: Any, formset: FormSet) -> None:
    """``echoes.echoes_of`` (each step a pass over the chunk's echoes) decides every create
    as the per-op rules do: ``claims.owner_in_scope``, then ``_echo`` (``merge.unchanged``,
    ``settle``'s scope, validation and claims, ``unwritten``), over held records as drawn:
    values blank, not text, a pseudo-field, another grid's, invalid, in conflict, deleted,
    a key claimed, a deleted flag among the values; sent values equal, missing, blank, not
    text (numbers, points), text spelled otherwise (whitespace, full-width: the same key or
    grid), changed; with and without each create as ``fresh.made`` worked it out, in its
    chunk or alone."""
    engine = _fresh(f"sqlite:///{tmp_path / 'c.db'}")
    admin.put_grid(engine, GRID_B, "二网格", "330106001")
    _setup(Service(engine, formset))
    form = formset.form("resident")
    decided: list[int] = []

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        changes=CHANGES,
        sent=SENT,
        loaded=st.sampled_from([len(HELD)] * 3 + [0, 3]),
        apart=st.booleans(),
    )
    @example(changes=[], sent=[(0, []), (1, []), (5, []), (6, []), (8, [])], loaded=9, apart=False)
    @example(
        changes=[(1, "data", "phone", 1)],
        sent=[(1, [("phone", 1)]), (1, [])],
        loaded=9,
        apart=False,
    )
    @example(changes=[(0, "data", "grid", GRID_B)], sent=[(0, [])], loaded=9, apart=False)
    @example(changes=[(0, "pseudo", "name", None)], sent=[(0, [])], loaded=9, apart=False)
    @example(changes=[(2, "conflict", "phone", None)], sent=[(2, [])], loaded=9, apart=False)
    @example(
        changes=[],
        sent=[(0, [("_deleted", False)]), (0, [("_deleted", True)])],
        loaded=9,
        apart=False,
    )
    @example(changes=[(0, "deleted", "name", None)], sent=[(0, [])], loaded=9, apart=False)
    @example(changes=[(0, "claim", "name", None)], sent=[(0, []), (5, [])], loaded=9, apart=False)
    @example(
        changes=[(1, "status", "name", None)],
        sent=[(1, [("_status", None)])],
        loaded=9,
        apart=False,
    )
    @example(
        changes=[], sent=[(0, [("_status", "complete")]), (1, [])], loaded=9, apart=False
    )  # of text
    @example(
        changes=[], sent=[(0, [("_status", ...)]), (1, [("name", "王六")])], loaded=9, apart=False
    )
    @example(  # the held key and grid spelled otherwise (unmerged data, see ``apart``)
        changes=[],
        sent=[
            (1, [("id_number", NUMBERS[1].translate(FULL_WIDTH))]),
            (0, [("grid", GRID_A + " ")]),
        ],
        loaded=9,
        apart=True,
    )
    @example(
        changes=[(0, "tomb", "name", False)], sent=[(0, [("_deleted", ...)])], loaded=9, apart=False
    )
    @example(
        changes=[(1, "data", "phone", 1.0)], sent=[(1, [("phone", "1.0")])], loaded=9, apart=False
    )
    def check(
        changes: list[tuple[int, str, str, Any]], sent: list[Any], loaded: int, apart: bool
    ) -> None:
        with engine.connect() as conn, conn.begin() as outer:
            _change(conn, form, changes)
            held = {r.id: (db.loads(r.data), r.status) for r in conn.execute(select(db.records))}
            ops = []
            for n, (h, mods) in enumerate(sent):
                data, status = held.get(HELD[h], ({}, "draft"))
                fields = {**data, "_status": status}
                for name, value in mods:
                    if value is ...:
                        fields.pop(name, None)
                    else:
                        fields[name] = value
                ops.append(_op(f"dev:c{n}", _new_id(n), "create", fields, "08:00:00"))
            keys = [rows.natural_keys(form, op.fields) for op in ops]
            plain_tx, tx = Tx(conn), Tx(conn)
            tx.load_many(HELD[:loaded])  # as the chunk's prefetch loads the holders
            ctx = Service._ctx(WORKER, "dev")
            plain = []
            for op, own in zip(ops, keys, strict=True):
                owner = claims.owner_in_scope(plain_tx, ctx, form, own)
                plain.append(
                    None if owner is None else echoes._echo(plain_tx, ctx, op, form, owner, formset)
                )
            assert echoes.echoes_of(tx, ctx, form, ops, keys, formset) == plain
            decided.extend(1 for e in plain if e is not None)
            # and given each create as the chunk's prefetch worked it out (``fresh.made``):
            # its keys, and its grid and keys for a held record of equal data. ``apart``: each
            # as a chunk of its own, so a create of filled text has its data unmerged
            # whatever the others send (one value not filled text merges the whole chunk)
            made_tx, plain_tx, tx = Tx(conn), Tx(conn), Tx(conn)
            made_tx.load_many(op.record_id for op in ops)
            rids, forms = [op.record_id for op in ops], {form.id: form}
            if apart:
                alone = zip(ops, rids, strict=True)
                creates = [fresh.made(made_tx, ctx, [o], [r], forms)[0] for o, r in alone]
            else:
                found = fresh.made(made_tx, ctx, ops, rids, forms)
                creates = [found[i] for i in range(len(ops))]
            tx.load_many(HELD[:loaded])
            plain = []
            for op, create in zip(ops, creates, strict=True):
                owner = claims.owner_in_scope(plain_tx, ctx, form, create[3])
                plain.append(
                    None if owner is None else echoes._echo(plain_tx, ctx, op, form, owner, formset)
                )
            made_keys = [create[3] for create in creates]
            assert echoes.echoes_of(tx, ctx, form, ops, made_keys, formset, creates) == plain
            outer.rollback()

    try:
        check()
    finally:
        engine.dispose()
    assert decided  # echoes were found, not only refusals


def test_echoes_of_held_text_are_decided_without_the_per_op_merge(
    db_url: str, formset: FormSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """50 residents pushed again from another device are decided as columns: no op asks
    ``_echo`` (``merge.unchanged`` and ``settle`` per op), and each answer's op-log row is
    its answer's text; one sending a value the held record lacks is decided by ``_echo``."""
    engine = _fresh(db_url)
    try:
        service = Service(engine, formset)
        held = resident_creates(50, "dev", dt.date(1970, 1, 1))
        service.apply(WORKER, "dev", held)
        asked: list[str] = []
        one = echoes._echo

        def spied(tx: Any, ctx: Any, op: p.Op, *rest: Any) -> Any:
            asked.append(op.op_id)
            return one(tx, ctx, op, *rest)

        monkeypatch.setattr(echoes, "_echo", spied)
        again = [
            op.model_copy(update={"op_id": f"dev2:{i}", "record_id": _new_id(i)})
            for i, op in enumerate(held)
        ]
        again[7] = again[7].model_copy(update={"fields": {**again[7].fields, "former_name": ""}})
        results = service.apply(WORKER, "dev2", again)
        assert [r["status"] for r in results] == ["merged_into"] * 50
        assert asked == ["dev2:7"]  # a blank the held record lacks: ``same``, asked per op
        logged = dict(_state(engine, {"ops": ("op_id", "result")})["ops"])
        assert [db.loads(logged[r["op_id"]]) for r in results] == results
    finally:
        engine.dispose()
