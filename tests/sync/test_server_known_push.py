"""A push of residents the platform already knows (issue 17: it was half as fast as a push of
new ones): every create merges into the platform's record by natural key and leaves an alias.
The chunk's aliases go in with their change numbers, one statement, not one INSERT per op; a
create that echoes the held values changes nothing else (``merge.unchanged``)."""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path
from typing import Any
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.forms import FormSet
from sync import protocol as p
from sync.merge import merge_fields
from sync.server import db, records, rows
from sync.server.service import Service
from tests.factories import resident
from tests.sync.conftest import GRID_A, resident_creates, statements_run
from tests.sync.test_server_batch import WORKER, _fresh


def _creates(count: int, device: str) -> list[p.Op]:
    return resident_creates(count, device, dt.date(1960, 1, 1))


def test_a_known_push_writes_its_aliases_in_one_statement(tmp_path: Path, formset: FormSet) -> None:
    engine = _fresh(f"sqlite:///{tmp_path / 'platform.db'}")
    service = Service(engine, formset)
    service.apply(WORKER, "first", _creates(200, "first"))
    again = _creates(200, "second")  # the same people typed on another device
    with statements_run(engine) as statements:
        results = service.apply(WORKER, "second", again)
    assert {r["status"] for r in results} == {"merged_into"}
    alias_writes = [s for s in statements if s.lstrip().upper().startswith("INSERT INTO ALIASES")]
    assert len(alias_writes) == 1
    # written with their change numbers: no second statement to number them
    assert not [s for s in statements if s.lstrip().upper().startswith("UPDATE ALIASES")]
    with db.read(engine) as conn:
        count = conn.execute(db.aliases.select()).fetchall()
    assert {(a.old_id, a.reason) for a in count} == {(op.record_id, "natural_key") for op in again}
    assert all(a.seq > 0 for a in count)  # numbered with the chunk's other changes


def test_a_known_push_does_not_look_for_people_it_merges_into(
    tmp_path: Path, formset: FormSet
) -> None:
    """Each create of a known resident merges into the record holding its ID number: reading
    the people index for its person (13 % of a known push's server time) would only find
    that record. A create whose merge changes the person still gets its duplicate review."""
    engine = _fresh(f"sqlite:///{tmp_path / 'platform.db'}")
    service = Service(engine, formset)
    service.apply(WORKER, "first", _creates(200, "first"))
    with statements_run(engine) as statements:
        results = service.apply(WORKER, "second", _creates(200, "second"))
    assert {r["status"] for r in results} == {"merged_into"}
    assert not [s for s in statements if "FROM people" in s]
    # the same people with their names changed on a third device (later edits win): the
    # merge changes each person, and each change is looked up and reviewed as before
    renamed = _creates(3, "third")
    for op in renamed:
        op.fields["name"] = "欧阳" + str(op.fields["name"])[-1]
    results = service.apply(WORKER, "third", renamed)
    assert {r["status"] for r in results} == {"merged_into"}


def test_postgresql_plans_each_prefetch_with_its_values(pg_database: str, formset: FormSet) -> None:
    """psycopg prepared a query after its fifth run, and PostgreSQL then kept a generic plan
    made on the statistics of a fresh database: the push's prefetches (natural keys, op ids,
    this device's versions) scanned their tables, and a 10 k push into a fresh platform took
    12-14 s instead of 6-8 (a known-resident push: 21-31 s instead of 5-7). Only statements
    whose generic plan probes an index even on empty tables are prepared (``db.prepared``):
    the prefetches of run-time arrays are planned with the table as it is at each call."""
    engine = _fresh(pg_database)
    service = Service(engine, formset)
    for n in range(8):  # more runs of the same queries than PostgreSQL's custom plans (5)
        service.apply(WORKER, "first", _creates(20, f"first{n}"))
    with engine.connect() as conn:
        found = conn.exec_driver_sql(
            "SELECT name, statement, cardinality(parameter_types) FROM pg_prepared_statements"
        ).all()
        plans = {
            statement: "\n".join(
                r[0]
                for r in conn.exec_driver_sql(
                    f"EXPLAIN EXECUTE {name}({', '.join(['NULL'] * int(count or 0))})"
                )
            )
            for name, statement, count in found
        }
    assert plans  # the numbering's statements at least
    for statement, plan in plans.items():
        assert "= ANY (CAST((SELECT" not in statement, statement  # arrays: never prepared
        scans = [t for t in _PUSH_TABLES if f"Seq Scan on {t} " in plan + " "]
        assert not scans, (statement, plan)


