"""The new-record push's fused passes (issue 17: server CPU per pushed op): the scope check as
a column (``checks._lone_in_scope``), the create sort in one pass over ``fresh.made`` (scope
asked once per grid, shared keys and look-alike people looked for as columns first) and the
index spelling of a name worked out once per name (``rows._spelling``). Each is held against
the path it replaces; what a push stores is held against the per-op path by
tests/sync/test_push_fresh.py."""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, select

from app.core.forms import FormSet
from app.core.records import is_empty
from app.core.search import name_term_run
from app.core.textnorm import normalize_key
from sync import protocol as p
from sync.server import checks, db, fresh, oplog, rows
from sync.server.auth import User
from sync.server.errors import ApiError
from sync.server.rows import MAX_KEY, MAX_NAME, Person
from sync.server.service import Service
from sync.server.tx import Side, Tx
from tests.core.test_terms_plain import NAMES, plain_name_terms
from tests.sync.conftest import GRID_A, GRID_B, resident_creates
from tests.sync.test_push_fresh import HELD, MERGED_AWAY, _setup
from tests.sync.test_server_batch import WORKER, _fresh

ADMIN = User("root", "admin", None, None)
NEW = [f"0190a0b0-c0d0-7000-8000-0000000cc{i:03d}" for i in range(4)]


def _spy(calls: list[Any], plain: Callable[..., Any], arg: str) -> Callable[..., Any]:
    """``plain``, noting its argument ``arg`` of each call in ``calls``."""
    names = list(inspect.signature(plain).parameters)

    def spied(*args: Any, **kw: Any) -> Any:
        calls.append(kw[arg] if arg in kw else args[names.index(arg)])
        return plain(*args, **kw)

    return spied


@st.composite
def _ops(draw: st.DrawFn) -> list[p.Op]:
    """Ops of held, merged-away and new record ids (some named twice), of every kind, with a
    grid in or out of the caller's scope, blank or not sent."""
    out = []
    for n in range(draw(st.integers(1, 8))):
        fields: dict[str, Any] = {"name": "张三"}
        grid = draw(st.sampled_from([GRID_A, GRID_A, GRID_B, "", "  ", None, 7, "absent"]))
        if grid != "absent":
            fields["grid"] = grid
        out.append(
            p.Op(
                op_id=f"dev:c{n}",
                record_id=draw(st.sampled_from([*NEW, *HELD[:2], MERGED_AWAY])),
                form="resident",
                kind=draw(st.sampled_from(["create", "create", "update", "delete"])),
                base_version=draw(st.sampled_from([None, None, 1, 5])),
                fields=fields,
                edited_at="2026-11-30T08:00:00.000Z#0000",
                author="tester",
            )
        )
    if draw(st.booleans()):
        out.append(_setup()[0])  # a replay of a logged op
    return out


def _check(engine: Any, formset: FormSet, user: User, ops: list[p.Op]) -> Any:
    """What the whole-request check answers: what it read, or the error it names."""
    req = p.PushRequest(protocol=max(p.SUPPORTED_PROTOCOLS), device_id="dev", ops=ops)
    with engine.connect() as conn:
        try:
            found = checks.check_push(conn, formset, user, req, "dev")
        except ApiError as exc:
            return exc.body()
    return sorted(found.replays), found.aliases, found.looked_up


def test_the_scope_check_as_a_column_answers_as_the_loop(tmp_path: Any, formset: FormSet) -> None:
    """Random batches: the check answers alike (what it read, or the first op at fault and
    its error) whether the lone ops of new records are decided as a column or by the loop."""
    engine = _fresh(f"sqlite:///{tmp_path / 'c.db'}")
    try:
        Service(engine, formset).apply(WORKER, "dev", _setup())

        @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(ops=_ops(), admin=st.booleans())
        def check(ops: list[p.Op], admin: bool) -> None:
            user = ADMIN if admin else WORKER
            fast = _check(engine, formset, user, ops)
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(checks, "_lone_in_scope", lambda *_a, **_k: set())
                assert fast == _check(engine, formset, user, ops)

        check()
    finally:
        engine.dispose()


