"""Server CPU of a nightly sync (issue 19): what a push derives from each op's values is
derived once (``rows.Derived``), and the credential exchange and the numbers' settling run
statements built once.

A push used to compute each record's natural keys four times (prefetch, create, claims,
write) and its people row (the pinyin of the name) twice, from dicts holding the same values.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, event, select

from app.core.forms import FormSet
from sync import protocol as p
from sync.server import admin, auth, db, fresh, numbering, oplog, records, rows
from sync.server.service import Service
from tests.sync.conftest import GRID_A, resident_creates
from tests.sync.test_server_batch import WORKER, _fresh

# What a key or name field may hold after a JSON parse, and values equal across types
# (1 == 1.0 == True) whose text differs: a memo keyed by equality would confuse them.
_VALUES = st.one_of(
    st.none(),
    st.sampled_from(["", " ", "111", "张三", "章三", "zhang san", "1", "1.0", "True", "１１１"]),
    st.text(max_size=12),
    st.integers(-2, 2),
    st.booleans(),
    st.sampled_from([1.0, 0.0, 1e-05]),
    st.lists(st.sampled_from(["1", "2"]), max_size=2),
)


def _fields(form: Any) -> list[str]:
    roles = form.roles
    named = [f for fields in form.natural_keys for f in fields]
    return list(
        dict.fromkeys(
            [*named, *roles.name, *([roles.birth_date] if roles.birth_date else []), "gender"]
        )
    )


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_derived_answers_as_the_plain_functions(formset: FormSet, data: st.DataObject) -> None:
    """Any sequence of look-ups on one memo gives what ``natural_keys`` and ``person_of``
    give, whatever the values' types, and a caller changing the list it got changes nothing."""
    memo = rows.Derived()
    for _ in range(data.draw(st.integers(1, 6))):
        form = formset.form(data.draw(st.sampled_from(["resident", "house", "unit"])))
        names = [f for f in _fields(form) if f]
        values = data.draw(st.dictionaries(st.sampled_from(names), _VALUES, max_size=len(names)))
        keys = memo.natural_keys(form, values)
        assert keys == rows.natural_keys(form, values)
        keys.append("changed by the caller")
        assert memo.natural_keys(form, values) == rows.natural_keys(form, values)
        assert memo.person_of(form, values) == rows.person_of(form, values)


@contextmanager
def _counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """Calls of ``natural_keys`` and ``person_of``, under every name the push reaches them by."""
    calls = {"natural_keys": 0, "person_of": 0, "keys_of": 0, "people_of": 0}
    for name in calls:
        plain = getattr(rows, name)

        def counted(*args: Any, _plain: Any = plain, _name: str = name) -> Any:
            calls[_name] += 1
            return _plain(*args)

        monkeypatch.setattr(rows, name, counted)
        monkeypatch.setattr(records, name, counted, raising=False)
        monkeypatch.setattr(fresh, name, counted, raising=False)
    yield calls


def _push(service: Service, ops: list[p.Op]) -> list[dict[str, Any]]:
    req = p.PushRequest(protocol=p.SUPPORTED_PROTOCOLS[-1], device_id="dev", ops=ops)
    return service.push(WORKER, req, "dev")