_PUSH_TABLES = ("records", "record_keys", "record_claims", "people", "ops", "aliases", "tokens")


# -- creates that echo held records: the short cut against the plain merge ----------------

SEEDS = 4
ECHO_KINDS = ["echo", "echo", "status", "phone", "cleared", "name", "new", "again"]


def _seed_ops(statuses: list[str], deleted: list[bool]) -> list[p.Op]:
    """The held residents (created by device "first"), some deleted since."""
    ops = [
        p.Op(
            op_id=f"first:{i}",
            record_id=f"0190a0b0-c0d0-7000-8000-0000000001{i:02d}",
            form="resident",
            kind="create",
            fields={**_person(i), "_status": status},
            edited_at=f"2026-11-30T08:00:{i:02d}.000Z#0000",
            author="w",
        )
        for i, status in enumerate(statuses)
    ]
    ops += [
        op.model_copy(update={"op_id": f"first:d{i}", "kind": "delete", "fields": {}})
        for i, (op, gone) in enumerate(zip(ops, deleted, strict=True))
        if gone
    ]
    return ops


def _person(i: int) -> dict[str, Any]:
    return resident(birth=dt.date(1970, 1, 1) + dt.timedelta(days=i), seq=101 + 2 * i, grid=GRID_A)


@st.composite
def echo_pushes(draw: st.DrawFn) -> tuple[list[p.Op], str, list[p.Op]]:
    """Held residents, then a device's push of creates: echoes of held ones (all values, or
    with the status, phone or name changed, or the phone cleared), new residents and a new
    one again under another id. The device is the one that created them, or another."""
    statuses = draw(st.lists(st.sampled_from(["draft", "complete"]), min_size=1, max_size=SEEDS))
    deleted = draw(st.lists(st.booleans(), min_size=len(statuses), max_size=len(statuses)))
    seed = _seed_ops(statuses, [d and draw(st.integers(0, 3)) == 0 for d in deleted])
    ops: list[p.Op] = []
    for n, kind in enumerate(draw(st.lists(st.sampled_from(ECHO_KINDS), min_size=1, max_size=8))):
        i = draw(st.integers(0, len(statuses) - 1))
        fields: dict[str, Any] = {**_person(i), "_status": statuses[i]}
        if kind == "status":
            fields["_status"] = "draft" if statuses[i] == "complete" else "complete"
        elif kind == "phone":
            fields["phone"] = "13900000000"
        elif kind == "cleared":
            fields["phone"] = ""
        elif kind == "name":
            fields["name"] = "章三"
        elif kind in ("new", "again"):
            fields = {**_person(SEEDS + (n if kind == "new" else 0)), "_status": "draft"}
        ops.append(
            p.Op(
                op_id=f"push:{n}",
                record_id=f"0190a0b0-c0d0-7000-8000-0000000002{n:02d}",
                form="resident",
                kind=draw(st.sampled_from(["create", "create", "update"])),
                fields=fields,
                edited_at=f"2026-11-30T09:00:{n:02d}.000Z#0000",
                author="w",
            )
        )
    return seed, draw(st.sampled_from(["first", "second"])), ops


