"""Writes of the console's search index (``record_terms``, ``search_words``) in bulk.

Why plain SQL with many rows per statement: a push of 10 k new residents writes about 50 k
``record_terms`` rows and, for its new names, about 50 k ``search_words`` rows. Through
SQLAlchemy's executemany each row costs a statement step plus Python overhead; one statement
per ``ROWS`` rows (the same text on every full chunk, so the driver's statement cache keeps
it) halves the index's share of a push. The migrations build the index with the same
statements.

Words are kept per grid (``search_words.grid``): a search reads only the words of its scope's
grids, so a supervisor's search with no match in their community answers without reading the
rest of the street office. A word is written for a grid the first time a record of that grid
holds it (concurrent writers may race: the insert skips rows already there).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from sync.server import db, terms

ROWS = 300  # rows per INSERT statement (3 columns: 900 parameters, under every driver's limit)
IN_CHUNK = 500  # words per known-word look-up

_W = db.search_words.c
_SQL = {
    # dialect: (parameter mark, words insert prefix, words insert suffix)
    False: ("?", "INSERT OR IGNORE INTO search_words (grid, term, word) VALUES ", ""),
    True: ("%s", "INSERT INTO search_words (grid, term, word) VALUES ", " ON CONFLICT DO NOTHING"),
}
_TERMS = "INSERT INTO record_terms (term, grid, record_id) VALUES "


def _is_pg(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def insert_rows(
    conn: Connection, head: str, rows: Sequence[tuple[str, str, str]], tail: str = ""
) -> None:
    """``rows`` (three columns each) in statements of ``ROWS`` rows: ``head`` is the statement
    up to ``VALUES``, ``tail`` what follows the values (a conflict clause)."""
    mark = _SQL[_is_pg(conn)][0]
    one = f"({mark}, {mark}, {mark})"
    for i in range(0, len(rows), ROWS):
        part = rows[i : i + ROWS]
        sql = head + ", ".join([one] * len(part)) + tail
        conn.exec_driver_sql(sql, tuple(v for row in part for v in row))


def insert_terms(conn: Connection, rows: Sequence[tuple[str, str, str]]) -> None:
    """Add ``record_terms`` rows (term, grid, record_id); none of them may be stored yet."""
    insert_rows(conn, _TERMS, rows)


def delete_terms(conn: Connection, rows: Sequence[tuple[str, str, str]]) -> None:
    """Remove ``record_terms`` rows (term, grid, record_id): few per push, one statement."""
    mark = _SQL[_is_pg(conn)][0]
    sql = f"DELETE FROM record_terms WHERE term = {mark} AND grid = {mark} AND record_id = {mark}"
    conn.exec_driver_sql(sql, list(rows))  # type: ignore[arg-type]


def insert_words(conn: Connection, rows: Sequence[tuple[str, str, str]]) -> None:
    """Add ``search_words`` rows (grid, term, word), skipping rows already stored."""
    _mark, head, tail = _SQL[_is_pg(conn)]
    insert_rows(conn, head, rows, tail)


def word_rows(grid: str, words: Iterable[str]) -> list[tuple[str, str, str]]:
    """The ``search_words`` rows of these words in ``grid``, in primary-key order."""
    return sorted((grid, t, w) for w in words for t in terms.word_terms(w))


def add_words(conn: Connection, words: Iterable[tuple[str, str]]) -> None:
    """Give (grid, word) pairs their terms unless the grid has the word already (one look-up
    of each word's ``first_term`` per chunk: a range of the primary key each)."""
    by_grid: dict[str, set[str]] = {}
    for grid, word in words:
        by_grid.setdefault(grid, set()).add(word)
    rows: list[tuple[str, str, str]] = []
    for grid, found in sorted(by_grid.items()):
        ordered = sorted(found)
        for i in range(0, len(ordered), IN_CHUNK):
            part = ordered[i : i + IN_CHUNK]
            firsts = sorted({terms.first_term(w) for w in part})
            stmt = select(_W.word).where(_W.grid == grid, _W.term.in_(firsts))
            known: set[Any] = set(conn.execute(stmt).scalars())
            rows.extend(word_rows(grid, (w for w in part if w not in known)))
    insert_words(conn, rows)
