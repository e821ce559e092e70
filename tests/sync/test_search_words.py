"""The search index's words and new records: a push only notes its new records, a search of
their scope gives them their terms and expands their words, and a search reads only its scope's
words (SQLite and PostgreSQL, the real server over HTTP)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, select

from app.core.forms import FormSet
from app.core.ids import uuid7
from sync.server import admin, db, termrows, terms
from sync.server.cli import main as cli_main
from sync.server.console import queries
from tests.bench.common import resident_rows, write_csv
from tests.factories import resident
from tests.sync.conftest import GRID_A, GRID_C, Platform, statements_run
from tests.sync.test_console_search import _users

SEQ = itertools.count(101, 2)  # distinct ID numbers: no push merges into another record


def _push(platform: Platform, username: str, grid: str, people: list[dict[str, Any]]) -> None:
    client = platform.client(username)
    ops = [
        client.op(
            uuid7(), "create", {**resident(grid=grid, seq=next(SEQ), **p), "_status": "complete"}
        )
        for p in people
    ]
    assert {r["status"] for r in client.push(ops)} == {"applied"}


def _table(platform: Platform, table: Any) -> set[tuple[str, ...]]:
    with platform.engine.connect() as conn:
        return {tuple(r) for r in conn.execute(select(table))}


def _words_of(platform: Platform, grid: str) -> set[tuple[str, str, str]]:
    """What ``search_words`` must hold for the words ``grid``'s records hold."""
    held = {k for k, g, _rid in _table(platform, db.record_terms) if g == grid and terms.is_word(k)}
    return {(grid, t, w) for w in held for t in terms.word_terms(w)}


