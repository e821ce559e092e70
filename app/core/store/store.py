"""The local store: one SQLite file per data dir (WAL), records + history + outbox.

Every save is one transaction that writes the record, one append-only history row, one
outbox op for sync, the natural keys, the references, the person index used by the
duplicate guard and the search terms. A crash therefore leaves either all of them or none.
The store never validates: drafts must always save (never lose what a person typed);
validation lives in ``rules`` and only gates "complete".

This module holds the writes, transactions and meta; the queries are in ``reads`` (a mixin
``Store`` inherits) and what values imply for the side tables is in ``derive``.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core import ids, paths
from app.core.forms import Form, FormSet, load_formset
from app.core.records import Record, clean, diff, dumps
from app.core.store import derive as derivation
from app.core.store.derive import Derived
from app.core.store.reads import _RECORD_COLUMNS as _RECORD_COLUMNS
from app.core.store.reads import _SUMMARY_COLUMNS as _SUMMARY_COLUMNS
from app.core.store.reads import _SUMMARY_COLUMNS_R as _SUMMARY_COLUMNS_R
from app.core.store.reads import StoreReads
from app.core.store.reads import _filters as _filters
from app.core.store.reads import _to_record as _to_record
from app.core.store.reads import _to_summary as _to_summary
from app.core.store.schema import migrate

STATUS_FIELD = "_status"  # outbox pseudo-field: a status change travels with the field changes


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


class Store(StoreReads):
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
        self._device_id = self._meta_default("device_id", ids.new_device_id())

    @property
    def device_id(self) -> str:
        """This data dir's device id, read each time: the sync replaces it when the platform
        finds the data dir was copied or restored (``sync.replica.identity``), and every Store
        open on the file must then number new ops under the new id."""
        with contextlib.suppress(sqlite3.ProgrammingError):  # closed: the id it had last
            self._device_id = self.meta("device_id") or self._device_id
        return self._device_id

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
        """Keys, references, search terms and person-index row implied by the values.

        A method (not just the function) so a test or caller can swap it per store.
        """
        return derivation.derive(form, data)

    natural_key = staticmethod(derivation.natural_key)

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
        stamp, first, device = self.hlc(), self._next_seq(len(prepared)), self.device_id
        self.conn.executemany(
            "INSERT INTO history (record_id, at, author, kind, changes) VALUES (?, ?, ?, 'create', ?)",
            [(rid, now, author, dumps(diff({}, v))) for rid, v, _, _ in prepared],
        )
        self.conn.executemany(
            "INSERT INTO outbox (op_id, record_id, form, kind, base_version, fields, edited_at, "
            "author) VALUES (?, ?, ?, 'create', NULL, ?, ?, ?)",
            [
                (f"{device}:{first + i}", rid, form.id, dumps({**v, STATUS_FIELD: st}))
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
