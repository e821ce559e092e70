"""The search index's words: a push only notes them, a search of their scope expands them, and a
search reads only its scope's words (SQLite and PostgreSQL, the real server over HTTP)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, select

from app.core.forms import FormSet
from app.core.ids import uuid7
from sync.server import db, termrows, terms
from sync.server.console import queries
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


def test_a_push_notes_its_words_and_a_search_of_their_scope_gives_them_terms(
    platform: Platform, formset: FormSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(termrows, "EXPAND", 2)  # a backlog goes in several transactions
    _push(platform, "wang", GRID_A, [{"name": "张三"}, {"name": "曾小明"}])
    _push(platform, "zhao", GRID_C, [{"name": "张三", "residence_address": "和平街9号"}])
    assert _table(platform, db.search_words) == set()  # the push wrote no word terms
    noted = _table(platform, db.new_words)
    assert {g for g, _w in noted} == {GRID_A, GRID_C} and ("330106001001-01", "n:张三") in noted
    users = {u.username: u for u in _users(platform)}

    found = queries.search(platform.engine, formset, users["chen"], "zs")  # community 1: A, B
    assert [r["grid"] for r in found] == [GRID_A]
    assert _table(platform, db.search_words) == _words_of(platform, GRID_A)
    assert {g for g, _w in _table(platform, db.new_words)} == {GRID_C}  # C is not chen's

    assert queries.search(platform.engine, formset, users["wang"], "0000") == []  # a tail
    assert {g for g, _w in _table(platform, db.new_words)} == {GRID_C}  # needs no words

    found = queries.search(platform.engine, formset, users["root"], "zs")
    assert sorted(r["grid"] for r in found) == [GRID_A, GRID_C]
    assert _table(platform, db.new_words) == set()
    everything = _words_of(platform, GRID_A) | _words_of(platform, GRID_C)
    assert _table(platform, db.search_words) == everything

    _push(platform, "wang", GRID_A, [{"name": "张三"}])  # a word the grid has: noted, no terms
    assert queries.search(platform.engine, formset, users["wang"], "zs")
    assert _table(platform, db.search_words) == everything
    assert _table(platform, db.new_words) == set()


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


def test_a_push_notes_its_words_in_one_statement(platform: Platform) -> None:
    """PostgreSQL got one pipelined statement per noted word (each parsed and planned anew):
    ~50 of a nightly push's ~72. Now one statement per push on both databases."""
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
    noting = [(s, many) for s, many in seen if "new_words" in s]
    assert len(noting) == 1 and not noting[0][1], noting
    names = {(g, w) for g, w in _table(platform, db.new_words) if w.startswith(terms.NAME)}
    assert len(names) >= 50


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
