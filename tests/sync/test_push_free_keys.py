"""A push of new records skips work whose answer is known (issue 17: server CPU per pushed op):
natural keys nobody holds or claims are not looked up again per op (``Tx.key_free``), and a new
record's search keys are not worked out (``Tx.put_new_terms``: it is only noted as pending).
Each is checked against the plain way, answers and stored rows alike, on both backends."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings

from app.core.forms import FormSet
from sync import protocol as p
from sync.server import admin, claims, records, terms
from sync.server.auth import User
from sync.server.service import Service
from sync.server.tx import Tx
from tests.sync.conftest import GRID_A, GRID_B, resident_creates
from tests.sync.test_server_batch import (
    KEPT,
    KEY_HANDOVER,
    NUMBERS,
    WORKER,
    _fresh,
    _op,
    _state,
    op_lists,
)

OTHER = User("li", "worker", None, frozenset({GRID_B}))  # holds keys outside WORKER's scope
TABLES = {
    **KEPT,
    "record_claims": ("form", "key", "record_id"),
    "pending_terms": ("grid", "record_id"),
}


def _in_grid_b(ops: list[p.Op]) -> list[p.Op]:
    """The ops as the other grid's worker pushes them (their records live in ``GRID_B``)."""
    out = []
    for op in ops:
        fields = {**op.fields, "grid": GRID_B} if "grid" in op.fields else op.fields
        out.append(op.model_copy(update={"op_id": "b" + op.op_id, "fields": fields}))
    return out


def _run(url: str, formset: FormSet, mine: list[p.Op], theirs: list[p.Op], ops: list[p.Op]) -> Any:
    engine = _fresh(url)
    try:
        admin.put_grid(engine, GRID_B, "二网格", "330106001")
        service = Service(engine, formset)
        service.apply(WORKER, "other-device", mine)
        service.apply(OTHER, "their-device", theirs)
        return service.apply(WORKER, "dev", ops), _state(engine, TABLES)
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_free_keys_answer_as_the_plain_look_ups(
    backend: str, request: pytest.FixtureRequest, tmp_path: Any, formset: FormSet
) -> None:
    """Random pushes over a few ID numbers, some held in the caller's grid and some in another
    (duplicate keys, merges by key, transfer claims, key hand-overs, replays): the same answers
    and stored rows whether ``Tx.key_free`` spares the look-ups or every key is looked up."""
    url = f"sqlite:///{tmp_path / 'k.db'}" if backend == "sqlite" else None
    url = url or request.getfixturevalue("pg_database")

    @settings(
        max_examples=40 if backend == "sqlite" else 12,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(mine=op_lists(), theirs=op_lists(), ops=op_lists())
    @example(mine=[], theirs=[_op(0, "create", NUMBERS[0])], ops=KEY_HANDOVER)
    @example(mine=[_op(0, "create", NUMBERS[0])], theirs=[], ops=KEY_HANDOVER)
    def check(mine: list[p.Op], theirs: list[p.Op], ops: list[p.Op]) -> None:
        mine = [o.model_copy(update={"op_id": "pre" + o.op_id}) for o in mine]
        # their records are others than the caller's (record ids are unique platform-wide)
        theirs = [o.model_copy(update={"record_id": o.record_id[:-4] + "beef"}) for o in theirs]
        lean = _run(url, formset, mine, _in_grid_b(theirs), ops)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(Tx, "key_free", lambda _self, _form, _key: False)
            plain = _run(url, formset, mine, _in_grid_b(theirs), ops)
        assert lean == plain

    check()


@contextmanager
def _counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """Calls of the look-ups a free key spares and of the search keys' maker."""
    calls = {"key_owner": 0, "claimants": 0, "record_keys": 0}
    for owner, name in ((Tx, "key_owner"), (Tx, "claimants"), (terms, "record_keys")):
        plain = getattr(owner, name)

        def counted(*args: Any, _plain: Any = plain, _name: str = name, **kw: Any) -> Any:
            calls[_name] += 1
            return _plain(*args, **kw)

        monkeypatch.setattr(owner, name, counted)
    yield calls


def test_a_push_of_new_residents_looks_up_no_free_key_per_op(
    db_url: str, formset: FormSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """20 new residents with ID numbers nobody holds: no key is looked up again per op (each
    was looked up four times: owner and claims for the merge, owner and claims for the write)
    and no search keys are worked out (each was, for a pending row that does not hold them);
    what is stored holds their keys and their pending search terms."""
    engine = _fresh(db_url)
    try:
        service = Service(engine, formset)
        ops = resident_creates(20, "dev", dt.date(1972, 2, 2))
        with _counted(monkeypatch) as calls:
            results = service.apply(WORKER, "dev", ops)
        assert {r["status"] for r in results} == {"applied"}
        # the chunk's prefetch knows each create's key is free (``key_free``) without asking
        # for its owner (it asked once per create whether its key is held: 20)
        assert calls == {"key_owner": 0, "claimants": 0, "record_keys": 0}
        form = formset.form("resident")
        state = _state(engine, TABLES)
        held = {(k, r) for _f, k, r in state["record_keys"]}
        for op in ops:
            assert {(k, op.record_id) for k in records.natural_keys(form, op.fields)} <= held
        assert state["pending_terms"] == sorted((GRID_A, op.record_id) for op in ops)
    finally:
        engine.dispose()


def test_key_parties_of_a_free_key_find_nobody(formset: FormSet) -> None:
    """The fast answer is the plain one's: a key with no holder and no claimant."""
    tx = Tx(conn=None)  # type: ignore[arg-type]  # everything it reads is prefetched below
    tx._key_db[("resident", "k")] = None
    tx._claims_db[("resident", "k")] = []
    assert tx.key_free("resident", "k")
    ctx: Any = type("C", (), {"user": WORKER})()
    form = formset.form("resident")
    assert claims.key_parties(tx, ctx, form, "k", exclude=None) == (None, None)
    tx._claims_tx[("resident", "k")] = {"x"}
    assert not tx.key_free("resident", "k")
