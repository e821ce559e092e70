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
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from app.core.forms import FormSet
from app.core.search import address_query, address_text, short_address_run
from app.core.store.once import flag_step, run_once

TABLE = "address_search"
PENDING = "address_index_pending"  # meta key: the migration made the table, rows still to add
RANKED_AT_MOST = 500  # more matches than this come in index order (ranking would read them all)
SHORT_RUN_TRIGRAMS = 64  # a two-character run is searched through at most this many trigrams

MIGRATION = [
    f"""CREATE VIRTUAL TABLE {TABLE} USING fts5 (
        address, initials, starts, tokenize = 'trigram'
    )""",
    *flag_step(PENDING),
]


def write(conn: sqlite3.Connection, rows: Iterable[tuple[int, tuple[str, ...] | None]]) -> None:
    """Insert the index rows of new records (rid, (address, initials, word starts)); None
    rows are skipped."""
    conn.executemany(
        f"INSERT INTO {TABLE} (rowid, address, initials, starts) VALUES (?, ?, ?, ?)",
        [(rid, *text) for rid, text in rows if text],
    )


def remove(conn: sqlite3.Connection, rid: int) -> None:
    conn.execute(f"DELETE FROM {TABLE} WHERE rowid = ?", (rid,))


def backfill(conn: sqlite3.Connection, formset: FormSet, batch: int = 50_000) -> int:
    """Index every live record of a store the migration just gave the table; returns how many.

    Runs once (the meta flag goes in the same transaction); addresses are read with
    json_extract so a record's JSON is never parsed in Python.
    """

    def work() -> int:
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
        return done

    return run_once(conn, PENDING, work)


@dataclass
class _Candidates:
    """One connection's last complete set of address matches (rowid, length, lower-cased
    address) and the words it was found for, valid while the store is unchanged."""

    conn: sqlite3.Connection
    state: tuple[int, int]
    words: tuple[str, ...]
    rows: list[tuple[int, int, str]]


_RECENT: OrderedDict[int, _Candidates] = OrderedDict()  # per connection, the last few
_RECENT_CONNECTIONS = 4


def _state(conn: sqlite3.Connection) -> tuple[int, int]:
    """Changes this connection made and others committed: a cached set is stale after
    either."""
    return conn.total_changes, int(conn.execute("PRAGMA data_version").fetchone()[0])


def _narrowed(conn: sqlite3.Connection, words: tuple[str, ...]) -> list[tuple[int, int]] | None:
    """The matches of ``words`` from the previous keystroke's complete set, when every word
    it was found for lies inside one of these (typing on narrows the set); else None."""
    last = _RECENT.get(id(conn))
    if last is None or last.conn is not conn or not words or last.state != _state(conn):
        return None
    if not all(any(old in new for new in words) for old in last.words):
        return None
    rows = [r for r in last.rows if all(w in r[2] for w in words)]
    _remember(conn, words, rows)
    return [(rid, length) for rid, length, _ in rows]


def _remember(conn: sqlite3.Connection, words: tuple[str, ...], rows: list[Any]) -> None:
    _RECENT.pop(id(conn), None)
    _RECENT[id(conn)] = _Candidates(conn, _state(conn), words, rows)
    while len(_RECENT) > _RECENT_CONNECTIONS:
        _RECENT.popitem(last=False)


def _found(conn: sqlite3.Connection, text: str, expr: str, runs: list[str]) -> list[Any]:
    """Up to ``RANKED_AT_MOST + 1`` matches as (rowid, address length): from the previous
    keystroke's set when the text only grew (no index read at all), else one index read."""
    query = address_query(text)
    words = query.words if query is not None else ()
    narrowed = _narrowed(conn, words)
    if narrowed is not None:
        return narrowed
    if not words:  # pinyin initials or a two-character start: nothing to narrow later
        _RECENT.pop(id(conn), None)
        return conn.execute(
            f"SELECT rowid, length(address) FROM {TABLE} WHERE {TABLE} MATCH ?{_holds(runs)} "
            "LIMIT ?",
            (expr, *runs, RANKED_AT_MOST + 1),
        ).fetchall()
    found = conn.execute(
        f"SELECT rowid, length(address), lower(address) FROM {TABLE} "
        f"WHERE {TABLE} MATCH ?{_holds(runs)} LIMIT ?",
        (expr, *runs, RANKED_AT_MOST + 1),
    ).fetchall()
    if len(found) <= RANKED_AT_MOST:
        _remember(conn, words, found)
    else:
        _RECENT.pop(id(conn), None)
    return [(rid, length) for rid, length, _ in found]


