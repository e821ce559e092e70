"""The address index: any run of characters of an address, and its pinyin initials.

Why a second FTS5 table: the term index (``search``) holds whole words matched from their
start, so "听涛雅苑" inside "…秋实路18号听涛雅苑1栋1单元201室" or "ttya" find nothing there.
SQLite's trigram tokenizer matches any run of three or more characters (plain sqlite3 and
sqlcipher3 both bundle it); a two-character run is looked up through the trigrams that start
with it. Matches come nearest first (bm25 favours the shortest address holding the run: the
building before its rooms) unless a run is so common that ranking would read too much.

Part of ``app.core.store``: SQL stays in this package.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from app.core.forms import FormSet
from app.core.search import address_query, address_text, short_address_run

TABLE = "address_search"
PENDING = "address_index_pending"  # meta key: the migration made the table, rows still to add
RANKED_AT_MOST = 4000  # more matches than this come in index order (ranking would read them all)
SHORT_RUN_TRIGRAMS = 64  # a two-character run is searched through at most this many trigrams

MIGRATION = [
    f"""CREATE VIRTUAL TABLE {TABLE} USING fts5 (address, initials, tokenize = 'trigram')""",
    f"CREATE VIRTUAL TABLE {TABLE}_vocab USING fts5vocab ({TABLE}, row)",
    f"INSERT OR REPLACE INTO meta (key, value) VALUES ('{PENDING}', '1')",
]


def write(conn: sqlite3.Connection, rows: Iterable[tuple[int, tuple[str, str] | None]]) -> None:
    """Insert the index rows of new records (rid, (address, initials)); None rows are skipped."""
    conn.executemany(
        f"INSERT INTO {TABLE} (rowid, address, initials) VALUES (?, ?, ?)",
        [(rid, *text) for rid, text in rows if text],
    )


def remove(conn: sqlite3.Connection, rid: int) -> None:
    conn.execute(f"DELETE FROM {TABLE} WHERE rowid = ?", (rid,))


def backfill(conn: sqlite3.Connection, formset: FormSet, batch: int = 50_000) -> int:
    """Index every live record of a store the migration just gave the table; returns how many.

    Runs once (the meta flag goes in the same transaction); addresses are read with
    json_extract so a record's JSON is never parsed in Python.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        if conn.execute("SELECT 1 FROM meta WHERE key = ?", (PENDING,)).fetchone() is None:
            conn.execute("COMMIT")
            return 0
        done = 0
        for form in formset.forms.values():
            fields = form.roles.address
            if not fields:
                continue
            cols = ", ".join(f"json_extract(data, '$.{f}')" for f in fields)
            cur = conn.execute(
                f"SELECT rid, {cols} FROM records WHERE form = ? AND deleted = 0", (form.id,)
            )
            while chunk := cur.fetchmany(batch):
                rows = [(r[0], address_text(str(v) for v in r[1:] if v)) for r in chunk]
                write(conn, rows)
                done += len(chunk)
        conn.execute("DELETE FROM meta WHERE key = ?", (PENDING,))
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return done


def _short_expression(conn: sqlite3.Connection, run: str) -> str | None:
    """An OR of the indexed trigrams starting with a two-character run (None: none do)."""
    upper = run[:-1] + chr(ord(run[-1]) + 1)
    terms = [
        t
        for (t,) in conn.execute(
            f"SELECT term FROM {TABLE}_vocab WHERE term >= ? AND term < ? LIMIT ?",
            (run, upper, SHORT_RUN_TRIGRAMS),
        )
    ]
    if not terms:
        return None
    return "address : (" + " OR ".join('"' + t.replace('"', '""') + '"' for t in terms) + ")"


def expression(conn: sqlite3.Connection, text: str) -> str | None:
    """The MATCH expression for typed text, "" when it is an address run nothing holds, None
    when the text is no address run at all (a single character, two Latin letters)."""
    query = address_query(text)
    if query is not None:
        return query[1]
    run = short_address_run(text)
    if run is None:
        return None
    return _short_expression(conn, run) or ""


def matches(
    conn: sqlite3.Connection,
    text: str,
    select: str,
    where: str,
    args: Sequence[Any],
) -> list[tuple[Any, ...]] | None:
    """Rows (``r.rid`` then ``select``) of records (alias ``r``, filtered by ``where``) whose
    address holds the typed run, nearest first; None when the text is no address run."""
    expr = expression(conn, text)
    if expr is None:
        return None
    if not expr:
        return []
    found = conn.execute(
        f"SELECT count(*) FROM (SELECT 1 FROM {TABLE} WHERE {TABLE} MATCH ? LIMIT ?)",
        (expr, RANKED_AT_MOST + 1),
    ).fetchone()[0]
    order = "ORDER BY a.rank, r.rid" if found <= RANKED_AT_MOST else ""
    sql = (
        f"SELECT r.rid, {select} FROM {TABLE} a CROSS JOIN records r ON r.rid = a.rowid "
        f"WHERE a.{TABLE} MATCH ? AND {where} {order} LIMIT ?"
    )
    return list(conn.execute(sql, (expr, *args, RANKED_AT_MOST)).fetchall())


def not_among(rows: Sequence[tuple[Any, ...]], alias: str = "r") -> tuple[str, list[Any]]:
    """A condition leaving out records already listed as address matches."""
    if not rows:
        return "1 = 1", []
    return f"{alias}.rid NOT IN (SELECT value FROM json_each(?))", [
        json.dumps([row[0] for row in rows])
    ]
