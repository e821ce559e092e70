"""The write side of the local store: saves with history and outbox, deletes, bulk inserts.

Every save is one transaction that writes the record, one append-only history row, one
outbox op for sync, the natural keys, the references, the person index used by the
duplicate guard and the search terms. A crash therefore leaves either all of them or none.
The store never validates: drafts must always save (never lose what a person typed);
validation lives in ``rules`` and only gates "complete". A part ``Store`` composes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from json.encoder import encode_basestring
from typing import Any

from app.core import ids
from app.core.forms import Form, FormSet
from app.core.records import Record, clean, diff, dumps
from app.core.store import places
from app.core.store.db import Database
from app.core.store.derive import Derived
from app.core.store.outbox import STATUS_FIELD
from app.core.store.reads import Reads

try:
    import orjson as _orjson
except ImportError:  # an optional speed-up (as in ``records``): the plain way gives the same text
    _orjson = None  # type: ignore[assignment]


def write_side_tables(
    conn: sqlite3.Connection, rid: int, record_id: str, form: str, derived: Derived | None
) -> None:
    """Replace a record's keys, refs, person row and search terms (None: remove them)."""
    conn.execute("DELETE FROM record_keys WHERE rid = ?", (rid,))
    conn.execute("DELETE FROM refs WHERE src = ?", (record_id,))
    conn.execute("DELETE FROM people WHERE rid = ?", (rid,))
    conn.execute("DELETE FROM search WHERE rowid = ?", (rid,))
    places.remove(conn, rid)
    if derived is None:
        return
    conn.executemany(
        "INSERT OR IGNORE INTO record_keys (form, key, rid) VALUES (?, ?, ?)",
        [(form, key, rid) for key in derived.keys],
    )
    conn.executemany(
        "INSERT OR IGNORE INTO refs (src, field, dst) VALUES (?, ?, ?)",
        [(record_id, f, dst) for f, dst in derived.refs],
    )
    if derived.person:
        conn.execute(
            "INSERT INTO people (rid, form, name, pinyin, birth, house) VALUES (?, ?, ?, ?, ?, ?)",
            (rid, form, *derived.person),
        )
    if derived.terms:
        conn.execute("INSERT INTO search (rowid, terms) VALUES (?, ?)", (rid, derived.terms))
    places.write(conn, [(rid, derived.address)])


VOID_REASON = "_void_reason"  # a history-only pseudo-field: why a record was voided (作废)


def created(values: Mapping[str, Any]) -> dict[str, list[Any]]:
    """``diff({}, values)`` of clean values (none is empty): every field from None."""
    return {key: [None, value] for key, value in values.items()}


def encode_created(values: dict[str, Any]) -> tuple[str, str]:
    """(``dumps(values)``, ``dumps(created(values))``) of clean values: JSON encoding was a
    third of a bulk insert's Python.

    For text values (nearly every imported value) orjson writes the same bytes as ``dumps``
    in a fifth of the time (measured: 20 000 residents 0.137 -> 0.062 s); without orjson, or
    for a text it refuses (a lone surrogate), each key and value is encoded once with
    ``json.encoder.encode_basestring``, as ``dumps`` does; other values take ``dumps``. Keys
    must be in sorted order, as ``clean`` leaves them (tests hold this against ``dumps``)."""
    texts = values.values()
    if not all(type(v) is str for v in texts):
        return dumps(values), dumps(created(values))
    if not values:
        return "{}", "{}"
    if _orjson is not None:
        try:
            changes = {key: [None, value] for key, value in values.items()}
            return _orjson.dumps(values).decode(), _orjson.dumps(changes).decode()
        except TypeError:
            pass
    pairs = list(zip(map(encode_basestring, values), map(encode_basestring, texts), strict=True))
    data = ",".join(map(":".join, pairs))
    changes_text = "],".join(map(":[null,".join, pairs))
    return "{" + data + "}", "{" + changes_text + "]}"