def expression(text: str) -> tuple[str, list[str]] | None:
    """The MATCH expression for typed text and the runs an address must hold (checked with
    ``instr``); None when the text is no address run at all (one character, two letters)."""
    query = address_query(text)
    if query is not None:
        return query.match, list(query.runs)
    short = short_address_run(text)
    return (short, []) if short is not None else None


def _holds(runs: list[str], alias: str = "") -> str:
    """SQL conditions: the address holds every run (lower-cased, as the query is)."""
    column = f"{alias}.address" if alias else "address"
    return "".join(f" AND instr(lower({column}), ?)" for _ in runs)


@dataclass(frozen=True)
class Near:
    """One page of address matches, how many there are in all, and how to leave them out of
    the term matches that follow them."""

    rows: list[tuple[Any, ...]]
    total: int
    skip: str
    skip_args: list[Any]


def matches(
    conn: sqlite3.Connection,
    text: str,
    select: str,
    where: str,
    args: Sequence[Any],
    offset: int = 0,
    limit: int = 200,
) -> Near | None:
    """A page of rows (``select`` over records as ``r``, filtered by ``where``) whose address
    holds the typed run, nearest (shortest address) first; None when the text is no address
    run. A run in more than ``RANKED_AT_MOST`` addresses comes in index order: ranking would
    read every one of them, and such a run is too common for an order to help."""
    query = expression(text)
    if query is None:
        return None
    expr, runs = query
    # one read of the index (or none: ``_found``): up to RANKED_AT_MOST + 1 matches, to rank
    found = _found(conn, text, expr, runs)
    if len(found) <= RANKED_AT_MOST:
        return _ranked(conn, found, select, where, args, offset, limit)
    base = (
        f"SELECT r.rid, {select} FROM {TABLE} a CROSS JOIN records r ON r.rid = a.rowid "
        f"WHERE a.{TABLE} MATCH ?{_holds(runs, 'a')} AND {where}"
    )
    params = (expr, *runs, *args)
    rows = _first_of(conn, found, select, where, args, offset, limit)
    if rows is None:  # the matches read so far hold too few of these records: read on
        rows = conn.execute(f"{base} LIMIT ? OFFSET ?", (*params, limit, offset)).fetchall()
    total = offset + len(rows)
    if not rows and offset:
        total = conn.execute(f"SELECT count(*) FROM ({base})", params).fetchone()[0]
    skip = f"r.rid NOT IN (SELECT rowid FROM {TABLE} WHERE {TABLE} MATCH ?{_holds(runs)})"
    return Near([row[1:] for row in rows], total, skip, [expr, *runs])


def _first_of(
    conn: sqlite3.Connection,
    found: list[tuple[int, int]],
    select: str,
    where: str,
    args: Sequence[Any],
    offset: int,
    limit: int,
) -> list[Any] | None:
    """The page from the matches already read (index order, as the MATCH gives them), when
    they hold a whole page of the records wanted; None when the index must be read on."""
    order = json.dumps([rid for rid, _ in found])
    rows = conn.execute(
        f"SELECT r.rid, {select} FROM json_each(?) AS m CROSS JOIN records r ON r.rid = m.value "
        f"WHERE {where} ORDER BY m.key LIMIT ? OFFSET ?",
        (order, *args, limit, offset),
    ).fetchall()
    return rows if len(rows) == limit else None


def _ranked(
    conn: sqlite3.Connection,
    found: list[tuple[int, int]],
    select: str,
    where: str,
    args: Sequence[Any],
    offset: int,
    limit: int,
) -> Near:
    """Every match of a run few addresses hold, shortest address first, then filtered."""
    if not found:
        return Near([], 0, "1 = 1", [])
    order = json.dumps([rid for rid, _ in sorted(found, key=lambda f: (f[1], f[0]))])
    rows = conn.execute(
        f"SELECT r.rid, {select} FROM json_each(?) AS m CROSS JOIN records r ON r.rid = m.value "
        f"WHERE {where} ORDER BY m.key",
        (order, *args),
    ).fetchall()
    skip = "r.rid NOT IN (SELECT value FROM json_each(?))"
    return Near([row[1:] for row in rows[offset : offset + limit]], len(rows), skip, [order])