def test_a_push_of_new_residents_asks_the_scope_once_per_grid(
    db_url: str, formset: FormSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """50 new residents of one grid pushed: the check's loop (``_check_scope``) is asked for
    none of them, and the caller's scope is asked once per grid by the check and once by the
    create sort (it was asked once per op by each)."""
    engine = _fresh(db_url)
    try:
        service = Service(engine, formset)
        loop: list[Any] = []
        monkeypatch.setattr(checks, "_check_scope", _spy(loop, checks._check_scope, "op"))
        asked: list[Any] = []
        monkeypatch.setattr(User, "in_scope", _spy(asked, User.in_scope, "grid"))
        ops = resident_creates(50, "dev", dt.date(1972, 1, 1))
        req = p.PushRequest(protocol=max(p.SUPPORTED_PROTOCOLS), device_id="dev", ops=ops)
        results = service.push(WORKER, req, "dev")
        assert [r["status"] for r in results] == ["applied"] * 50
        assert loop == []
        assert asked == [GRID_A, GRID_A]
    finally:
        engine.dispose()


def test_new_residents_meeting_nothing_are_not_compared_one_by_one(
    db_url: str, formset: FormSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """50 new residents with their own keys and people: the create sort finds no shared key
    and no look-alike as columns, and compares no create's birth date or key parts with the
    chunk's other ops (``_birth``, ``meets``: once per create before)."""
    engine = _fresh(db_url)
    try:
        service = Service(engine, formset)
        compared: list[Any] = []
        for name in ("_birth", "meets"):
            monkeypatch.setattr(fresh, name, _spy(compared, getattr(fresh, name), "form"))
        ops = resident_creates(50, "dev", dt.date(1973, 1, 1))
        results = service.apply(WORKER, "dev", ops)
        assert [r["status"] for r in results] == ["applied"] * 50
        assert compared == []
    finally:
        engine.dispose()


def test_new_residents_ask_no_key_and_no_person_one_by_one(
    db_url: str, formset: FormSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """50 new residents whose keys nobody holds and whom nobody is like: the prefetch and the
    create sort learn it as columns (``Tx.keys_taken``, ``Tx.alike``), asking ``key_free``
    and ``same_person`` of none of them (each was asked per create, ``key_free`` twice)."""
    engine = _fresh(db_url)
    try:
        service = Service(engine, formset)
        asked: list[Any] = []
        monkeypatch.setattr(Tx, "key_free", _spy(asked, Tx.key_free, "key"))
        monkeypatch.setattr(Tx, "same_person", _spy(asked, Tx.same_person, "person"))
        ops = resident_creates(50, "dev", dt.date(1974, 1, 1))
        req = p.PushRequest(protocol=max(p.SUPPORTED_PROTOCOLS), device_id="dev", ops=ops)
        results = service.push(WORKER, req, "dev")
        assert [r["status"] for r in results] == ["applied"] * 50
        assert asked == []
    finally:
        engine.dispose()


def test_residents_the_platform_holds_ask_nobody_s_person(
    db_url: str, formset: FormSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """50 residents pushed again by another device under new record ids (a device set up
    anew): each create meets its held key and merges into the holder, so the create sort
    asks nobody's person (the prefetch read none for them: each ``same_person`` would be a
    look-up of its own, as when ``Tx.alike`` was asked of every new record)."""
    engine = _fresh(db_url)
    try:
        service = Service(engine, formset)
        first = resident_creates(50, "dev", dt.date(1974, 1, 1))
        req = p.PushRequest(protocol=max(p.SUPPORTED_PROTOCOLS), device_id="dev", ops=first)
        assert [r["status"] for r in service.push(WORKER, req, "dev")] == ["applied"] * 50
        asked: list[Any] = []
        monkeypatch.setattr(Tx, "same_person", _spy(asked, Tx.same_person, "person"))
        again = resident_creates(50, "dev2", dt.date(1974, 1, 1))
        req = p.PushRequest(protocol=max(p.SUPPORTED_PROTOCOLS), device_id="dev2", ops=again)
        results = service.push(WORKER, req, "dev2")
        assert [r["status"] for r in results] == ["merged_into"] * 50
        assert asked == []
    finally:
        engine.dispose()


def test_residents_the_platform_holds_have_no_person_worked_out(
    db_url: str, formset: FormSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """50 residents pushed again by another device (each merges into its holder) have no
    person worked out at all (``people_of``: a name's pinyin each), only the new one with
    them; the answers are as before."""
    engine = _fresh(db_url)
    try:
        service = Service(engine, formset)
        first = resident_creates(50, "dev", dt.date(1974, 1, 1))
        service.apply(WORKER, "dev", first)
        seen: list[int] = []
        plain = fresh.people_of

        def spied(form: Any, datas: Any) -> Any:
            seen.append(len(datas))
            return plain(form, datas)

        monkeypatch.setattr(fresh, "people_of", spied)
        again = resident_creates(51, "dev2", dt.date(1974, 1, 1))
        results = service.apply(WORKER, "dev2", again)
        assert [r["status"] for r in results] == ["merged_into"] * 50 + ["applied"]
        assert sum(seen) == 1  # the new resident's
    finally:
        engine.dispose()


_REFS = st.tuples(st.sampled_from(["resident", "household"]), st.sampled_from(["k1", "k2", "k3"]))
_RIDS = st.sampled_from(["r1", "r2", "r3"])


def _key_free_before(tx: Tx, form: str, key: str) -> bool:
    """``Tx.key_free`` as it was written before ``keys_taken`` (the reference)."""
    ref = (form, key)
    return (
        tx._key_db.get(ref, "") is None
        and not tx._claims_db.get(ref, True)
        and ref not in tx._key_tx
        and not tx._claims_tx.get(ref)
    )


@settings(max_examples=300)
@given(
    key_db=st.dictionaries(_REFS, st.none() | _RIDS),
    claims_db=st.dictionaries(_REFS, st.lists(_RIDS, max_size=2)),
    key_tx=st.dictionaries(_REFS, _RIDS),
    claims_tx=st.dictionaries(_REFS, st.sets(_RIDS, max_size=2)),
    refs=st.lists(_REFS, max_size=6),
)
def test_keys_taken_are_those_not_free(
    key_db: dict[Any, Any],
    claims_db: dict[Any, Any],
    key_tx: dict[Any, Any],
    claims_tx: dict[Any, Any],
    refs: list[tuple[str, str]],
) -> None:
    """``keys_taken`` (one column) is the keys the plain ``key_free`` says are not free."""
    tx = Tx(conn=None)  # type: ignore[arg-type]  # answered from its state, no query
    tx._key_db, tx._claims_db, tx._key_tx, tx._claims_tx = key_db, claims_db, key_tx, claims_tx
    assert tx.keys_taken(refs) == {r for r in refs if not _key_free_before(tx, *r)}
    assert all(tx.key_free(*r) == _key_free_before(tx, *r) for r in refs)


@settings(max_examples=300)
@given(
    key_db=st.dictionaries(_REFS, st.none() | _RIDS),
    key_tx=st.dictionaries(_REFS, _RIDS),
    sides=st.sets(_RIDS),
    form=st.sampled_from(["resident", "household"]),
    keys=st.lists(st.sampled_from(["k1", "k2", "k3"]), max_size=6),
)
def test_key_owners_are_each_key_s_owner(
    key_db: dict[Any, Any],
    key_tx: dict[Any, Any],
    sides: set[str],
    form: str,
    keys: list[str],
) -> None:
    """``key_owners`` (one column) is ``key_owner`` of each key alone: this transaction's
    holder first, else the database's unless that record was rewritten here."""
    tx = Tx(conn=None)  # type: ignore[arg-type]  # answered from its state, no query
    for k in ("k1", "k2", "k3"):
        for f in ("resident", "household"):
            key_db.setdefault((f, k), None)  # prefetched: no query
    tx._key_db, tx._key_tx = key_db, key_tx
    tx.sides = {r: Side(form, (), None) for r in sides}
    assert tx.key_owners(form, keys) == [tx.key_owner(form, [k]) for k in keys]


@settings(max_examples=300)
@given(
    key_db=st.dictionaries(_REFS, st.none() | _RIDS),
    key_tx=st.dictionaries(_REFS, _RIDS),
    sides=st.sets(_RIDS),
    new=st.lists(
        st.tuples(
            st.sampled_from(["n1", "n2", "n3", "n4"]),
            st.sampled_from(["resident", "household"]),
            st.lists(st.sampled_from(["k1", "k2", "k3"]), max_size=3),
        ),
        max_size=6,
    ),
    taken=st.sets(_REFS),
)
def test_owners_of_new_records_are_key_owner_s(
    key_db: dict[Any, Any],
    key_tx: dict[Any, Any],
    sides: set[str],
    new: list[tuple[str, str, list[str]]],
    taken: set[tuple[str, str]],
) -> None:
    """The prefetch's owners of new records with a taken key (``service._owners``, one
    column per form) are ``key_owner`` of each record's keys, in the same order."""
    from sync.server import service

    tx = Tx(conn=None)  # type: ignore[arg-type]  # answered from its state, no query
    for k in ("k1", "k2", "k3"):
        for f in ("resident", "household"):
            key_db.setdefault((f, k), None)  # prefetched: no query
    tx._key_db, tx._key_tx = key_db, key_tx
    tx.sides = {r: Side("resident", (), None) for r in sides}
    plain = {
        i: o
        for i, f, k in new
        if any((f, key) in taken for key in k) and (o := tx.key_owner(f, k)) is not None
    }
    assert list(service._owners(tx, new, taken).items()) == list(plain.items())


_PEOPLE = st.builds(
    Person,
    st.sampled_from(["张三", "章三"]),
    st.sampled_from(["zhangsan", "lisi"]),
    st.sampled_from(["1980-01-01", "1980-01-02"]),
)
_FORMS = st.sampled_from(["resident", "household"])


@settings(max_examples=300)
@given(
    found=st.dictionaries(
        st.tuples(_FORMS, _PEOPLE), st.lists(st.tuples(_RIDS, _PEOPLE), max_size=2)
    ),
    written=st.dictionaries(
        st.tuples(_FORMS, st.sampled_from(["1980-01-01", "1980-01-02"])),
        st.dictionaries(_RIDS, _PEOPLE, max_size=2),
    ),
    sides=st.sets(_RIDS),
    people=st.lists(st.tuples(_FORMS, _PEOPLE), max_size=6),
)
def test_people_alike_are_those_same_person_finds(
    found: dict[Any, Any], written: dict[Any, Any], sides: set[str], people: list[Any]
) -> None:
    """``alike`` (one column, ``same_person`` asked only where someone may be) is the people
    ``same_person`` finds someone for, asked one by one."""
    tx = Tx(conn=None)  # type: ignore[arg-type]  # answered from its state, no query
    tx._people_db = {k: v for k, v in found.items()}
    tx._people_db.update({k: [] for k in people if k not in found})  # prefetched: nobody
    tx._people_tx = written
    tx.sides = {rid: Side("resident", (), None) for rid in sides}
    assert tx.alike(people) == {(f, q) for f, q in people if tx.same_person(f, q)}


def test_a_name_is_spelled_once(formset: FormSet, monkeypatch: pytest.MonkeyPatch) -> None:
    """Residents sharing a name: its terms are asked once (``name_terms`` was asked, and its
    pinyin picked, for every record), and read no further than the pinyin (the surname's
    other readings and the initials were made and dropped)."""
    asked: list[str] = []

    def run(name: str) -> Iterator[str]:
        for term in name_term_run(name):
            asked.append(term)
            yield term

    monkeypatch.setattr(rows, "name_term_run", run)
    rows._spelling.cache_clear()
    form = formset.form("resident")
    people = [
        rows.person_of(form, {"name": "单雄信", "birth_date": f"1980-01-0{d}"}) for d in (1, 2)
    ]
    assert people == [
        Person("单雄信", "danxiongxin", "1980-01-01"),
        Person("单雄信", "danxiongxin", "1980-01-02"),
    ]
    assert asked == ["单雄信", "雄信", "danxiongxin"]  # not "dxx", "shanxiongxin", ...
    rows._spelling.cache_clear()


@settings(max_examples=400, deadline=None)
@given(name=st.one_of(NAMES, st.text(max_size=12)))
def test_a_spelling_is_that_of_the_plain_terms(name: str) -> None:
    """``_spelling`` reads the terms as made: the plain path's first term and first Latin one."""
    terms = plain_name_terms(name[:MAX_NAME])
    pinyin = next((t for t in terms if t.isascii()), terms[0]) if terms else ""
    plain = (terms[0][:MAX_NAME], pinyin[:MAX_NAME]) if terms else None
    assert rows._spelling.__wrapped__(name) == plain


def _person_before(form: Any, data: Mapping[str, Any]) -> Person | None:
    """``person_of`` as it was written before the spelling cache (the reference)."""
    roles = form.roles
    if not roles.birth_date or is_empty(data.get(roles.birth_date)):
        return None
    name = next((str(data[f]) for f in roles.name if not is_empty(data.get(f))), "")
    birth = str(data[roles.birth_date])
    terms = plain_name_terms(name[:MAX_NAME]) if name else ()
    if not terms or len(birth) > 10:
        return None
    pinyin = next((t for t in terms if t.isascii()), terms[0])
    return Person(terms[0][:MAX_NAME], pinyin[:MAX_NAME], birth)


def _keys_before(form: Any, data: Mapping[str, Any]) -> list[str]:
    """``natural_keys`` as it was written before (the reference)."""
    from hashlib import sha256

    keys = []
    for fields in form.natural_keys:
        parts = []
        for field_id in fields:
            value = data.get(field_id)
            if value is None or str(value).strip() == "":
                break
            parts.append(normalize_key(str(value)))
        else:
            key = "|".join(parts)
            keys.append(
                key if len(key) <= MAX_KEY else "sha256:" + sha256(key.encode()).hexdigest()
            )
    return keys


class _Text(str):
    """A str subclass (goes the plain way: ``type(v) is str`` is False)."""


_values = st.one_of(
    st.none(),
    st.sampled_from(
        ["", "  ", "张三", " 李 四 ", "Anna Lee", "·", "１１１", "1985-06-15", "x" * 300]
    ),
    st.builds(_Text, st.sampled_from(["", "王五", "1985-06-15"])),
    st.integers(-5, 10**12),
    st.booleans(),
    st.lists(st.sampled_from(["a", ""]), max_size=2),
    st.text(max_size=12),
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.dictionaries(
        st.sampled_from(
            ["name", "former_name", "foreign_surname", "birth_date", "id_type", "id_number"]
        ),
        _values,
    )
)
def test_person_and_keys_as_before(formset: FormSet, data: dict[str, Any]) -> None:
    """``person_of`` (spelling cached per name, text asked without a call) and
    ``natural_keys`` (text asked without a copy) answer as they were written before."""
    form = formset.form("resident")
    assert rows.person_of(form, data) == _person_before(form, data)
    assert rows.natural_keys(form, data) == _keys_before(form, data)


@st.composite
def _shaped(draw: st.DrawFn) -> list[p.Op]:
    """Ops with good or bad record ids, known or unknown forms, fields of the form or not,
    good or bad strings."""
    return [
        p.Op(
            op_id=f"dev:s{n}",
            record_id=draw(st.sampled_from([NEW[n % 4], NEW[0].upper(), "not-a-uuid"])),
            form=draw(st.sampled_from(["resident", "resident", "nosuch"])),
            kind=draw(st.sampled_from(["create", "create", "delete"])),
            fields=draw(
                st.sampled_from(
                    [{"name": "张三"}, {"bogus": "x"}, {"name": "a\x00"}, {"name": ["x"]}, {}]
                )
            ),
            edited_at="2026-11-30T08:00:00.000Z#0000",
            author="tester",
        )
        for n in range(draw(st.integers(1, 6)))
    ]


def _shapes_of(formset: FormSet, ops: list[p.Op]) -> Any:
    forms, error = checks._shapes(formset, ops)
    return [f.id for f in forms], error.body() if error else None


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=_shaped())
def test_the_forms_of_a_request_as_a_column_are_the_loops(
    formset: FormSet, ops: list[p.Op]
) -> None:
    """``_shapes`` answers alike (each op's form up to the first at fault, and its error)
    with the forms and record ids decided as columns (``_forms_of``) or op by op."""
    fast = _shapes_of(formset, ops)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(checks, "_forms_of", lambda *_a: None)
        assert fast == _shapes_of(formset, ops)


def test_a_push_of_new_residents_checks_no_op_shape_alone(
    formset: FormSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request whose strings and fields pass as columns: no op is shape-checked on its
    own (``check_op_shape`` was asked once per op)."""
    asked: list[Any] = []
    monkeypatch.setattr(checks, "check_op_shape", _spy(asked, checks.check_op_shape, "op"))
    ops = resident_creates(20, "dev", dt.date(1974, 1, 1))
    forms, error = checks._shapes(formset, ops)
    assert error is None and [f.id for f in forms] == ["resident"] * 20
    assert asked == []


def test_a_requests_field_names_are_scanned_once_each(monkeypatch: pytest.MonkeyPatch) -> None:
    """20 ops of 15 fields: the one scan of the request's strings holds each op's five ids,
    its values and the 15 field names once (it held each op's names: 300)."""
    scanned: list[Any] = []
    monkeypatch.setattr(checks, "cells_ok", _spy(scanned, checks.cells_ok, "cells"))
    ops = resident_creates(20, "dev", dt.date(1975, 1, 1))
    names = {name for op in ops for name in op.fields}
    assert checks.strings_ok_all(ops)
    assert len(scanned) == 1
    assert sorted(scanned[0]) == sorted(
        [s for op in ops for s in (op.op_id, op.record_id, op.form, op.edited_at, op.author)]
        + [*names]
        + [v for op in ops for v in op.fields.values()]
    )


_column_values = st.one_of(
    st.sampled_from(["张三", "欧阳娜娜", "Anna Lee", "1985-06-15", "330106001001-01", " 111 "]),
    st.sampled_from(["", "  ", "１１１", "1985-06-15T00", "x" * 260]),
    st.none(),
    st.integers(0, 99),
    st.builds(_Text, st.sampled_from(["王五", "1985-06-15"])),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), regular=st.booleans())
def test_grids_keys_and_people_as_columns_are_the_per_record_ones(
    formset: FormSet, data: st.DataObject, regular: bool
) -> None:
    """``grids_of``, ``keys_of`` and ``people_of`` of a column of records are ``grid_of``,
    ``natural_keys`` and ``person_of`` of each, for every form; ``regular``: every value
    filled text (the column path), else anything."""
    form = formset.forms[data.draw(st.sampled_from(sorted(formset.forms)))]
    roles = form.roles
    names = [*(f for spec in form.natural_keys for f in spec), *roles.name]
    names += [f for f in (roles.birth_date, roles.grid) if f]
    value = (
        st.sampled_from(["张三", "1985-06-15", "330106001001-01", "a b"])
        if regular
        else _column_values
    )
    datas = data.draw(
        st.lists(
            st.dictionaries(st.sampled_from(names), value)
            if not regular
            else st.fixed_dictionaries({n: value for n in names}),
            max_size=6,
        )
    )
    assert rows.grids_of(form, datas) == [rows.grid_of(form, d) for d in datas]
    assert rows.keys_of(form, datas) == [rows.natural_keys(form, d) for d in datas]
    assert rows.people_of(form, datas) == [rows.person_of(form, d) for d in datas]


def test_a_chunk_of_new_residents_is_worked_out_as_columns(
    db_url: str, formset: FormSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """50 new residents pushed: no record's grid, keys or person is worked out on its own
    (``grid_of``, ``natural_keys``, ``person_of``: once each per record before)."""
    engine = _fresh(db_url)
    try:
        service = Service(engine, formset)
        alone: list[Any] = []
        for name in ("grid_of", "natural_keys", "person_of"):
            spied = _spy(alone, getattr(rows, name), "form")
            monkeypatch.setattr(rows, name, spied)
            monkeypatch.setattr(fresh, name, spied, raising=False)  # as fresh named them
        ops = resident_creates(50, "dev", dt.date(1976, 1, 1))
        req = p.PushRequest(protocol=max(p.SUPPORTED_PROTOCOLS), device_id="dev", ops=ops)
        results = service.push(WORKER, req, "dev")
        assert [r["status"] for r in results] == ["applied"] * 50
        assert alone == []
    finally:
        engine.dispose()


@pytest.mark.parametrize("sorted_names", [True, False])
def test_a_chunk_of_new_residents_is_merged_as_a_column(
    db_url: str, formset: FormSet, monkeypatch: pytest.MonkeyPatch, sorted_names: bool
) -> None:
    """50 new residents pushed, their names sorted as a device's outbox sends them or not:
    none is merged on its own (``merge_new``: once per record before), and each record
    holds what it was sent."""
    from sync import merge

    engine = _fresh(db_url)
    try:
        service = Service(engine, formset)
        alone: list[Any] = []
        spied = _spy(alone, merge.merge_new, "incoming")
        monkeypatch.setattr(merge, "merge_new", spied)
        monkeypatch.setattr(fresh, "merge_new", spied, raising=False)  # as fresh named it
        ops = resident_creates(50, "dev", dt.date(1977, 1, 1))
        if sorted_names:
            ops = [op.model_copy(update={"fields": dict(sorted(op.fields.items()))}) for op in ops]
        req = p.PushRequest(protocol=max(p.SUPPORTED_PROTOCOLS), device_id="dev", ops=ops)
        results = service.push(WORKER, req, "dev")
        assert [r["status"] for r in results] == ["applied"] * 50
        assert alone == []
        held = service.get_record(WORKER, ops[7].record_id)
        sent = {k: v for k, v in ops[7].fields.items() if k != "_status"}
        assert held["data"] == sent and held["status"] == "draft"
    finally:
        engine.dispose()


def test_a_chunk_of_new_residents_builds_no_merge(
    db_url: str, formset: FormSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """50 new residents of filled text pushed: none is merged, as a column or on its own
    (``merge_new_all``, ``merge_new``: a ``Merged`` of four dicts per record before); their
    status and stamps follow from the ops (``fresh.Filled``), and each record holds what
    it was sent, stamped with its op's clock."""
    from sync import merge

    engine = _fresh(db_url)
    try:
        service = Service(engine, formset)
        merged: list[Any] = []
        for name, arg in (("merge_new_all", "changes"), ("merge_new", "incoming")):
            spied = _spy(merged, getattr(merge, name), arg)
            monkeypatch.setattr(merge, name, spied)
            monkeypatch.setattr(fresh, name, spied, raising=False)  # as fresh named them
        ops = resident_creates(50, "dev", dt.date(1977, 2, 1))
        ops[3] = ops[3].model_copy(update={"fields": {**ops[3].fields, "_status": "complete"}})
        req = p.PushRequest(protocol=max(p.SUPPORTED_PROTOCOLS), device_id="dev", ops=ops)
        results = service.push(WORKER, req, "dev")
        assert [r["status"] for r in results] == ["applied"] * 50
        assert merged == []
        for op in (ops[3], ops[7]):
            held = service.get_record(WORKER, op.record_id)
            assert held["data"] == {k: v for k, v in op.fields.items() if k != "_status"}
            assert held["status"] == op.fields.get("_status", "draft")
            stamps = rows.stamps_of(_stored(engine, "stamps", op.record_id))
            assert stamps == merge.merge_new(op.fields, edited_at=op.edited_at, device="dev").stamps
    finally:
        engine.dispose()


def test_a_chunk_of_new_residents_writes_its_texts_without_a_plainness_pass(
    db_url: str, formset: FormSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """50 new residents of filled text pushed: their data, stamps and answers are written
    as columns whose values ``fresh.write`` built of text (``plain=True``): the push asks
    ``_plain_all`` once, of its ops' hashes (once per column more before); what is stored
    is held against the plain path by tests/sync/test_push_fresh.py."""
    from app.core import records

    engine = _fresh(db_url)
    try:
        service = Service(engine, formset)
        passes: list[int] = []
        check = records._plain_all
        monkeypatch.setattr(records, "_plain_all", lambda v: passes.append(len(v)) or check(v))
        ops = resident_creates(50, "dev", dt.date(1977, 3, 1))
        req = p.PushRequest(protocol=max(p.SUPPORTED_PROTOCOLS), device_id="dev", ops=ops)
        results = service.push(WORKER, req, "dev")
        assert [r["status"] for r in results] == ["applied"] * 50
        assert passes == [50]
    finally:
        engine.dispose()


def _stored(engine: Any, column: str, record_id: str) -> Any:
    """A column of a stored record row."""
    with engine.connect() as conn:
        table = db.records
        return conn.execute(select(table.c[column]).where(table.c.id == record_id)).scalar_one()


_FILLED_TEXT = st.text(min_size=1, max_size=4).filter(str.strip)


@given(
    fields=st.dictionaries(
        st.sampled_from(["name", "grid", "id_number", "a", "Z", "_status", "名"]),
        _FILLED_TEXT,
        max_size=6,
    ),
    status=st.sampled_from([None, "draft", "complete"]),
    clock=st.sampled_from(["2026-11-30T08:00:00.000Z#0000", "", "2026-12-01T00:00:00Z#0007"]),
    device=st.sampled_from(["dev", "", "设备"]),
)
def test_a_filled_create_s_status_and_stamps_are_its_merge_s(
    fields: dict[str, str], status: str | None, clock: str, device: str
) -> None:
    """What ``fresh`` reads of a create of filled text without merging it (``Filled``: its
    status, and its stamps as written) is what it reads of ``merge_new``'s merge of it
    (``_status``, ``_stamps``), no field at all included."""
    from sync.merge import merge_new

    if status is not None:
        fields = {**fields, "_status": status}
    op = p.Op(
        op_id="dev:1",
        record_id=NEW[0],
        form="resident",
        kind="create",
        fields=fields,
        edited_at=clock or "x",
    )
    merged = merge_new(fields, edited_at=clock, device=device)
    assert fresh._status_of(fresh.FILLED, op) == fresh._status(merged)
    got = fresh._stamps_of(fresh.FILLED, op, clock, device)
    assert got == fresh._stamps(merged)
    assert db.dumps(got) == rows.stamps_text(merged.stamps)


def test_new_ops_are_matched_against_no_logged_op_one_by_one(
    db_url: str, formset: FormSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The replay look-up of 50 new ops matches none of them one by one (``oplog._match``:
    asked of each op before, to learn that nobody logged it); sent again, each is matched
    against its logged row and answered ``duplicate_op``."""
    engine = _fresh(db_url)
    try:
        service = Service(engine, formset)
        asked: list[Any] = []
        monkeypatch.setattr(oplog, "_match", _spy(asked, oplog._match, "digest"))
        ops = resident_creates(50, "dev", dt.date(1978, 1, 1))
        req = p.PushRequest(protocol=max(p.SUPPORTED_PROTOCOLS), device_id="dev", ops=ops)
        assert [r["status"] for r in service.push(WORKER, req, "dev")] == ["applied"] * 50
        assert asked == []
        again = service.push(WORKER, req, "dev")
        assert [r["status"] for r in again] == ["duplicate_op"] * 50
        assert sorted(asked) == sorted(oplog.op_hashes(ops))
    finally:
        engine.dispose()


@given(
    ids=st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=6),
    digests=st.lists(st.sampled_from(["h1", "h2"]), min_size=6, max_size=6),
    before=st.dictionaries(st.sampled_from(["a", "b", "e"]), st.sampled_from(["h1", "h2"])),
)
def test_noting_a_requests_hashes_as_a_column_is_the_loop(
    ids: list[str], digests: list[str], before: dict[str, str]
) -> None:
    """``oplog._note_hashes`` fills ``hashes`` as a ``setdefault`` per op did, and names the
    same first op whose id is there with other content."""
    ops = [p.Op.model_construct(op_id=i) for i in ids]
    digests = digests[: len(ids)]
    want, want_index = dict(before), None
    for index, (op_id, digest) in enumerate(zip(ids, digests, strict=True)):
        if want.setdefault(op_id, digest) != digest:
            want_index = index
            break
    got = dict(before)
    try:
        oplog._note_hashes(ops, digests, got)
        got_index = None
    except ApiError as exc:
        assert exc.code == oplog.REUSED
        got_index = exc.index
    assert got_index == want_index
    if want_index is None:
        assert got == want


def test_a_push_s_id_look_ups_read_their_lists_as_they_are_on_sqlite(
    tmp_path: Any, formset: FormSet
) -> None:
    """On SQLite the push's look-ups of records and aliases by a list of ids probe an index
    per id as the list is read (``sqlin.among_rows``): no temporary index of the list
    (``IN (SELECT ... json_each)`` built one per look-up) and no sort; and the push answers
    and stores as before."""
    engine = _fresh(f"sqlite:///{tmp_path / 'platform.db'}")
    plans: dict[str, list[str]] = {}

    def explain(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if "json_each" in statement and statement.lstrip().startswith("SELECT"):
            raw = cursor.connection.cursor()
            found = raw.execute("EXPLAIN QUERY PLAN " + statement, params).fetchall()
            for joined in statement.split(" JOIN ")[1:]:
                plans.setdefault(joined.split()[0], []).extend(str(row[3]) for row in found)

    event.listen(engine, "before_cursor_execute", explain)
    try:
        service = Service(engine, formset)
        ops = resident_creates(30, "dev", dt.date(1979, 1, 1))
        req = p.PushRequest(protocol=max(p.SUPPORTED_PROTOCOLS), device_id="dev", ops=ops)
        assert [r["status"] for r in service.push(WORKER, req, "dev")] == ["applied"] * 30
        assert service.get_record(WORKER, ops[3].record_id)["version"] == 1
    finally:
        event.remove(engine, "before_cursor_execute", explain)
        engine.dispose()
    assert {"records", "aliases"} <= plans.keys()
    for table in ("records", "aliases"):
        steps = plans[table]
        assert not [s for s in steps if "LIST SUBQUERY" in s or "TEMP B-TREE" in s], steps
        assert any(s.startswith("SEARCH " + table) for s in steps), steps


_REF_VALUES = st.one_of(
    st.none(), st.sampled_from(["", "r1", "r2", "0190a0b0-c0d0-7000"]), st.just(7)
)


@given(
    picks=st.lists(
        st.tuples(
            st.sampled_from(["resident", "house", "unit", "address"]),
            st.dictionaries(st.sampled_from(["house_ref", "address_ref", "name"]), _REF_VALUES),
        ),
        max_size=8,
    )
)
def test_reference_ids_as_columns_are_those_of_each_op(
    formset: FormSet, picks: list[tuple[str, dict[str, Any]]]
) -> None:
    """``fresh.ref_ids_all`` names the record ids ``ref_ids`` names op by op (in another
    order), whatever the forms, the references sent and their types."""
    ops = [
        p.Op.model_construct(op_id=f"d:{n}", form=form, fields=fields)
        for n, (form, fields) in enumerate(picks)
    ]
    forms = {name: formset.form(name) for name in {op.form for op in ops}}
    each = [v for op in ops for v in fresh.ref_ids(forms[op.form], op)]
    assert sorted(fresh.ref_ids_all(forms, ops)) == sorted(each)


def test_a_push_of_new_residents_reads_their_references_as_a_column(
    db_url: str, formset: FormSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """50 new residents naming a house each: the prefetch reads the houses they name as one
    column (``ref_ids`` was asked of each op) and each resident keeps its reference."""
    engine = _fresh(db_url)
    try:
        service = Service(engine, formset)
        asked: list[Any] = []
        monkeypatch.setattr(fresh, "ref_ids", _spy(asked, fresh.ref_ids, "op"))
        house = "0190a0b0-c0d0-7000-8000-0000000dd000"
        ops = resident_creates(50, "dev", dt.date(1980, 1, 1), house_ref=house)
        req = p.PushRequest(protocol=max(p.SUPPORTED_PROTOCOLS), device_id="dev", ops=ops)
        assert [r["status"] for r in service.push(WORKER, req, "dev")] == ["applied"] * 50
        assert asked == []
        assert service.get_record(WORKER, ops[9].record_id)["data"]["house_ref"] == house
    finally:
        engine.dispose()
