"""The local store: one SQLite file per data dir (WAL), records + history + outbox.

Every save is one transaction that writes the record, one append-only history row, one
outbox op for sync, the natural keys, the references, the person index used by the
duplicate guard and the search terms. A crash therefore leaves either all of them or none.
The store never validates: drafts must always save (never lose what a person typed);
validation lives in ``rules`` and only gates "complete".
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core import ids, paths
from app.core.formset import Form, FormSet, load_formset
from app.core.records import HistoryEntry, Record, Summary, clean, diff, dumps
from app.core.schema import migrate
from app.core.search import fts_query, name_terms, record_terms
from app.core.textnorm import normalize_key

STATUS_FIELD = "_status"  # outbox pseudo-field: a status change travels with the field changes

_RECORD_COLUMNS = (
    "id, form, form_version, grid, title, data, status, deleted, server_version, dirty, base, "
    "conflict, dup_state, created_at, created_by, updated_at, updated_by"
)
_SUMMARY_COLUMNS = (
    "id, form, title, grid, status, dirty, conflict IS NOT NULL, dup_state, updated_at"
)
_SUMMARY_COLUMNS_R = ", ".join(
    "r.conflict IS NOT NULL" if c.startswith("conflict") else f"r.{c}"
    for c in (c.strip() for c in _SUMMARY_COLUMNS.split(","))
)


@dataclass(frozen=True)
class Derived:
    """Everything a record's values imply for the side tables."""

    grid: str | None
    title: str
    keys: tuple[str, ...]
    refs: tuple[tuple[str, str], ...]
    terms: str
    person: tuple[str, str, str | None, str | None] | None


@dataclass(frozen=True)
class Grid:
    """A grid (网格): its community and its boundary as [(lon, lat), ...] in WGS84."""

    code: str
    name: str
    community_code: str
    community_name: str
    level: str = "1"
    polygon: list[tuple[float, float]] = field(default_factory=list)
    worker: str | None = None


