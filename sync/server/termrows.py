"""Writes of the console's search index (``record_terms``, ``search_words``, ``new_words``,
``pending_terms``).

Why a push writes no terms of the records it creates: a nightly push of 50 new residents wrote
~200 ``record_terms`` rows, random b-tree insertions into the platform's biggest index, and
noted their words: about a quarter of PostgreSQL's CPU for the push (10.2 → 7.7 ms without,
sequential pushes on a 200 k-record platform, old and new code alternating; a city night of
tests/bench/bench_city.py, two runs: 18.1 → 15.0 and 16.1 → 15.2 ms per sync). It now
writes one ``pending_terms`` row per record; ``server-admin index-search`` after the sync
window, else the next search of a scope holding the grid (or ``load-base`` at its end), makes their terms from the records as
they are then, with the write path's rule (``index_pending``: ~0.1 ms of PostgreSQL's CPU a
record, so the work moves out of the night rather than away). Writes to records that have
terms keep them exact as before (``Tx._write_terms``).

Why a push only notes its words: a push of 10 k new residents writes about 50 k
``record_terms`` rows, and its 6 to 7 thousand new names would add about 50 k
``search_words`` rows (every suffix, the pinyin and initials of each), with their pinyin
computed in the push. That made a push 15-25 % slower. So the push writes each record's keys
(exact removal needs them) and one ``new_words`` row per (grid, word) it wrote; the first
search of a scope holding that grid gives the noted words their terms (``expand``), once,
however many pushes noted them. The rows go in one statement of arrays per table on PostgreSQL
and in multi-row statements of ``ROWS`` rows on SQLite (``insert_rows``).

Words are kept per grid (``search_words.grid``): a search reads only the words of its scope's
grids, so a supervisor's search with no match in their community answers without reading the
rest of the street office. Concurrent writers may race on a word: inserts skip rows already
there, and an expansion deletes only the notes it read.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import chain
from typing import Any

from sqlalchemy import Column, Engine, bindparam, delete, select, tuple_
from sqlalchemy.engine import Connection

from app.core.forms import FormSet
from sync.server import bulk, db, races, terms
from sync.server.sqlin import Built, among, array_literal

ROWS = 300  # rows per INSERT statement (at most 900 parameters, under every driver's limit)
IN_CHUNK = 500  # words per look-up
RETRIES = 8  # attempts of one indexing transaction that meets a push's locks (races.py)
EXPAND = 5000  # noted words given their terms per transaction

_W, _N = db.search_words.c, db.new_words.c
_IGNORE = {False: ("INSERT OR IGNORE INTO ", ""), True: ("INSERT INTO ", " ON CONFLICT DO NOTHING")}
_DELETE_NOTED = delete(db.new_words).where(
    _N.grid == bindparam("b_grid"), _N.word == bindparam("b_word")
)


def _is_pg(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def insert_rows(
    conn: Connection, into: str, rows: Sequence[tuple[str, ...]], tail: str = ""
) -> None:
    """``rows`` (text values, all of one width) in as few statements as each database takes
    best: ``into`` is the statement up to its values (``INSERT INTO t (a, b)``), ``tail`` what
    follows them (a conflict clause).

    PostgreSQL: one statement for all rows, the columns as arrays (``unnest``). The pipelined
    ``executemany`` it replaces sent one statement per row, each parsed and planned anew (the
    engine prepared nothing): a push of 50 new residents sent ~50 for its noted words alone.
    SQLite: multi-row VALUES of ``ROWS`` rows (the same text for every full chunk, so the
    driver's statement cache keeps it)."""
    if not rows:
        return
    if _is_pg(conn):
        arrays = ", ".join(["%s::text[]"] * len(rows[0]))
        # each column as array text, dumped in C (``sqlin.array_literal``)
        columns = [array_literal(column) for column in zip(*rows, strict=True)]
        conn.exec_driver_sql(f"{into} SELECT * FROM unnest({arrays}){tail}", tuple(columns))
        return
    one = "(" + ", ".join(["?"] * len(rows[0])) + ")"
    head = into + " VALUES "
    full = head + ", ".join([one] * ROWS) + tail
    for i in range(0, len(rows), ROWS):
        part = rows[i : i + ROWS]
        sql = full if len(part) == ROWS else head + ", ".join([one] * len(part)) + tail
        conn.exec_driver_sql(sql, tuple(chain.from_iterable(part)))


def insert_terms(conn: Connection, rows: Sequence[tuple[str, str, str]]) -> None:
    """Add ``record_terms`` rows (term, grid, record_id); none of them may be stored yet, so
    PostgreSQL takes them in one COPY (a 10 k push writes ~50 k: its pipelined executemany
    was the push's largest single cost there, see ``bulk``)."""
    if _is_pg(conn) and len(rows) >= bulk.MIN_ROWS:
        bulk.copy_tuples(conn, "record_terms", ("term", "grid", "record_id"), rows)
        return
    insert_rows(conn, "INSERT INTO record_terms (term, grid, record_id)", rows)


def delete_terms(conn: Connection, rows: Sequence[tuple[str, str, str]]) -> None:
    """Remove ``record_terms`` rows (term, grid, record_id): few per push, one statement."""
    mark = "%s" if _is_pg(conn) else "?"
    sql = f"DELETE FROM record_terms WHERE term = {mark} AND grid = {mark} AND record_id = {mark}"
    conn.exec_driver_sql(sql, list(rows))


def _insert_ignoring(conn: Connection, table: str, rows: Sequence[tuple[str, ...]]) -> None:
    head, tail = _IGNORE[_is_pg(conn)]
    insert_rows(conn, head + table, rows, tail)


def note_words(conn: Connection, words: Iterable[tuple[str, str]]) -> None:
    """Note (grid, word) pairs a write gave records, for the next search to expand."""
    _insert_ignoring(conn, "new_words (grid, word)", sorted(set(words)))


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
            stmt = select(_W.word).where(_W.grid == grid, among(conn, _W.term, firsts))
            known: set[Any] = set(conn.execute(stmt).scalars())
            rows.extend(word_rows(grid, (w for w in part if w not in known)))
    _insert_ignoring(conn, "search_words (grid, term, word)", rows)


_P = db.pending_terms.c
_R = db.records.c
_PENDING_RECORDS = Built(
    lambda among: (
        select(_R.id, _R.form, _R.grid, _R.title, _R.data)
        .where(among(_R.id, "ids"))
        .order_by(_R.id)  # the lock order of a push's ``Tx.load_many``
        .with_for_update()
    )
)
_DELETE_PENDING = delete(db.pending_terms).where(
    db.pending_terms.c.grid == bindparam("b_grid"),
    db.pending_terms.c.record_id == bindparam("b_id"),
)


def index_pending(engine: Engine, forms: FormSet, grids: Sequence[str] | None) -> int:
    """Give the records pending in these grids (None: all) their ``record_terms`` rows, made
    from each record as it is now with the write path's own rule (``terms.record_keys``), and
    note their words; returns how many. A read first, so a search with nothing pending never
    waits for the write lock; ``EXPAND`` records per transaction, each part read in key order
    after the one before is indexed, so memory holds one part: the 1.63 M records pending at
    the end of ``load-base``, read at once, were ~330 MB of ids (peak 625 MB against 294 MB
    for an eighth of the file).

    Why exact under concurrent writes: each record's row is locked (in the order a push locks
    them) before its terms are made, so a write to it either committed first (its current
    values are read) or waits and then removes exactly the rows written here. Rows a write
    already added for the record are skipped, and terms a pending record shares with its
    earlier values (which a write does not re-add) are added here."""
    done = 0
    for part in _parts(engine, (_P.grid, _P.record_id), grids):
        _index_part(engine, forms, part)
        done += len(part)
    return done


def _parts(
    engine: Engine, key: tuple[Column[str], Column[str]], grids: Sequence[str] | None
) -> Iterator[list[tuple[str, str]]]:
    """The rows of a table keyed by (grid, something) in these grids (None: all), ``EXPAND``
    at a time in key order, each part read once the caller has handled (and deleted) the one
    before: one part in memory, however many rows wait (a city's load leaves millions)."""
    for chunk in [None] if grids is None else _in_chunks(grids):
        after: tuple[str, str] | None = None
        while True:
            with db.read(engine) as conn:
                part = _next_part(conn, key, chunk, after)
            if not part:
                break
            yield part
            after = part[-1]


def _in_chunks(grids: Sequence[str]) -> list[Sequence[str]]:
    return [grids[i : i + IN_CHUNK] for i in range(0, len(grids), IN_CHUNK)]


def _next_part(
    conn: Connection,
    key: tuple[Column[str], Column[str]],
    grids: Sequence[str] | None,
    after: tuple[str, str] | None,
) -> list[tuple[str, str]]:
    """The next ``EXPAND`` keys past ``after`` in key order (the table's primary key)."""
    grid, second = key
    query = select(grid, second).order_by(grid, second).limit(EXPAND)
    if grids is not None:
        query = query.where(grid.in_(grids))
    if after is not None:
        query = query.where(tuple_(grid, second) > tuple_(*after))
    return [(a, b) for a, b in conn.execute(query)]


def _index_part(engine: Engine, forms: FormSet, part: Sequence[tuple[str, str]]) -> None:
    """One transaction of ``index_pending``, run again after a deadlock or a key race with a
    concurrent push (a push that locks more records part-way through can meet these locks
    in another order): a search must not fail because a night's push ran beside it."""

    def index() -> None:
        with db.write(engine) as conn:
            rows = _terms_of(conn, forms, sorted({rid for _g, rid in part}))
            _insert_ignoring(conn, "record_terms (term, grid, record_id)", rows)
            note_words(conn, ((g, k) for k, g, _rid in rows if terms.is_word(k)))
            conn.execute(_DELETE_PENDING, [{"b_grid": g, "b_id": rid} for g, rid in part])

    races.retried(index, RETRIES)


def _terms_of(conn: Connection, forms: FormSet, ids: Sequence[str]) -> list[tuple[str, str, str]]:
    """(term, grid, record_id) of these records as the write path keeps them, locked, in
    index order (a record of a form the platform does not ship gets none, as in ``termfill``)."""
    rows: set[tuple[str, str, str]] = set()
    stmt = _PENDING_RECORDS.on(conn)
    for i in range(0, len(ids), IN_CHUNK):
        for r in conn.execute(stmt, {"ids": list(ids[i : i + IN_CHUNK])}):
            if r.form in forms.forms:
                keys = terms.record_keys(forms.form(r.form), db.loads(r.data) or {}, r.title)
                rows.update((k, r.grid or "", r.id) for k in keys)
    return sorted(rows)


def expand(engine: Engine, grids: Sequence[str] | None) -> int:
    """Give the words noted in these grids (None: all) their terms; returns how many. Reads
    first, so a search with nothing noted in its scope never waits for the write lock; a
    backlog (a first sync of a whole office) goes in transactions of ``EXPAND`` words, so
    pushes are never held up for long behind it."""
    done = 0
    for part in _parts(engine, (_N.grid, _N.word), grids):
        with db.write(engine) as conn:
            add_words(conn, part)
            conn.execute(_DELETE_NOTED, [{"b_grid": g, "b_word": w} for g, w in part])
        done += len(part)
    return done