def test_a_push_notes_its_records_and_a_search_of_their_scope_gives_them_terms(
    platform: Platform, formset: FormSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A push writes neither terms nor words of the records it creates, only a pending row
    each (revision 0018); a search of a scope holding the grid gives them their terms and
    their words' terms, and leaves other grids' pending records and words for later."""
    monkeypatch.setattr(termrows, "EXPAND", 2)  # a backlog goes in several transactions
    _push(platform, "wang", GRID_A, [{"name": "张三"}, {"name": "曾小明"}])
    _push(platform, "zhao", GRID_C, [{"name": "张三", "residence_address": "和平街9号"}])
    assert _table(platform, db.record_terms) == set()  # the pushes wrote no terms
    assert _table(platform, db.search_words) == set() and _table(platform, db.new_words) == set()
    pending = _table(platform, db.pending_terms)
    assert sorted(g for g, _rid in pending) == [GRID_A, GRID_A, GRID_C]
    users = {u.username: u for u in _users(platform)}

    found = queries.search(platform.engine, formset, users["chen"], "zs")  # community 1: A, B
    assert [r["grid"] for r in found] == [GRID_A]
    assert _table(platform, db.search_words) == _words_of(platform, GRID_A)
    assert {g for g, _rid in _table(platform, db.pending_terms)} == {GRID_C}  # not chen's
    assert _table(platform, db.new_words) == set()

    assert queries.search(platform.engine, formset, users["zhao"], "0000") == []  # a tail
    assert _table(platform, db.pending_terms) == set()  # a tail search needs the terms too
    assert {g for g, _w in _table(platform, db.new_words)} == {GRID_C}  # but no words

    found = queries.search(platform.engine, formset, users["root"], "zs")
    assert sorted(r["grid"] for r in found) == [GRID_A, GRID_C]
    assert _table(platform, db.new_words) == set()
    everything = _words_of(platform, GRID_A) | _words_of(platform, GRID_C)
    assert _table(platform, db.search_words) == everything

    _push(platform, "wang", GRID_A, [{"name": "张三"}])  # a word the grid has: no new terms
    assert queries.search(platform.engine, formset, users["wang"], "zs")
    assert _table(platform, db.search_words) == everything
    assert _table(platform, db.new_words) == set() and _table(platform, db.pending_terms) == set()


def test_a_search_reads_no_words_outside_its_scope(platform: Platform, formset: FormSet) -> None:
    """A supervisor's search whose words all live in another community's grid reads none of
    them (before words were kept per grid, it read every one before answering "none")."""
    elsewhere = [{"residence_address": f"和平社区白鹭公寓{n}幢{n}室"} for n in range(40)]
    _push(platform, "zhao", GRID_C, elsewhere)
    _push(platform, "wang", GRID_A, [{"residence_address": "幸福路1号"}])
    users = {u.username: u for u in _users(platform)}
    assert len(queries.search(platform.engine, formset, users["root"], "白鹭公寓")) == 40
    with statements_run(platform.engine) as seen:
        assert queries.search(platform.engine, formset, users["chen"], "白鹭公寓", limit=2) == []
    assert not [s for s in seen if "record_terms" in s], seen  # no word in scope: no look-up
    assert len([s for s in seen if "search_words" in s]) == 2, seen  # names, addresses: empty


def test_a_push_of_new_records_writes_one_pending_row_each_and_no_terms(
    platform: Platform, formset: FormSet
) -> None:
    """A nightly push of 50 new residents wrote ~200 ``record_terms`` rows (random b-tree
    insertions, the push's largest write: 3.5 of ~13.5 ms of PostgreSQL's CPU a push on a
    200 k-record platform, with the words' notes) and noted their words; now one statement
    of 50 pending rows. The first search of the grid then holds exactly the terms the write
    path made before: those of ``terms.record_keys`` for each record. (The rows go by COPY
    on PostgreSQL, which the statement hook does not see: the tables are checked.)"""
    client = platform.client("wang")
    people = [resident(grid=GRID_A, seq=next(SEQ), name=f"王{chr(0x4E00 + n)}") for n in range(50)]
    ops = [client.op(uuid7(), "create", {**p, "_status": "draft"}) for p in people]
    seen: list[tuple[str, bool]] = []

    def note(_c: Any, _cur: Any, statement: str, _p: Any, _ctx: Any, many: bool) -> None:
        seen.append((statement, many))

    event.listen(platform.engine, "before_cursor_execute", note)
    try:
        assert {r["status"] for r in client.push(ops)} == {"applied"}
    finally:
        event.remove(platform.engine, "before_cursor_execute", note)
    assert not [s for s, _many in seen if "record_terms" in s or "new_words" in s], seen
    assert _table(platform, db.record_terms) == set() and _table(platform, db.new_words) == set()
    assert {(g, rid) for g, rid in _table(platform, db.pending_terms)} == {
        (GRID_A, op["record_id"]) for op in ops
    }
    users = {u.username: u for u in _users(platform)}
    assert queries.search(platform.engine, formset, users["wang"], "王")
    form = formset.form("resident")
    with platform.engine.connect() as conn:
        rows = conn.execute(select(db.records.c.id, db.records.c.title, db.records.c.data))
        expected = {
            (k, GRID_A, r.id)
            for r in rows
            for k in terms.record_keys(form, db.loads(r.data) or {}, r.title)
        }
    assert _table(platform, db.record_terms) == expected
    names = {(g, w) for g, w in _table(platform, db.new_words) if w.startswith(terms.NAME)}
    assert not names  # noted and expanded by the search
    assert len({w for _g, _t, w in _table(platform, db.search_words)}) >= 50


_TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(rows=st.lists(st.tuples(_TEXT, _TEXT), max_size=700))
def test_insert_rows_stores_exactly_the_rows_given(
    db_url: str, rows: list[tuple[str, str]]
) -> None:
    """``termrows.insert_rows`` (PostgreSQL: one statement of arrays; SQLite: chunks of multi-row
    VALUES) against the plain one-row-at-a-time INSERT it stands for: the same rows stored,
    duplicates skipped by the conflict clause, whatever the text."""
    engine = db.make_engine(db_url)
    pg = engine.dialect.name == "postgresql"
    head, tail = (
        ("INSERT INTO ", " ON CONFLICT DO NOTHING") if pg else ("INSERT OR IGNORE INTO ", "")
    )
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS rows_test")
            conn.exec_driver_sql("CREATE TABLE rows_test (a TEXT, b TEXT, PRIMARY KEY (a, b))")
            termrows.insert_rows(conn, head + "rows_test (a, b)", rows, tail)
            stored = sorted(tuple(r) for r in conn.exec_driver_sql("SELECT a, b FROM rows_test"))
            conn.exec_driver_sql("DROP TABLE rows_test")
    finally:
        engine.dispose()
    assert stored == sorted(set(rows))


def _exact_terms(platform: Platform, formset: FormSet) -> set[tuple[str, str, str]]:
    """The plain rule: every record's terms as the write path kept them before revision 0018
    (``terms.record_keys`` of its current values, in its current grid)."""
    r = db.records.c
    with platform.engine.connect() as conn:
        rows = conn.execute(select(r.id, r.form, r.grid, r.title, r.data)).all()
    return {
        (k, row.grid or "", row.id)
        for row in rows
        for k in terms.record_keys(formset.form(row.form), db.loads(row.data) or {}, row.title)
    }


STEP = st.one_of(
    st.tuples(st.just("create"), st.sampled_from(["张三", "曾小明", "李四"]), st.integers(0, 1)),
    st.tuples(st.just("name"), st.sampled_from(["张三", "王五", "欧阳娜娜"]), st.integers(0, 9)),
    st.tuples(st.just("move"), st.integers(0, 1), st.integers(0, 9)),
    st.tuples(st.just("delete"), st.just(""), st.integers(0, 9)),
    st.tuples(st.just("index"), st.just(""), st.integers(0, 1)),
)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(STEP, min_size=1, max_size=8))
def test_pending_records_get_exactly_the_terms_the_write_path_kept(
    platform: Platform, formset: FormSet, steps: list[tuple[str, Any, int]]
) -> None:
    """Records created, renamed, moved between grids and deleted, with the index brought up
    to date (a search) at random points in between: once every pending record is indexed,
    ``record_terms`` holds exactly each record's terms by the plain rule, no stale row of an
    earlier name or grid and none missing (a write to a pending record removes rows that are
    not there yet and leaves out terms its old values shared)."""
    client = platform.client("root")
    grids = [GRID_A, GRID_C]
    made: list[tuple[str, int]] = []  # record id, version
    for kind, value, n in steps:
        if kind == "create":
            rid = uuid7()
            person = resident(grid=grids[n], seq=next(SEQ), name=value)
            (res,) = client.push([client.op(rid, "create", {**person, "_status": "complete"})])
            assert res["status"] == "applied", res
            made.append((rid, res["version"]))
        elif kind == "index":
            termrows.index_pending(platform.engine, formset, None if n else [GRID_A])
        elif made:
            i = n % len(made)
            rid, version = made[i]
            if kind == "delete":
                op = client.op(rid, "delete", {}, version)
            else:
                fields = {"name": value} if kind == "name" else {"grid": grids[value]}
                op = client.op(rid, "update", fields, version)
            (res,) = client.push([op])
            made[i] = (rid, res.get("version") or version)
    termrows.index_pending(platform.engine, formset, None)
    assert _table(platform, db.pending_terms) == set()
    assert _table(platform, db.record_terms) == _exact_terms(platform, formset)


def test_load_base_leaves_no_record_waiting_for_its_terms(
    platform: Platform, formset: FormSet, tmp_path: Path
) -> None:
    """``load-base`` creates records through the push path, which only notes them as pending:
    the load gives them their terms at its end (sorted batches), so the first search after a
    city's load does not index a street office."""
    csv = tmp_path / "base.csv"
    write_csv(csv, resident_rows(30, seed=5))
    report = admin.load_base(platform.app.state.service, "resident", csv)
    assert report.created == 30
    assert _table(platform, db.pending_terms) == set()
    exact = _exact_terms(platform, formset)
    assert len({rid for _k, _g, rid in exact}) == 30
    assert _table(platform, db.record_terms) == exact


def test_pending_records_and_words_are_read_and_indexed_a_part_at_a_time(
    platform: Platform, formset: FormSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``index_pending`` and ``expand`` hold one part of the pending records or noted words at
    a time (``EXPAND``), for all grids and for a search's grids alike: reading them all at
    once held 1.63 M ids (~330 MB) at the end of a city's ``load-base``. Every part is
    indexed, none twice."""
    monkeypatch.setattr(termrows, "EXPAND", 4)
    _push(platform, "wang", GRID_A, [{"name": f"甲{n}"} for n in range(9)])
    _push(platform, "zhao", GRID_C, [{"name": f"乙{n}"} for n in range(6)])
    read, parts = [], []
    pending, index_part = termrows._next_part, termrows._index_part
    monkeypatch.setattr(termrows, "_next_part", lambda *a: read.append(len(r := pending(*a))) or r)
    monkeypatch.setattr(
        termrows, "_index_part", lambda e, f, p: parts.append(p) or index_part(e, f, p)
    )
    assert termrows.index_pending(platform.engine, formset, [GRID_A]) == 9
    assert {g for g, _rid in _table(platform, db.pending_terms)} == {GRID_C}
    assert termrows.index_pending(platform.engine, formset, None) == 6
    assert max(read) <= 4 and [len(p) for p in parts] == [4, 4, 1, 4, 2]
    assert len({record for part in parts for record in part}) == 15
    assert _table(platform, db.pending_terms) == set()
    assert _table(platform, db.record_terms) == _exact_terms(platform, formset)
    noted = _table(platform, db.new_words)
    read.clear()
    assert termrows.expand(platform.engine, [GRID_C]) == sum(g == GRID_C for g, _w in noted)
    assert termrows.expand(platform.engine, None) == sum(g == GRID_A for g, _w in noted)
    assert len(noted) > 8 and max(read) <= 4 and len(read) >= len(noted) / 4
    assert _table(platform, db.new_words) == set()
    everything = _words_of(platform, GRID_A) | _words_of(platform, GRID_C)
    assert _table(platform, db.search_words) == everything


def test_index_search_gives_a_nights_records_their_terms_before_any_search(
    platform: Platform, formset: FormSet, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``server-admin index-search`` (cron, after the sync window): the night's pending records
    get their terms and their words theirs, so the morning's first search waits for nothing."""
    _push(platform, "wang", GRID_A, [{"name": "张三"}, {"name": "曾小明"}])
    _push(platform, "zhao", GRID_C, [{"name": "李四"}])
    assert len(_table(platform, db.pending_terms)) == 3
    assert cli_main(["server-admin", "--db", db_url, "index-search"]) == 0
    assert "3 records" in capsys.readouterr().out
    assert _table(platform, db.pending_terms) == set() and _table(platform, db.new_words) == set()
    assert _table(platform, db.record_terms) == _exact_terms(platform, formset)
    everything = _words_of(platform, GRID_A) | _words_of(platform, GRID_C)
    assert _table(platform, db.search_words) == everything


class _Deadlock(Exception):
    """What psycopg raises when PostgreSQL breaks a deadlock (SQLSTATE 40P01)."""

    sqlstate = "40P01"


def test_a_search_that_meets_a_push_in_a_deadlock_indexes_its_records_anyway(
    platform: Platform, formset: FormSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The indexing a search runs locks pending records as a push does; a push that locks more
    records part-way through can meet it in another order, and PostgreSQL breaks the deadlock
    by failing one side. The indexing transaction runs again: the supervisor's search answers
    and the records get their terms."""
    _push(platform, "wang", GRID_A, [{"name": "张三"}, {"name": "曾小明"}])
    real, failed = termrows._terms_of, []

    def once(*args: Any) -> Any:
        if not failed:
            failed.append(True)
            raise _Deadlock("deadlock detected")
        return real(*args)

    monkeypatch.setattr(termrows, "_terms_of", once)
    users = {u.username: u for u in _users(platform)}
    assert queries.search(platform.engine, formset, users["wang"], "张三")
    assert failed and _table(platform, db.pending_terms) == set()
    assert _table(platform, db.record_terms) == _exact_terms(platform, formset)
