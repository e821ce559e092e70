"""The server CPU of a nightly push of new residents (issue 19): work a push skips because it
cannot find anything, each checked against the plain way it replaces."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, text
from uvicorn.logging import AccessFormatter as UvicornAccessFormatter

from app.core.forms import FormSet
from sync import protocol as p
from sync.merge import Stamp
from sync.server import accesslog, cli, db, scopes
from sync.server.rows import grouped_stamps_text, stamps_of, stamps_text
from sync.server.service import Service
from sync.server.tx import Tx
from tests.sync.conftest import GRID_A, resident_creates, statements_run
from tests.sync.test_server_batch import KEY_HANDOVER, NUMBERS, WORKER, _fresh, _op, _run, op_lists

BIRTH = dt.date(1961, 3, 9)


def test_new_residents_meet_their_look_alikes_without_reading_reviews(
    db_url: str, formset: FormSet
) -> None:
    """A create of a new record whose person the platform holds already opens its review items
    without asking whether the pair was reviewed: no review row can name a record this
    transaction found missing (the property test below checks the answers against the
    plain way)."""
    engine = _fresh(db_url)
    try:
        service = Service(engine, formset)
        service.apply(WORKER, "dev", _born_alike(resident_creates(3, "dev", BIRTH, seq=11)))
        new = _born_alike(resident_creates(2, "dev", BIRTH, start=10, seq=13))
        with statements_run(engine) as statements:
            results = service.apply(WORKER, "dev", new)
        assert [r["status"] for r in results] == ["applied"] * 2
        assert not [
            s for s in statements if s.lstrip().upper().startswith("SELECT") and "reviews" in s
        ]
        with engine.connect() as conn:
            pairs = conn.execute(text("SELECT record_id, other_id FROM reviews")).all()
        ids = {o.record_id for o in new}
        mine = [pair for pair in pairs if pair[0] in ids]
        assert (
            len(mine) == len(set(mine)) == 2 * 3 + 1
        )  # each new one: the 3 known, then each other
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_reviews_opened_without_the_pair_query_are_the_plain_ones(
    backend: str, request: pytest.FixtureRequest, tmp_path: Any, formset: FormSet
) -> None:
    """Random pushes (look-alikes, merges by key, replays) open the same review items whether
    ``Tx.pair_known`` spares the pair query or every pair is asked for (the plain way)."""
    url = f"sqlite:///{tmp_path / 'r.db'}" if backend == "sqlite" else None
    url = url or request.getfixturevalue("pg_database")

    @settings(
        max_examples=40 if backend == "sqlite" else 12,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(setup=op_lists(), ops=op_lists())
    @example(setup=[_op(0, "create", NUMBERS[0])], ops=KEY_HANDOVER)
    def check(setup: list[p.Op], ops: list[p.Op]) -> None:
        setup = [o.model_copy(update={"op_id": "pre" + o.op_id}) for o in setup]
        lean = _run(url, formset, setup, ops, batched=True)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(Tx, "pair_known", lambda _self, _a, _b: None)
            plain = _run(url, formset, setup, ops, batched=True)
        assert lean == plain

    check()


def _born_alike(ops: list[p.Op]) -> list[p.Op]:
    """The ops' residents (all 张三) born on one day: each may be the same as the others."""
    same = BIRTH.isoformat()
    return [o.model_copy(update={"fields": {**o.fields, "birth_date": same}}) for o in ops]


def test_the_reads_of_a_pull_are_built_once(db_url: str, formset: FormSet) -> None:
    """A page whose range holds a grid change and a scope grant reads them with statements
    built once, page after page (built per call, each was coerced, compiled and cache-keyed
    again: ~5 % of a city night's server CPU)."""
    engine = _fresh(db_url)
    seen: list[list[Any]] = []

    def note(_conn: Any, clause: Any, *_args: Any) -> None:
        if getattr(clause, "is_select", False):
            seen[-1].append(clause)

    try:
        with db.write(engine) as conn:
            scopes.grant_user(conn, WORKER.username, [GRID_A])
        service = Service(engine, formset)
        event.listen(engine, "before_execute", note)
        try:
            for _ in range(2):
                seen.append([])
                page = service.pull(WORKER, 0, 100)
                assert [g["code"] for g in page["grids"]] == [GRID_A]
        finally:
            event.remove(engine, "before_execute", note)
        mine = [[c for c in page if _first_table(c) in ("grids", "scope_grants")] for page in seen]
        assert sorted(_first_table(c) for c in mine[0]) == ["grids", "scope_grants"]
        assert [id(c) for c in mine[0]] == [id(c) for c in mine[1]]
    finally:
        engine.dispose()


def _first_table(clause: Any) -> str:
    return str(clause).split("FROM", 1)[1].split()[0]