class Store:
    """The device's records. Thread-safe enough for one writer: use one Store per thread."""

    def __init__(self, path: str | Path, formset: FormSet | None = None) -> None:
        self.path = Path(path)
        self.formset = formset or load_formset()
        self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.conn.execute("PRAGMA foreign_keys = ON")
        self.conn.execute("PRAGMA busy_timeout = 10000")
        migrate(self.conn)
        self._depth = 0
        self._lock = threading.RLock()
        self.device_id = self._meta_default("device_id", ids.uuid7().replace("-", "")[:16])

    @classmethod
    def open(cls, data_dir: str | Path | None = None, formset: FormSet | None = None) -> Store:
        """Open (creating if needed) the store in a data dir."""
        return cls(paths.db_path(data_dir), formset)

    @property
    def db(self) -> Any:
        """The same connection as a ``sqlite_utils.Database`` (loaded on first use: it costs
        ~0.15 s of start-up the app does not need)."""
        import sqlite_utils

        return sqlite_utils.Database(self.conn)

    def close(self) -> None:
        """Checkpoint and close the file."""
        self.conn.close()

    # -- transactions and meta -------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction; nested calls join the outer one (all or nothing)."""
        with self._lock:
            if self._depth == 0:
                self.conn.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if self._depth == 0:
                    self.conn.execute("ROLLBACK")
                raise
            self._depth -= 1
            if self._depth == 0:
                self.conn.execute("COMMIT")

    def meta(self, key: str, default: str | None = None) -> str | None:
        """A value from the meta table (device id, cursors, worker settings)."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        """Set a meta value (joins the current transaction if any)."""
        with self.transaction():
            self.conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def _meta_default(self, key: str, value: str) -> str:
        existing = self.meta(key)
        if existing is not None:
            return existing
        self.set_meta(key, value)
        return value

    def _next_seq(self, count: int = 1) -> int:
        """Reserve ``count`` local op sequence numbers; returns the first."""
        first = int(self.meta("op_seq", "0") or 0) + 1
        self.set_meta("op_seq", str(first + count - 1))
        return first

    def hlc(self) -> str:
        """A hybrid-logical-clock stamp: wall time, but never behind the last one issued."""
        now = ids.now_iso()
        last = self.meta("hlc", "") or ""
        last_time, _, last_count = last.partition("#")
        stamp = f"{now}#0000" if now > last_time else f"{last_time}#{int(last_count or 0) + 1:04d}"
        self.set_meta("hlc", stamp)
        return stamp

    # -- derived data ----------------------------------------------------------------------

    def derive(self, form: Form, data: Mapping[str, Any]) -> Derived:
        """Keys, references, search terms and person-index row implied by the values."""
        roles = form.roles
        keys = tuple(
            k for k in (self.natural_key(form, data, fields) for fields in form.natural_keys) if k
        )
        refs = tuple(
            (f.id, str(data[f.id]))
            for f in form.fields.values()
            if f.type == "reference" and data.get(f.id)
        )
        names = [str(data[f]) for f in roles.name if data.get(f)]
        terms = record_terms(
            names,
            [str(data[f]) for f in roles.id if data.get(f)],
            [str(data[f]) for f in roles.phone if data.get(f)],
            [str(data[f]) for f in roles.address if data.get(f)],
        )
        person = None
        if names and (roles.birth_date or roles.house):
            pinyin = next((t for t in name_terms(names[0]) if t.isascii()), names[0])
            birth = data.get(roles.birth_date) if roles.birth_date else None
            house = data.get(roles.house) if roles.house else None
            person = (names[0], pinyin, birth, house)
        grid = data.get(roles.grid) if roles.grid else None
        return Derived(grid, form.title_of(data), keys, refs, terms, person)

    @staticmethod
    def natural_key(form: Form, data: Mapping[str, Any], fields: Sequence[str]) -> str | None:
        """The normalised natural key for one key declaration, or None if a part is empty."""
        parts = []
        for field_id in fields:
            value = data.get(field_id)
            if value is None or str(value).strip() == "":
                return None
            parts.append(normalize_key(str(value)))
        return "|".join(parts)

    def _write_side_tables(
        self, rid: int, record_id: str, form: str, derived: Derived | None
    ) -> None:
        """Replace a record's keys, refs, person row and search terms (None: remove them)."""
        c = self.conn
        c.execute("DELETE FROM record_keys WHERE record_id = ?", (record_id,))
        c.execute("DELETE FROM refs WHERE src = ?", (record_id,))
        c.execute("DELETE FROM people WHERE rid = ?", (rid,))
        c.execute("DELETE FROM search WHERE rowid = ?", (rid,))
        if derived is None:
            return
        c.executemany(
            "INSERT OR IGNORE INTO record_keys (form, key, record_id) VALUES (?, ?, ?)",
            [(form, key, record_id) for key in derived.keys],
        )
        c.executemany(
            "INSERT OR IGNORE INTO refs (src, field, dst) VALUES (?, ?, ?)",
            [(record_id, f, dst) for f, dst in derived.refs],
        )
        if derived.person:
            c.execute(
                "INSERT INTO people (rid, form, name, pinyin, birth, house) VALUES (?, ?, ?, ?, ?, ?)",
                (rid, form, *derived.person),
            )
        if derived.terms:
            c.execute("INSERT INTO search (rowid, terms) VALUES (?, ?)", (rid, derived.terms))

    # -- writes ----------------------------------------------------------------------------

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
        with self.transaction():
            old = self.get(record_id) if record_id else None
            if old is not None and old.form != form_id:
                raise ValueError(f"record {record_id} is a {old.form}, not a {form_id}")
            now, stamp = ids.now_iso(), self.hlc()
            derived = self.derive(form, values)
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
            "INSERT INTO records (id, form, form_version, grid, title, data, status, dirty, "
            "created_at, created_by, updated_at, updated_by) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?)",
            (
                record_id,
                form.id,
                form.version,
                derived.grid,
                derived.title,
                dumps(values),
                status,
                now,
                author,
                now,
                author,
            ),
        )
        self._write_side_tables(cur.lastrowid or 0, record_id, form.id, derived)
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
            "UPDATE records SET form_version = ?, grid = ?, title = ?, data = ?, status = ?, "
            "deleted = 0, dirty = 1, updated_at = ?, updated_by = ? WHERE id = ?",
            (form.version, derived.grid, derived.title, dumps(values), status, now, author, old.id),
        )
        self._write_side_tables(self._rid(old.id), old.id, form.id, derived)
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
        fields = {k: v[1] for k, v in changes.items()}
        if kind == "create":
            fields[STATUS_FIELD] = record.status
        op_id = f"{self.device_id}:{self._next_seq()}"
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

    def delete(self, record_id: str, author: str = "") -> Record:
        """Tombstone a record: it leaves lists, keys and search; history and outbox keep it."""
        with self.transaction():
            record = self.get(record_id)
            if record is None:
                raise KeyError(record_id)
            if record.deleted:
                return record
            now = ids.now_iso()
            self.conn.execute(
                "UPDATE records SET deleted = 1, dirty = 1, updated_at = ?, updated_by = ? WHERE id = ?",
                (now, author, record_id),
            )
            self._write_side_tables(self._rid(record_id), record_id, record.form, None)
            record.deleted, record.updated_at, record.updated_by = True, now, author
            self._log(record, "delete", {}, author, now, self.hlc())
        return record

    def save_many(
        self,
        form_id: str,
        rows: Iterable[tuple[str | None, Mapping[str, Any], str]],
        author: str = "",
    ) -> list[str]:
        """Bulk create/update for imports: (record_id or None, values, status) per row.

        Same effects as ``save`` per row, batched; runs inside the caller's transaction if any,
        so an import is all or nothing.
        """
        ids_out: list[str] = []
        with self.transaction():
            for record_id, data, status in rows:
                ids_out.append(
                    self.save(form_id, data, record_id=record_id, status=status, author=author).id
                )
        return ids_out

    def insert_many(
        self,
        form_id: str,
        rows: Sequence[tuple[str | None, Mapping[str, Any], str]],
        author: str = "",
        *,
        local_change: bool = True,
    ) -> list[str]:
        """Bulk create of new records (import, demo): the effects of ``save``, batched.

        Callers must already know the rows are new (the duplicate guard ran); one
        executemany per table instead of a dozen statements per row. With
        ``local_change=False`` the rows are base data (the demo community, a city mirror):
        not dirty, no history, no outbox, so they are never pushed to the platform.
        """
        form = self.formset.form(form_id)
        with self.transaction():
            now = ids.now_iso()
            prepared = []
            for record_id, data, status in rows:
                values = clean(data)
                derived = self.derive(form, values)
                prepared.append((record_id or ids.uuid7(), values, status, derived))
            self.conn.executemany(
                "INSERT INTO records (id, form, form_version, grid, title, data, status, dirty, "
                "created_at, created_by, updated_at, updated_by) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (rid, form.id, form.version, d.grid, d.title, dumps(v), st, int(local_change))
                    + (now, author, now, author)
                    for rid, v, st, d in prepared
                ],
            )
            self._bulk_side_tables(form, prepared)
            if local_change:
                self._bulk_log(form, prepared, author, now)
        return [p[0] for p in prepared]

    def _bulk_log(
        self,
        form: Form,
        prepared: list[tuple[str, dict[str, Any], str, Derived]],
        author: str,
        now: str,
    ) -> None:
        """History rows and outbox create ops for freshly inserted records."""
        stamp, first = self.hlc(), self._next_seq(len(prepared))
        self.conn.executemany(
            "INSERT INTO history (record_id, at, author, kind, changes) VALUES (?, ?, ?, 'create', ?)",
            [(rid, now, author, dumps(diff({}, v))) for rid, v, _, _ in prepared],
        )
        self.conn.executemany(
            "INSERT INTO outbox (op_id, record_id, form, kind, base_version, fields, edited_at, "
            "author) VALUES (?, ?, ?, 'create', NULL, ?, ?, ?)",
            [
                (f"{self.device_id}:{first + i}", rid, form.id, dumps({**v, STATUS_FIELD: st}))
                + (stamp, author)
                for i, (rid, v, st, _) in enumerate(prepared)
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
            "INSERT OR IGNORE INTO record_keys (form, key, record_id) VALUES (?, ?, ?)",
            [(form.id, k, rid) for rid, _, _, d in prepared for k in d.keys],
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

    def decide_duplicate(
        self, record_id: str, other_id: str, decision: str, author: str = ""
    ) -> None:
        """Record a person's answer to "possibly the same" (audit trail for the guard)."""
        with self.transaction():
            self.conn.execute(
                "INSERT INTO dedup_decisions (record_id, other_id, decision, author, at) VALUES (?, ?, ?, ?, ?)",
                (record_id, other_id, decision, author, ids.now_iso()),
            )
            state = "different" if decision == "different" else "suspected"
            self.conn.execute("UPDATE records SET dup_state = ? WHERE id = ?", (state, record_id))

    def decisions(self, record_id: str) -> list[tuple[str, str, str, str]]:
        """(other_id, decision, author, at) for a record, oldest first."""
        return list(
            self.conn.execute(
                "SELECT other_id, decision, author, at FROM dedup_decisions WHERE record_id = ? ORDER BY seq",
                (record_id,),
            )
        )

    # -- grids (base data: community -> grid, with boundary polygons) ---------------------

    def put_grid(self, grid: Grid) -> None:
        """Create or replace a grid definition."""
        with self.transaction():
            self.conn.execute(
                "INSERT OR REPLACE INTO grids (code, name, community_code, community_name, level, polygon, "
                "worker) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    grid.code,
                    grid.name,
                    grid.community_code,
                    grid.community_name,
                    grid.level,
                    json.dumps(grid.polygon) if grid.polygon else None,
                    grid.worker,
                ),
            )

    def grids(self) -> list[Grid]:
        """All grids, by community then code."""
        rows = self.conn.execute(
            "SELECT code, name, community_code, community_name, level, polygon, worker FROM grids "
            "ORDER BY community_code, code"
        )
        return [
            Grid(c, n, cc, cn, lv, [tuple(p) for p in json.loads(pg)] if pg else [], w)
            for c, n, cc, cn, lv, pg, w in rows
        ]

    # -- autosave (the open form's unsaved state) ------------------------------------------

    def autosave_put(
        self, slot: str, form_id: str, record_id: str | None, data: Mapping[str, Any]
    ) -> None:
        """Keep what is typed in an open form, without history or outbox (it is not a save)."""
        with self.transaction():
            self.conn.execute(
                "INSERT INTO autosave (slot, form, record_id, data, saved_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (slot) DO UPDATE SET form = excluded.form, record_id = excluded.record_id, "
                "data = excluded.data, saved_at = excluded.saved_at",
                (slot, form_id, record_id, dumps(dict(data)), ids.now_iso()),
            )

    def autosaves(self) -> list[tuple[str, str, str | None, dict[str, Any], str]]:
        """(slot, form, record_id, data, saved_at) of every unsaved open form."""
        rows = self.conn.execute(
            "SELECT slot, form, record_id, data, saved_at FROM autosave ORDER BY saved_at"
        )
        return [(s, f, r, json.loads(d), t) for s, f, r, d, t in rows]

    def autosave_clear(self, slot: str) -> None:
        """Forget an open form's unsaved state (after a save or an explicit discard)."""
        with self.transaction():
            self.conn.execute("DELETE FROM autosave WHERE slot = ?", (slot,))

    # -- reads -----------------------------------------------------------------------------

    def _rid(self, record_id: str) -> int:
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
        keys = [k for k in (self.natural_key(form, data, f) for f in form.natural_keys) if k]
        if not keys:
            return []
        marks = ",".join("?" * len(keys))
        rows = self.conn.execute(
            f"SELECT DISTINCT record_id FROM record_keys WHERE form = ? AND key IN ({marks})",
            (form_id, *keys),
        )
        return [r[0] for r in rows]

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
        """Live records for lists, ordered by title; filters combine with AND."""
        where, args = _filters(form, grid, status, dirty, conflict, dup)
        rows = self.conn.execute(
            f"SELECT {_SUMMARY_COLUMNS} FROM records WHERE {where} ORDER BY title, id LIMIT ? OFFSET ?",
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
        """Search-as-you-type over names, pinyin, initials, ID/phone tails and address pieces."""
        query = fts_query(text)
        if query is None:
            return []
        sql = (
            f"SELECT {_SUMMARY_COLUMNS_R} FROM search CROSS JOIN records r ON r.rid = search.rowid "
            "WHERE search MATCH ? AND r.deleted = 0"
        )
        args: list[Any] = [query]
        if form:
            sql += " AND r.form = ?"
            args.append(form)
        sql += " LIMIT ?"
        args.append(limit)
        return [_to_summary(r) for r in self.conn.execute(sql, args)]

    def referrers(self, record_id: str, field: str | None = None) -> list[str]:
        """Ids of live records whose reference fields point at ``record_id``."""
        sql = "SELECT f.src FROM refs f JOIN records r ON r.id = f.src WHERE f.dst = ? AND r.deleted = 0"
        args: list[Any] = [record_id]
        if field:
            sql += " AND f.field = ?"
            args.append(field)
        return [r[0] for r in self.conn.execute(sql + " ORDER BY r.title", args)]

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
            "FROM outbox WHERE state = 'pending' ORDER BY seq LIMIT ?",
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

    def people_by_pinyin(
        self, form: str, pinyin: str
    ) -> list[tuple[str, str, str, str | None, str | None]]:
        """(id, name, pinyin, birth, house) of live people whose full pinyin is ``pinyin``."""
        return self._people("p.pinyin = ?", form, pinyin)

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
    return Record(
        id=rid,
        form=form,
        form_version=version,
        grid=grid,
        title=title,
        data=json.loads(data),
        status=status,
        deleted=bool(deleted),
        server_version=server_version,
        dirty=bool(dirty),
        base=json.loads(base) if base else None,
        conflict=json.loads(conflict) if conflict else None,
        dup_state=dup_state,
        created_at=created_at,
        created_by=created_by,
        updated_at=updated_at,
        updated_by=updated_by,
    )


def _to_summary(row: Sequence[Any]) -> Summary:
    rid, form, title, grid, status, dirty, has_conflict, dup_state, updated_at = row
    return Summary(
        rid, form, title, grid, status, bool(dirty), bool(has_conflict), dup_state, updated_at
    )
