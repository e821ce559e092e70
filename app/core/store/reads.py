"""The read side of the local store: lookups, lists, search, history and the outbox queue.

A part ``Store`` composes and delegates to (its public face stays one object); it needs only
the connection and the form set.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from app.core.forms import FormSet
from app.core.records import HistoryEntry, Record, Summary, stored_base
from app.core.search import fts_query, mixes_digits_and_han
from app.core.store import places
from app.core.store.derive import natural_key
from app.core.store.outbox import OutboxState

_KEYS_PER_QUERY = 500  # well under SQLite's bound-parameter limit

_RECORD_COLUMNS = (
    "id, form, form_version, grid, title, data, status, deleted, server_version, dirty, base, "
    "conflict, dup_state, created_at, created_by, updated_at, updated_by"
)
_SUMMARY_COLUMNS = (
    "id, form, title, grid, status, dirty, conflict IS NOT NULL, dup_state, updated_at, sort_key"
)
_SUMMARY_COLUMNS_R = ", ".join(
    "r.conflict IS NOT NULL" if c.startswith("conflict") else f"r.{c}"
    for c in (c.strip() for c in _SUMMARY_COLUMNS.split(","))
)


class Reads:
    """Queries over the store's tables (``Store`` delegates its reads here)."""

    def __init__(self, conn: sqlite3.Connection, formset: FormSet) -> None:
        self.conn = conn
        self.formset = formset

    def rid(self, record_id: str) -> int:
        """A record's row number (the side tables' key); KeyError when there is none."""
        row = self.conn.execute("SELECT rid FROM records WHERE id = ?", (record_id,)).fetchone()
        if row is None:
            raise KeyError(record_id)
        return int(row[0])

    def get(self, record_id: str) -> Record | None:
        """A record by id, tombstoned ones included."""
        row = self.conn.execute(
            f"SELECT {_RECORD_COLUMNS} FROM records WHERE id = ?", (record_id,)
        ).fetchone()
        return _to_record(row) if row else None

    def merged_into(self, record_id: str) -> str | None:
        """The id a record gone from the store lives on under: the platform merged it into
        another one (the ``merge`` history row a sync writes, followed when that one was
        merged again); None when it was not merged or the record it went into is gone too.

        Reads the history by kind, not by an index: for the rare id that is gone."""
        seen = {record_id}
        current = record_id
        while True:
            row = self.conn.execute(
                "SELECT record_id FROM history WHERE kind = 'merge' "
                "AND json_extract(changes, '$._merged_from[0]') = ? ORDER BY seq DESC LIMIT 1",
                (current,),
            ).fetchone()
            if row is None or row[0] in seen:
                return None
            current = row[0]
            if self.get(current) is not None:
                return current
            seen.add(current)

    def iter_records(self, form: str, batch: int = 1000) -> Iterator[Record]:
        """Every live record of a form in id order, read in batches (exports, printing)."""
        last = ""
        while True:
            rows = self.conn.execute(
                f"SELECT {_RECORD_COLUMNS} FROM records WHERE form = ? AND deleted = 0 AND id > ? "
                "ORDER BY id LIMIT ?",
                (form, last, batch),
            ).fetchall()
            if not rows:
                return
            yield from (_to_record(r) for r in rows)
            last = rows[-1][0]

    def find_by_key(self, form_id: str, data: Mapping[str, Any]) -> list[str]:
        """Live records of ``form_id`` sharing any natural key with ``data``."""
        form = self.formset.form(form_id)
        keys = [k for k in (natural_key(form, data, f) for f in form.natural_keys) if k]
        if not keys:
            return []
        marks = ",".join("?" * len(keys))
        rows = self.conn.execute(
            "SELECT r.id FROM record_keys k CROSS JOIN records r ON r.rid = k.rid "
            f"WHERE k.form = ? AND k.key IN ({marks}) ORDER BY k.key, r.id",
            (form_id, *keys),
        )
        return list(dict.fromkeys(r[0] for r in rows))  # the lowest id under the lowest key first

    def records_by_keys(self, form_id: str, keys: Iterable[str]) -> dict[str, list[str]]:
        """Natural key -> live records of ``form_id`` holding it (ascending ids), for the keys
        that have any: ``find_by_key`` for a whole batch of imported rows in a few queries."""
        wanted, found = sorted(set(keys)), dict[str, list[str]]()
        for start in range(0, len(wanted), _KEYS_PER_QUERY):
            part = wanted[start : start + _KEYS_PER_QUERY]
            rows = self.conn.execute(
                "SELECT k.key, r.id FROM record_keys k CROSS JOIN records r ON r.rid = k.rid "
                f"WHERE k.form = ? AND k.key IN ({','.join('?' * len(part))}) "
                "ORDER BY k.key, r.id",
                (form_id, *part),
            )
            for key, record_id in rows:
                found.setdefault(key, []).append(record_id)
        return found

    def summaries(
        self,
        form: str | None = None,
        *,
        grid: str | None = None,
        status: str | None = None,
        dirty: bool | None = None,
        conflict: bool | None = None,
        dup: bool | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> list[Summary]:
        """Live records for lists, in list order (``sort_key``); filters combine with AND."""
        where, args = _filters(form, grid, status, dirty, conflict, dup)
        rows = self.conn.execute(
            f"SELECT {_SUMMARY_COLUMNS} FROM records WHERE {where} ORDER BY sort_key, id "
            "LIMIT ? OFFSET ?",
            (*args, limit, offset),
        )
        return [_to_summary(r) for r in rows]

    def count(self, form: str | None = None, **filters: Any) -> int:
        """How many live records match the same filters as ``summaries``."""
        where, args = _filters(form, **filters)
        return int(
            self.conn.execute(f"SELECT count(*) FROM records WHERE {where}", args).fetchone()[0]
        )

    def search(self, text: str, form: str | None = None, limit: int = 50) -> list[Summary]:
        """Search-as-you-type over names, pinyin, initials, ID/phone tails and addresses:
        records whose address holds the typed run first, nearest first (``places``)."""
        where, args = "r.deleted = 0", []
        if form:
            where, args = "r.deleted = 0 AND r.form = ?", [form]
        near = places.matches(self.conn, text, _SUMMARY_COLUMNS_R, where, args, 0, limit)
        rows = list(near.rows) if near else []
        skip, skip_args = (near.skip, near.skip_args) if near else ("1 = 1", [])
        query = None if mixes_digits_and_han(text) else fts_query(text)  # else an address
        if len(rows) < limit and query is not None:
            sql = (
                f"SELECT {_SUMMARY_COLUMNS_R} FROM search CROSS JOIN records r "
                f"ON r.rid = search.rowid WHERE search MATCH ? AND {where} AND {skip} LIMIT ?"
            )
            rows.extend(self.conn.execute(sql, (query, *args, *skip_args, limit - len(rows))))
        return [_to_summary(r) for r in rows]

    def referrers(self, record_id: str, field: str | None = None) -> list[str]:
        """Ids of live records whose reference fields point at ``record_id``."""
        sql = "SELECT f.src FROM refs f JOIN records r ON r.id = f.src WHERE f.dst = ? AND r.deleted = 0"
        args: list[Any] = [record_id]
        if field:
            sql += " AND f.field = ?"
            args.append(field)
        return [r[0] for r in self.conn.execute(sql + " ORDER BY r.sort_key", args)]

    def history(self, record_id: str) -> list[HistoryEntry]:
        """Every save of a record, oldest first."""
        rows = self.conn.execute(
            "SELECT seq, record_id, at, author, kind, changes FROM history WHERE record_id = ? ORDER BY seq",
            (record_id,),
        )
        return [HistoryEntry(s, r, a, au, k, json.loads(c)) for s, r, a, au, k, c in rows]

    def pending_ops(self, limit: int = 500) -> list[dict[str, Any]]:
        """Outbox ops not yet acknowledged by the platform, oldest first."""
        rows = self.conn.execute(
            "SELECT seq, op_id, record_id, form, kind, base_version, fields, edited_at, author "
            f"FROM outbox WHERE state = '{OutboxState.PENDING.value}' ORDER BY seq LIMIT ?",
            (limit,),
        )
        keys = (
            "seq",
            "op_id",
            "record_id",
            "form",
            "kind",
            "base_version",
            "fields",
            "edited_at",
            "author",
        )
        ops = [dict(zip(keys, row, strict=True)) for row in rows]
        for op in ops:
            op["fields"] = json.loads(op["fields"])
        return ops

    def stats(self) -> list[tuple[str, str, str | None, int]]:
        """(form, status, grid, count) over live records."""
        return list(
            self.conn.execute(
                "SELECT form, status, grid, count(*) FROM records WHERE deleted = 0 "
                "GROUP BY form, status, grid ORDER BY form, status, grid"
            )
        )

    def people_by_birth(
        self, form: str, birth: str
    ) -> list[tuple[str, str, str, str | None, str | None]]:
        """(id, name, pinyin, birth, house) of live people born on a date (duplicate guard)."""
        return self._people("p.birth = ?", form, birth)

    def people_in_house(
        self, form: str, house: str
    ) -> list[tuple[str, str, str, str | None, str | None]]:
        """(id, name, pinyin, birth, house) of live people linked to a house (duplicate guard)."""
        return self._people("p.house = ?", form, house)

    def _people(
        self, cond: str, form: str, value: str
    ) -> list[tuple[str, str, str, str | None, str | None]]:
        return list(
            self.conn.execute(
                "SELECT r.id, p.name, p.pinyin, p.birth, p.house FROM people p JOIN records r ON r.rid = p.rid "
                f"WHERE p.form = ? AND {cond} AND r.deleted = 0 LIMIT 500",
                (form, value),
            )
        )

    def live_rows(self) -> list[tuple[str, str, str, str]]:
        """(id, form, data as stored JSON, status) of every live record in insertion order
        (the demo platform replays a generated store as ops)."""
        return self.conn.execute(
            "SELECT id, form, data, status FROM records WHERE deleted = 0 ORDER BY rowid"
        ).fetchall()

    def decisions(self, record_id: str) -> list[tuple[str, str, str, str]]:
        """(other_id, decision, author, at) for a record, oldest first."""
        return list(
            self.conn.execute(
                "SELECT other_id, decision, author, at FROM dedup_decisions WHERE record_id = ? ORDER BY seq",
                (record_id,),
            )
        )

    def pair_decisions(self, record_id: str) -> list[tuple[str, str]]:
        """(other record, decision) of every answer about a pair holding ``record_id``,
        whichever of the two was being edited, oldest first: an answer is a fact about the
        two records, not about the editor it was given in."""
        return list(
            self.conn.execute(
                "SELECT CASE WHEN record_id = ?1 THEN other_id ELSE record_id END, decision "
                "FROM dedup_decisions WHERE record_id = ?1 OR other_id = ?1 ORDER BY seq",
                (record_id,),
            )
        )


def _filters(
    form: str | None,
    grid: str | None = None,
    status: str | None = None,
    dirty: bool | None = None,
    conflict: bool | None = None,
    dup: bool | None = None,
) -> tuple[str, list[Any]]:
    clauses, args = ["deleted = 0"], []
    for column, value in (("form", form), ("grid", grid), ("status", status)):
        if value is not None:
            clauses.append(f"{column} = ?")
            args.append(value)
    if dirty is not None:
        clauses.append("dirty = 1" if dirty else "dirty = 0")
    if conflict is not None:
        clauses.append("conflict IS NOT NULL" if conflict else "conflict IS NULL")
    if dup is not None:
        clauses.append(
            "dup_state = 'suspected'" if dup else "(dup_state IS NULL OR dup_state != 'suspected')"
        )
    return " AND ".join(clauses), args


def _to_record(row: Sequence[Any]) -> Record:
    (
        rid,
        form,
        version,
        grid,
        title,
        data,
        status,
        deleted,
        server_version,
        dirty,
        base,
        conflict,
        dup_state,
        created_at,
        created_by,
        updated_at,
        updated_by,
    ) = row
    values = json.loads(data)
    return Record(
        id=rid,
        form=form,
        form_version=version,
        grid=grid,
        title=title,
        data=values,
        status=status,
        deleted=bool(deleted),
        server_version=server_version,
        dirty=bool(dirty),
        base=stored_base(base, values, status, bool(deleted), server_version, bool(dirty)),
        conflict=json.loads(conflict) if conflict else None,
        dup_state=dup_state,
        created_at=created_at,
        created_by=created_by,
        updated_at=updated_at,
        updated_by=updated_by,
    )


def _to_summary(row: Sequence[Any]) -> Summary:
    rid, form, title, grid, status, dirty, has_conflict, dup_state, updated_at, key = row
    return Summary(
        rid, form, title, grid, status, bool(dirty), bool(has_conflict), dup_state, updated_at, key
    )
