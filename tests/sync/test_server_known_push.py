"""A push of residents the platform already knows (issue 17: it was half as fast as a push of
new ones): every create merges into the platform's record by natural key and leaves an alias.
The chunk's aliases go in with its other rows, one statement, not one INSERT per op."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from app.core.forms import FormSet
from sync import protocol as p
from sync.server import db
from sync.server.service import Service
from tests.sync.conftest import resident_creates, statements_run
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
    12-14 s instead of 6-8 (a known-resident push: 21-31 s instead of 5-7). Unprepared, each
    query is planned with its own values (and PgBouncer in transaction mode can stand in front)."""
    engine = _fresh(pg_database)
    service = Service(engine, formset)
    for n in range(8):  # more runs of the same queries than psycopg's threshold (5)
        service.apply(WORKER, "first", _creates(20, f"first{n}"))
    with engine.connect() as conn:
        prepared = conn.exec_driver_sql("SELECT count(*) FROM pg_prepared_statements").scalar()
    assert prepared == 0
