"""Build the console's search index of a populated platform (the upgrades that add it).

Why in two steps through a staging table: a street office's 1.6 M records give about 8 M
``record_terms`` rows and well over 10 M ``search_words`` rows. Inserted as the records are
read (id order), each row lands on a random page of a b-tree far bigger than the cache, and
the upgrade took ten minutes. Rows are appended to an unindexed temporary table instead and
copied into the index in one ``INSERT ... SELECT ... ORDER BY`` (the database sorts once and
fills the b-tree in order). Words are read back from ``record_terms`` in (word, grid) order, so
each distinct word's terms are computed once however many grids hold it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from app.core.forms import FormSet
from sync.server import db, termrows, terms

PAGE = 5000  # records (or distinct words) read per query
SORT_CACHE_KB = 512 * 1024  # sort memory while the index is built
_STAGE = "termfill_stage"


def _stage(conn: Connection) -> None:
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {_STAGE}")
    conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {_STAGE} (a TEXT, b TEXT, c TEXT)")


@contextmanager
def _sort_memory(conn: Connection) -> Iterator[None]:
    """SQLite sorts in memory up to its page cache (2 MB by default), PostgreSQL up to
    ``work_mem`` (4 MB): tens of millions of rows then take many merge passes over temporary
    files. ``SORT_CACHE_KB`` while the index is built (PostgreSQL: until the upgrade's
    transaction ends), SQLite's old cache size afterwards."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SET LOCAL work_mem = '{SORT_CACHE_KB}kB'")
        yield
        return
    old = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    conn.exec_driver_sql(f"PRAGMA cache_size = -{SORT_CACHE_KB}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size = {int(old or -2000)}")


def _stage_rows(conn: Connection, rows: list[tuple[str, str, str]]) -> None:
    """Append rows to the staging table (PostgreSQL: ``COPY``, the fastest way in)."""
    if conn.dialect.name == "postgresql":
        raw: Any = conn.connection.driver_connection
        with raw.cursor() as cur, cur.copy(f"COPY {_STAGE} (a, b, c) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    termrows.insert_rows(conn, f"INSERT INTO {_STAGE} (a, b, c)", rows)


def _unstage(conn: Connection, into: str) -> None:
    """Copy the staged rows into the index in its order (PostgreSQL: byte order, the index's
    "C" collation, which also sorts far faster than a language collation)."""
    order = ", ".join(f'{c} COLLATE "C"' if conn.dialect.name == "postgresql" else c for c in "abc")
    conn.exec_driver_sql(f"INSERT INTO {into} SELECT a, b, c FROM {_STAGE} ORDER BY {order}")
    conn.exec_driver_sql(f"DROP TABLE {_STAGE}")


def _records(conn: Connection) -> Iterator[Any]:
    r = db.records.c
    after = ""
    while True:
        page = conn.execute(
            sa.select(r.id, r.form, r.grid, r.title, r.data)
            .where(r.id > after)
            .order_by(r.id)
            .limit(PAGE)
        ).all()
        if not page:
            return
        yield from page
        after = page[-1].id


def fill_record_terms(conn: Connection, forms: FormSet) -> None:
    """``record_terms`` of every stored record, exactly as the write path keeps them (a record
    of a form the platform does not ship gets none, and is indexed when next written)."""
    with _sort_memory(conn):
        _stage(conn)
        for rows in _record_rows(conn, forms):
            _stage_rows(conn, rows)
        _unstage(conn, "record_terms(term, grid, record_id)")


def _record_rows(conn: Connection, forms: FormSet) -> Iterator[list[tuple[str, str, str]]]:
    rows: list[tuple[str, str, str]] = []
    for rec in _records(conn):
        if rec.form not in forms.forms:
            continue
        keys = terms.record_keys(forms.form(rec.form), db.loads(rec.data) or {}, rec.title)
        rows.extend((k, rec.grid or "", rec.id) for k in keys)
        if len(rows) >= PAGE * 4:
            yield rows
            rows = []
    yield rows


def _held_words(conn: Connection) -> Iterator[tuple[str, str]]:
    """(word, grid) of every name and address word ``record_terms`` holds, in that order: one
    range of the primary key per mark, a page at a time (no OR of ranges, which PostgreSQL
    answered by re-reading and re-sorting the rest of the table for every page)."""
    t = db.record_terms.c
    for mark in sorted((terms.ADDRESS, terms.NAME)):
        after: tuple[str, str] = (mark, "")
        while True:
            stmt = (
                sa.select(t.term, t.grid)
                .where(sa.tuple_(t.term, t.grid) > after, t.term < mark + terms.TOP)
                .distinct()
                .order_by(t.term, t.grid)
                .limit(PAGE)
            )
            page = conn.execute(stmt).all()
            yield from ((r.term, r.grid) for r in page)
            if len(page) < PAGE:
                break
            after = (page[-1].term, page[-1].grid)


def fill_search_words(conn: Connection) -> None:
    """``search_words`` of every word ``record_terms`` holds, in each grid that holds it."""
    with _sort_memory(conn):
        _stage(conn)
        for rows in _word_rows(conn):
            _stage_rows(conn, rows)
        _unstage(conn, "search_words(grid, term, word)")


def _word_rows(conn: Connection) -> Iterator[list[tuple[str, str, str]]]:
    rows: list[tuple[str, str, str]] = []
    word = ""
    found: tuple[str, ...] = ()
    for held, grid in _held_words(conn):
        if held != word:
            word, found = held, tuple(sorted(terms.word_terms(held)))
        rows.extend((grid, t, word) for t in found)
        if len(rows) >= PAGE * 4:
            yield rows
            rows = []
    yield rows