def _platform_after(
    url: str, formset: FormSet, seed: list[p.Op], device: str, ops: list[p.Op], *, short: bool
) -> tuple[list[dict[str, Any]], dict[str, list[tuple[Any, ...]]]]:
    """The push's answers and every row of every table, with the short cut or without it
    (``unchanged`` answering "may change something" for every op: the plain merge)."""
    plain = mock.patch.multiple(
        "sync.server.service", unchanged=lambda *_a, **_k: None, merge=merge_fields
    )
    engine = _fresh(url)
    try:
        service = Service(engine, formset)
        with mock.patch("sync.server.service.now", return_value=NOW):
            service.apply(WORKER, "first", seed)
            with plain if not short else contextlib.nullcontext():
                results = service.apply(WORKER, device, ops)
        with engine.connect() as conn:
            state = {
                t.name: sorted((tuple(r) for r in conn.execute(t.select())), key=repr)
                for t in db.metadata.sorted_tables
                if t.name != "scope_grants"  # made by ``_fresh`` at its own time
            }
        return results, state
    finally:
        engine.dispose()


NOW = dt.datetime(2026, 11, 30, 10, 0, tzinfo=dt.UTC)


def test_echoes_of_held_records_leave_the_platform_as_the_plain_merge_does(
    formset: FormSet, tmp_path: Path
) -> None:
    """Every answer and every row of every table (records, versions, keys, people, aliases,
    reviews, op log, change numbers) are the same with the short cut as without it."""
    url = f"sqlite:///{tmp_path / 'platform.db'}"

    @settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(pushed=echo_pushes())
    def check(pushed: tuple[list[p.Op], str, list[p.Op]]) -> None:
        seed, device, ops = pushed
        short = _platform_after(url, formset, seed, device, ops, short=True)
        plain = _platform_after(url, formset, seed, device, ops, short=False)
        assert short[0] == plain[0]
        for table, held in plain[1].items():
            assert short[1][table] == held, table

    check()


def test_an_identical_create_of_a_held_record_reads_no_base_and_writes_only_its_alias(
    tmp_path: Path, formset: FormSet
) -> None:
    """The same residents pushed again by the device that created them: the echo needs no
    base (the version this device last wrote, read per record), no stamps and no person, writes no
    record, version, key, people or search row and takes no change number but its alias's."""
    engine = _fresh(f"sqlite:///{tmp_path / 'platform.db'}")
    service = Service(engine, formset)
    first = _creates(20, "first")
    service.apply(WORKER, "dev", first)
    with db.read(engine) as conn:
        top: dict[str, int] = {r.name: r.value for r in conn.execute(db.counters.select())}
        held = conn.execute(db.records.select()).all()
    again = [
        op.model_copy(update={"op_id": f"again:{n}", "record_id": f"0190a0b0-{n:04d}"})
        for n, op in enumerate(first)
    ]
    read = mock.Mock(wraps=rows.stamps_of)
    person = mock.Mock(wraps=records.person_of)
    with (
        statements_run(engine) as statements,
        mock.patch.object(rows, "stamps_of", read),
        mock.patch.object(records, "person_of", person),
    ):
        results = service.apply(WORKER, "dev", again)
    assert [r["status"] for r in results] == ["merged_into"] * 20
    assert read.call_count == 0  # nor are the held records' stamps read
    assert person.call_count == 0  # nor the people they are worked out (pinyin and all)
    assert [r["merged_into"] for r in results] == [op.record_id for op in first]
    assert not [s for s in statements if "FROM record_versions" in s]
    written = {
        s.split()[2].strip('"') for s in statements if s.lstrip().upper().startswith("INSERT")
    }
    assert written == {"ops", "aliases"}
    assert not [s for s in statements if s.lstrip().upper().startswith("UPDATE RECORDS")]
    with db.read(engine) as conn:
        assert conn.execute(db.records.select()).all() == held
        now: dict[str, int] = {r.name: r.value for r in conn.execute(db.counters.select())}
    assert {k: now[k] - top[k] for k in now} == {"seq": 20}  # the aliases' numbers only