def test_a_push_derives_keys_and_person_once_per_op(
    db_url: str, formset: FormSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """20 new residents: their natural keys and people rows are computed once, as columns
    (``keys_of``, ``people_of``: none record by record; they were computed four times and
    twice, then once each), and what is stored is what they say."""
    engine = _fresh(db_url)
    try:
        service = Service(engine, formset)
        ops = resident_creates(20, "dev", dt.date(1971, 1, 1))
        with _counted(monkeypatch) as calls:
            results = _push(service, ops)
        assert {r["status"] for r in results} == {"applied"}
        assert calls == {"natural_keys": 0, "person_of": 0, "keys_of": 1, "people_of": 1}
        form = formset.form("resident")
        with engine.connect() as conn:
            held = {(r.key, r.record_id) for r in conn.execute(db.record_keys.select())}
            people = {r.record_id for r in conn.execute(db.people.select())}
        for op in ops:
            assert {(k, op.record_id) for k in rows.natural_keys(form, op.fields)} <= held
            assert op.record_id in people
    finally:
        engine.dispose()


@contextmanager
def _executed(engine: Engine) -> Iterator[list[Any]]:
    """The statement objects executed on ``engine`` inside the block."""
    seen: list[Any] = []

    def note(_conn: Any, statement: Any, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_execute", note)


def test_the_credential_exchange_inserts_its_token_with_one_statement(db_url: str) -> None:
    """Each exchange runs the same prebuilt INSERT (a statement built per call had its cache
    key computed every time), and the token it answers works."""
    engine = _fresh(db_url)
    try:
        admin.put_user(engine, WORKER.username, "pw-pw-pw-pw", "worker", grids=[GRID_A])
        secret = auth.server_secret(engine, "test-secret")
        credential, _until = auth.issue_refresh(engine, secret, WORKER.username, "dev-1")
        with _executed(engine) as seen:
            first = auth.refresh(engine, secret, credential, "dev-1")
            second = auth.refresh(engine, secret, credential, "dev-1")
        inserts = [s for s in seen if getattr(s, "table", None) is db.tokens]
        assert inserts == [auth.INSERT_TOKEN, auth.INSERT_TOKEN]
        for token, _expires, _user, _renewed in (first, second):
            assert auth.authenticate(engine, secret, token, "dev-1").username == WORKER.username
    finally:
        engine.dispose()


def test_a_push_settles_its_numbers_with_one_statement(db_url: str, formset: FormSet) -> None:
    """PostgreSQL: every push deletes its in-flight numbers row with the same prebuilt
    DELETE, and the row is gone after it."""
    engine = _fresh(db_url)
    try:
        if engine.dialect.name != "postgresql":
            pytest.skip("SQLite takes its numbers inside the transaction")
        service = Service(engine, formset)
        with _executed(engine) as seen:
            for start in (0, 5):
                _push(service, resident_creates(5, "dev", dt.date(1972, 1, 1), start))
        settles = [s for s in seen if getattr(s, "table", None) is db.inflight_numbers]
        assert settles == [numbering._SETTLE, numbering._SETTLE]
        with engine.connect() as conn:
            assert conn.execute(db.inflight_numbers.select()).first() is None
    finally:
        engine.dispose()


_OPS = st.builds(
    p.Op.model_construct,
    op_id=st.text(min_size=1, max_size=8),
    record_id=st.text(min_size=1, max_size=8),
    form=st.sampled_from(["resident", "house"]),
    kind=st.sampled_from(["create", "update", "delete", "resolve"]),
    base_version=st.one_of(st.none(), st.integers(0, 9)),
    fields=st.dictionaries(
        st.text(max_size=6),
        st.recursive(
            _VALUES,
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
            max_leaves=5,
        ),
        max_size=5,
    ),
    edited_at=st.text(max_size=12),
    author=st.text(max_size=4),
)


@settings(max_examples=300, deadline=None)
@given(op=_OPS)
def test_the_op_hash_is_the_hash_of_its_dumped_model(op: p.Op) -> None:
    """The hash read from the op's values is the one of ``model_dump``'s text (stored op logs
    hold hashes made that way)."""
    plain = hashlib.sha256(db.dumps(op.model_dump()).encode("utf-8")).hexdigest()
    assert oplog.op_hash(op) == plain


def test_a_push_hashes_its_ops_without_dumping_them(
    db_url: str, formset: FormSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check hashes each op once from its values, and the apply reuses the hash: no
    ``model_dump`` copy of any op on the way."""
    engine = _fresh(db_url)
    try:
        service = Service(engine, formset)
        ops = resident_creates(10, "dev", dt.date(1973, 1, 1))
        want = [oplog.op_hash(op) for op in ops]

        def refused(*_args: Any, **_kwargs: Any) -> Any:
            raise AssertionError("an op was dumped")

        monkeypatch.setattr(p.Op, "model_dump", refused)
        assert {r["status"] for r in _push(service, ops)} == {"applied"}
        with engine.connect() as conn:
            logged = dict(conn.execute(select(db.ops.c.op_id, db.ops.c.op_hash)).all())
        assert [logged[op.op_id] for op in ops] == want
    finally:
        engine.dispose()