@given(
    names=st.lists(st.text(min_size=1, max_size=6), min_size=0, max_size=12, unique=True),
    shared=st.booleans(),
    at=st.sampled_from(["2026-12-06T10:00:00.000Z#0000", "2026-12-06T10:00:01.000Z#0001"]),
    device=st.sampled_from(["dev-1", "dev-2"]),
)
def test_one_stamp_for_all_fields_is_written_as_the_grouping_writes_it(
    names: list[str], shared: bool, at: str, device: str
) -> None:
    """``stamps_text`` of a create (one ``Stamp`` object on every field) and of any other
    stamps equals the field-by-field grouping it skips."""
    one = Stamp(at, device)
    stamps = {n: one if shared else Stamp(at, device) for n in names}
    assert stamps_text(stamps) == grouped_stamps_text(stamps)
    assert stamps_of(stamps_text(stamps)) == stamps


@given(
    client=st.sampled_from(["127.0.0.1:5000", "[::1]:80", "", "10.0.0.7:61234"]),
    method=st.sampled_from(["GET", "POST", "PUT"]),
    path=st.text(max_size=40),
    version=st.sampled_from(["1.1", "1.0", "2"]),
    status=st.integers(100, 999),
    level=st.sampled_from([logging.INFO, logging.WARNING, logging.CRITICAL, 5]),
    colours=st.booleans(),
)
def test_the_access_line_is_uvicorns(
    client: str, method: str, path: str, version: str, status: int, level: int, colours: bool
) -> None:
    """``accesslog.AccessFormatter`` writes what uvicorn's writes, colours or not, but for the
    query's values (left out: ``accesslog.redacted``); the record itself is left as it was."""
    args = (client, method, path, version, status)
    record = logging.LogRecord(
        "uvicorn.access", level, __file__, 1, '%s - "%s %s HTTP/%s" %d', args, None
    )
    shown = accesslog.redacted(path) if "?" in path else path
    ours = accesslog.AccessFormatter(accesslog.FORMAT, use_colors=colours)
    theirs = UvicornAccessFormatter(accesslog.FORMAT, use_colors=colours)
    expected = logging.makeLogRecord({**record.__dict__, "args": (*args[:2], shown, *args[3:])})
    assert ours.format(record) == theirs.format(expected)
    assert record.args == args


@pytest.mark.parametrize(
    ("path", "shown"),
    [
        ("/console/records?q=330106198501011234", "/console/records?q=*"),
        ("/v1/pull?since=12&limit=500", "/v1/pull?since=*&limit=*"),
        ("/console/records?13800138000", "/console/records?*"),
        ("/console/records?q", "/console/records?q"),
        ("/x?", "/x?"),
    ],
)
def test_the_access_line_leaves_the_querys_values_out(path: str, shown: str) -> None:
    """What was searched (an ID number, a phone, a name) never reaches the access log."""
    assert accesslog.redacted(path) == shown


def test_the_server_writes_its_access_lines_with_the_cheaper_formatter() -> None:
    """``gridcollect server``'s logging (``cli.log_config``) formats access lines with
    ``accesslog.AccessFormatter``, the rest as uvicorn does."""
    config = cli.log_config()
    assert config["formatters"]["access"]["()"] == "sync.server.accesslog.AccessFormatter"
    assert config["formatters"]["access"]["fmt"] == accesslog.FORMAT
    assert config["formatters"]["default"]["()"] == "uvicorn.logging.DefaultFormatter"


def test_a_chunks_ops_look_keys_and_people_up_in_what_it_prefetched(
    db_url: str, formset: FormSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """50 new residents who look like people the platform holds: the chunk prefetches their
    keys and people once, and no op asks the prefetch again (each call per op rebuilt its
    wanted set and chunks for nothing: ~1 % of a city night's server CPU)."""
    engine = _fresh(db_url)
    calls = {"prefetch_keys": 0, "prefetch_people": 0}
    for name in calls:
        real = getattr(Tx, name)

        def counted(self: Tx, *args: Any, _name: str = name, _real: Any = real) -> Any:
            calls[_name] += 1
            return _real(self, *args)

        monkeypatch.setattr(Tx, name, counted)
    try:
        service = Service(engine, formset)
        service.apply(WORKER, "dev", _born_alike(resident_creates(3, "dev", BIRTH, seq=11)))
        calls.update(dict.fromkeys(calls, 0))
        new = _born_alike(resident_creates(50, "dev", BIRTH, start=10, seq=13))
        assert {r["status"] for r in service.apply(WORKER, "dev", new)} == {"applied"}
        assert calls == {"prefetch_keys": 1, "prefetch_people": 1}
    finally:
        engine.dispose()