def with_status(values: Mapping[str, Any], encoded: str, status: str) -> str:
    """``dumps({**values, STATUS_FIELD: status})`` from ``encoded`` = ``dumps(values)``.

    Field ids sort after "_status", so the status goes first and the values follow as they
    were encoded: no second encoding of the record (tests hold this against ``dumps``)."""
    if values and min(values) <= STATUS_FIELD:
        return dumps({**values, STATUS_FIELD: status})
    head = _status_head(status)
    return head + "}" if encoded == "{}" else head + "," + encoded[1:]


@lru_cache(maxsize=16)
def _status_head(status: str) -> str:
    return dumps({STATUS_FIELD: status})[:-1]


class Writes:
    """Saves, deletes and bulk inserts (``Store`` delegates its writes here).

    ``derive`` is asked for each record's derived values; the Store passes its own
    ``derive`` method so a test or caller can swap it per store.
    """

    def __init__(
        self,
        db: Database,
        reads: Reads,
        formset: FormSet,
        derive: Callable[[Form, Mapping[str, Any]], Derived],
    ) -> None:
        self._db, self._reads, self.formset, self._derive = db, reads, formset, derive
        self.conn = db.conn

    def save(
        self,
        form_id: str,
        data: Mapping[str, Any],
        *,
        record_id: str | None = None,
        status: str = "draft",
        author: str = "",
    ) -> Record:
        """Create or update a record; no validation (drafts always save).

        Writes history and outbox only when something changed. Returns the stored record.
        """
        form = self.formset.form(form_id)
        values = clean(data)
        with self._db.transaction():
            old = self._reads.get(record_id) if record_id else None
            if old is not None and old.form != form_id:
                raise ValueError(f"record {record_id} is a {old.form}, not a {form_id}")
            now, stamp = ids.now_iso(), self._db.hlc()
            derived = self._derive(form, values)
            if old is None:
                record = self._insert(
                    form, record_id or ids.uuid7(), values, status, author, now, derived
                )
                changes = diff({}, values)
                kind = "create"
            else:
                changes = diff(old.data, values)
                if old.status != status:
                    changes[STATUS_FIELD] = [old.status, status]
                if not changes and not old.deleted:
                    return old
                record = self._update(old, form, values, status, author, now, derived)
                kind = "update"
            self._log(record, kind, changes, author, now, stamp)
        return record

    def _insert(
        self,
        form: Form,
        record_id: str,
        values: dict[str, Any],
        status: str,
        author: str,
        now: str,
        derived: Derived,
    ) -> Record:
        cur = self.conn.execute(
            "INSERT INTO records (id, form, form_version, grid, title, sort_key, data, status, "
            "dirty, created_at, created_by, updated_at, updated_by) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?)",
            (
                record_id,
                form.id,
                form.version,
                derived.grid,
                derived.title,
                derived.sort,
                dumps(values),
                status,
                now,
                author,
                now,
                author,
            ),
        )
        write_side_tables(self.conn, cur.lastrowid or 0, record_id, form.id, derived)
        return Record(
            id=record_id,
            form=form.id,
            form_version=form.version,
            data=values,
            status=status,
            grid=derived.grid,
            title=derived.title,
            created_at=now,
            created_by=author,
            updated_at=now,
            updated_by=author,
        )

    def _update(
        self,
        old: Record,
        form: Form,
        values: dict[str, Any],
        status: str,
        author: str,
        now: str,
        derived: Derived,
    ) -> Record:
        self.conn.execute(
            "UPDATE records SET form_version = ?, grid = ?, title = ?, sort_key = ?, data = ?, "
            "status = ?, deleted = 0, dirty = 1, updated_at = ?, updated_by = ? WHERE id = ?",
            (
                form.version,
                derived.grid,
                derived.title,
                derived.sort,
                dumps(values),
                status,
                now,
                author,
                old.id,
            ),
        )
        write_side_tables(self.conn, self._reads.rid(old.id), old.id, form.id, derived)
        old.data, old.status, old.grid, old.title = values, status, derived.grid, derived.title
        old.deleted, old.dirty, old.updated_at, old.updated_by = False, True, now, author
        old.form_version = form.version
        return old

    def _log(
        self,
        record: Record,
        kind: str,
        changes: dict[str, list[Any]],
        author: str,
        now: str,
        stamp: str,
    ) -> None:
        """Append the history row and the outbox op for one save."""
        self.conn.execute(
            "INSERT INTO history (record_id, at, author, kind, changes) VALUES (?, ?, ?, ?, ?)",
            (record.id, now, author, kind, dumps(changes)),
        )
        fields = {k: v[1] for k, v in changes.items()} if kind != "delete" else {}
        if kind == "create":
            fields[STATUS_FIELD] = record.status
        op_id = self._db.next_op_id()
        self.conn.execute(
            "INSERT INTO outbox (op_id, record_id, form, kind, base_version, fields, edited_at, author) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                op_id,
                record.id,
                record.form,
                kind,
                record.server_version,
                dumps(fields),
                stamp,
                author,
            ),
        )

    def delete(self, record_id: str, author: str = "", reason: str | None = None) -> Record:
        """Tombstone a record: it leaves lists, keys and search; history and outbox keep it.

        ``reason`` (作废原因, a code) goes into the history entry only: the op syncs as a
        plain delete, which the platform keeps as a tombstone."""
        with self._db.transaction():
            record = self._reads.get(record_id)
            if record is None:
                raise KeyError(record_id)
            if record.deleted:
                return record
            now = ids.now_iso()
            self.conn.execute(
                "UPDATE records SET deleted = 1, dirty = 1, updated_at = ?, updated_by = ? WHERE id = ?",
                (now, author, record_id),
            )
            write_side_tables(self.conn, self._reads.rid(record_id), record_id, record.form, None)
            record.deleted, record.updated_at, record.updated_by = True, now, author
            note = {VOID_REASON: [None, reason]} if reason else {}
            self._log(record, "delete", note, author, now, self._db.hlc())
        return record

    def insert_many(
        self,
        form_id: str,
        rows: Sequence[tuple[str | None, Mapping[str, Any], str]],
        author: str = "",
        *,
        local_change: bool = True,
        derived: Sequence[Derived] | None = None,
    ) -> list[str]:
        """Bulk create of new records (import, demo): the effects of ``save``, batched.

        Callers must already know the rows are new (the duplicate guard ran); one
        executemany per table instead of a dozen statements per row. With
        ``local_change=False`` the rows are base data (the demo community, a city mirror):
        not dirty, no history, no outbox, so they are never pushed to the platform.
        ``derived``: each row's ``derive`` when the caller already has it (an import derives
        once for its duplicate check); the rows' values must then be ``clean`` already.
        """
        form = self.formset.form(form_id)
        with self._db.transaction():
            now = ids.now_iso()
            if derived is None:
                values = [clean(data) for _, data, _ in rows]
                derived = [self._derive(form, v) for v in values]
            else:
                values = [dict(data) for _, data, _ in rows]
            new_ids = ids.uuid7_many(sum(1 for r in rows if not r[0]))
            prepared = [
                (record_id or next(new_ids), v, status, d)
                for (record_id, _, status), v, d in zip(rows, values, derived, strict=True)
            ]
            encoded = [encode_created(v) for _, v, _, _ in prepared]
            self.conn.executemany(
                "INSERT INTO records (id, form, form_version, grid, title, sort_key, data, "
                "status, dirty, created_at, created_by, updated_at, updated_by) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (rid, form.id, form.version, d.grid, d.title, d.sort, text, st)
                    + (int(local_change),)
                    + (now, author, now, author)
                    for (rid, _, st, d), (text, _) in zip(prepared, encoded, strict=True)
                ],
            )
            self._bulk_side_tables(form, prepared)
            if local_change:
                self._bulk_log(form, prepared, encoded, author, now)
        return [p[0] for p in prepared]

    def _bulk_log(
        self,
        form: Form,
        prepared: list[tuple[str, dict[str, Any], str, Derived]],
        encoded: list[tuple[str, str]],
        author: str,
        now: str,
    ) -> None:
        """History rows and outbox create ops for freshly inserted records (``encoded``:
        each record's values and creation changes as ``dumps`` writes them)."""
        stamp, first, device = self._db.hlc(), self._db.next_seq(len(prepared)), self._db.device_id
        self.conn.executemany(
            "INSERT INTO history (record_id, at, author, kind, changes) VALUES (?, ?, ?, 'create', ?)",
            [
                (rid, now, author, changes)
                for (rid, _, _, _), (_, changes) in zip(prepared, encoded, strict=True)
            ],
        )
        self.conn.executemany(
            "INSERT INTO outbox (op_id, record_id, form, kind, base_version, fields, edited_at, "
            "author) VALUES (?, ?, ?, 'create', NULL, ?, ?, ?)",
            [
                (f"{device}:{first + i}", rid, form.id, with_status(v, text, st)) + (stamp, author)
                for i, ((rid, v, st, _), (text, _)) in enumerate(
                    zip(prepared, encoded, strict=True)
                )
            ],
        )

    def _bulk_side_tables(
        self, form: Form, prepared: list[tuple[str, dict[str, Any], str, Derived]]
    ) -> None:
        rids = (
            dict(
                self.conn.execute(
                    "SELECT id, rid FROM records WHERE rid >= (SELECT rid FROM records WHERE id = ?)",
                    (prepared[0][0],),
                )
            )
            if prepared
            else {}
        )
        c = self.conn
        c.executemany(
            "INSERT OR IGNORE INTO record_keys (form, key, rid) VALUES (?, ?, ?)",
            [(form.id, k, rids[rid]) for rid, _, _, d in prepared for k in d.keys],
        )
        c.executemany(
            "INSERT OR IGNORE INTO refs (src, field, dst) VALUES (?, ?, ?)",
            [(rid, f, dst) for rid, _, _, d in prepared for f, dst in d.refs],
        )
        c.executemany(
            "INSERT INTO people (rid, form, name, pinyin, birth, house) VALUES (?, ?, ?, ?, ?, ?)",
            [(rids[rid], form.id, *d.person) for rid, _, _, d in prepared if d.person],
        )
        c.executemany(
            "INSERT INTO search (rowid, terms) VALUES (?, ?)",
            [(rids[rid], d.terms) for rid, _, _, d in prepared if d.terms],
        )
        places.write(c, [(rids[rid], d.address) for rid, _, _, d in prepared])

    def decide_duplicate(
        self, record_id: str, other_id: str, decision: str, author: str = ""
    ) -> None:
        """Record a person's answer to "possibly the same" (audit trail for the guard)."""
        with self._db.transaction():
            cur = self.conn.execute(
                "INSERT INTO dedup_decisions (record_id, other_id, decision, author, at) VALUES (?, ?, ?, ?, ?)",
                (record_id, other_id, decision, author, ids.now_iso()),
            )
            if decision == "different":  # the platform hears it with the next push (§9.2)
                self.conn.execute("INSERT INTO dedup_outbox (seq) VALUES (?)", (cur.lastrowid,))
            else:  # a later answer about the pair takes an unsent "different" back
                self.conn.execute(
                    "DELETE FROM dedup_outbox WHERE seq IN (SELECT seq FROM dedup_decisions "
                    "WHERE (record_id = ?1 AND other_id = ?2) OR (record_id = ?2 AND other_id = ?1))",
                    (record_id, other_id),
                )
            state = "different" if decision == "different" else "suspected"
            self.conn.execute("UPDATE records SET dup_state = ? WHERE id = ?", (state, record_id))
