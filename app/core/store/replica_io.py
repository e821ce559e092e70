"""The narrow interface the device-side sync state (``sync.replica``) has on the store.

Why: SQL stays inside ``app.core.store``. The replica decides what a pushed answer, a pulled
record or a server merge means; the statements it needs to read and write the records, their
side tables, history and outbox are named here, each one statement (or one batch), so the
replica's steps keep running inside the caller's transaction exactly as before.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

from app.core import ids
from app.core.forms import FormSet
from app.core.records import canonical_json_all, dumps, state_of, stored_base
from app.core.store import places
from app.core.store.db import Database
from app.core.store.derive import Derived
from app.core.store.outbox import OutboxState
from app.core.store.reads import Reads
from app.core.store.writes import write_side_tables

_RECORD_ROW = "rid, id, form, data, status, deleted, server_version, dirty, base, conflict"
_CHUNK = 500  # ids per IN (...) query

PENDING = OutboxState.PENDING.value


def _loads(text: str | None) -> Any:
    return json.loads(text) if text else None


def _chunks(values: Sequence[str]) -> Iterator[tuple[str, Sequence[str]]]:
    """(placeholders, part) per ``_CHUNK`` values, for ``IN (...)`` queries."""
    for start in range(0, len(values), _CHUNK):
        part = values[start : start + _CHUNK]
        yield ",".join("?" * len(part)), part


def _id_list(values: Sequence[Any]) -> str:
    """Ids as one JSON text for ``json_each``: a single bound parameter instead of one per id
    (a batch of 1,000 renames names 2,000 ids), encoded by ``canonical_json_all`` (orjson
    after one columnar plainness pass)."""
    return canonical_json_all([values])[0]


# id rewrites in bulk (``ReplicaIO.load_moves``): the run's old ids, the new id of one, and
# the tables and columns that name a record by id
_MOVED = "SELECT old FROM temp.rekey_moves"
_MOVED_REFD = "SELECT old FROM temp.rekey_moves WHERE refd"
_NEW_OF = "SELECT new FROM temp.rekey_moves WHERE old = {}"
# Ops of a renamed record whose base version is one of its (old) record's versions keep
# naming that record on the wire (``outbox_bases``, PROTOCOL.md §5.4); the first name stays.
_KEEP_BASES = (
    "INSERT OR IGNORE INTO outbox_bases (seq, record_id) SELECT seq, record_id FROM outbox "
    "WHERE record_id {} AND base_version >= 1"
)
_MOVED_COLUMNS = (
    ("records", "id"),
    ("refs", "src"),
    ("outbox", "record_id"),
    ("task_items", "record_id"),
    ("autosave", "record_id"),
)


def _naming_moved(column: str, fields: Mapping[str, Sequence[str]]) -> tuple[str, list[str]]:
    """A condition: the JSON in ``column`` holds, in one of its form's ``fields``, a loaded
    old id of a referenced form (with its parameters)."""
    terms: list[str] = []
    params: list[str] = []
    for form, names in fields.items():
        found = " OR ".join(f"json_extract({column}, ?) IN ({_MOVED_REFD})" for _ in names)
        terms.append(f"(form = ? AND ({found}))")
        params += [form, *(_json_path(n) for n in names)]
    return " OR ".join(terms) or "0", params


def _json_path(name: str) -> str:
    """The JSON path of a top-level key (field ids are ``[a-z][a-z0-9_]*``: forms.field)."""
    return f'$."{name}"'


# A record's ``dup_state`` says its latest answer (``Writes.decide_duplicate``). Once a merged
# pair's "different" is dropped it says the latest answer left about another record, or nothing
# (NULL: no answer, as before it was asked); not "suspected": the supervisor merged the pair.
_REMARK = (
    "UPDATE records SET dup_state = (SELECT CASE decision WHEN 'different' THEN 'different' "
    "ELSE 'suspected' END FROM dedup_decisions WHERE record_id = ?1 AND other_id != ?1 "
    "ORDER BY seq DESC LIMIT 1) WHERE id = ?1 AND dup_state = 'different'"
)


@dataclass
class ReplicaRow:
    """A record row as the replica reads it (with its stored base and conflicts)."""

    rid: int
    id: str
    form: str
    data: dict[str, Any]
    status: str
    deleted: bool
    server_version: int | None
    dirty: bool
    base: dict[str, Any] | None
    conflict: list[dict[str, Any]] | None

    def state(self) -> dict[str, Any]:
        """Fields plus the pseudo-fields, the shape the merge rules compare."""
        return state_of(self.data, self.status, self.deleted)


class PulledRow(NamedTuple):
    """A pulled record's row values (the replica decided them; this writes them)."""

    form_version: int
    data: Mapping[str, Any]
    status: str
    deleted: bool
    server_version: int
    dirty: bool
    base: Mapping[str, Any] | None
    conflict: list[dict[str, Any]] | None
    updated_at: str
    updated_by: str


class ReplicaIO:
    """Reads and writes of the records, side tables, history and outbox for ``sync.replica``.

    None of these opens a transaction of its own unless it says so: the replica's steps do.
    """

    def __init__(self, db: Database, reads: Reads, formset: FormSet) -> None:
        self._db, self._reads, self.formset = db, reads, formset
        self.conn = db.conn

    # -- records -----------------------------------------------------------------------------

    def rows(self, record_ids: Iterable[str]) -> dict[str, ReplicaRow]:
        """The rows of these records (those that exist), by id."""
        out: dict[str, ReplicaRow] = {}
        for marks, part in _chunks(list(dict.fromkeys(record_ids))):
            for row in self.conn.execute(
                f"SELECT {_RECORD_ROW} FROM records WHERE id IN ({marks})", part
            ):
                rid, rec_id, form, data, status, deleted, version, dirty, base, conflict = row
                values = json.loads(data)
                out[rec_id] = ReplicaRow(
                    rid,
                    rec_id,
                    form,
                    values,
                    status,
                    bool(deleted),
                    version,
                    bool(dirty),
                    stored_base(base, values, status, bool(deleted), version, bool(dirty)),
                    _loads(conflict),
                )
        return out

    def add_history(
        self, record_id: str, kind: str, changes: Mapping[str, Any], author: str
    ) -> None:
        """Append one history row."""
        self.conn.execute(
            "INSERT INTO history (record_id, at, author, kind, changes) VALUES (?, ?, ?, ?, ?)",
            (record_id, ids.now_iso(), author, kind, dumps(dict(changes))),
        )

    def write_side_tables(
        self, rid: int, record_id: str, form: str, derived: Derived | None
    ) -> None:
        """Replace a record's keys, refs, person row and search terms (None: remove them)."""
        write_side_tables(self.conn, rid, record_id, form, derived)

    def remove_record(self, rid: int, record_id: str, form: str) -> None:
        """Delete a record's row and its side-table rows (history keeps it)."""
        write_side_tables(self.conn, rid, record_id, form, None)
        self.conn.execute("DELETE FROM records WHERE rid = ?", (rid,))

    def write_pulled(
        self, record_id: str, form_id: str, row: PulledRow, derived: Derived, rid: int | None
    ) -> None:
        """Insert (``rid`` None) or update one pulled record's row and its side tables."""
        values = (
            row.form_version,
            derived.grid,
            derived.title,
            derived.sort,
            dumps(dict(row.data)),
            row.status,
            int(row.deleted),
            row.server_version,
            int(row.dirty),
            dumps(dict(row.base)) if row.base is not None else None,
            dumps(row.conflict) if row.conflict else None,
            row.updated_at,
            row.updated_by,
        )
        if rid is None:
            cur = self.conn.execute(
                "INSERT INTO records (form_version, grid, title, sort_key, data, status, "
                "deleted, server_version, dirty, base, conflict, updated_at, updated_by, id, "
                "form, created_at, created_by) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*values, record_id, form_id, row.updated_at, row.updated_by),
            )
            rid = int(cur.lastrowid or 0)
        else:
            self.conn.execute(
                "UPDATE records SET form_version = ?, grid = ?, title = ?, sort_key = ?, "
                "data = ?, status = ?, deleted = ?, server_version = ?, dirty = ?, base = ?, "
                "conflict = ?, "
                "updated_at = ?, updated_by = ? WHERE rid = ?",
                (*values, rid),
            )
        write_side_tables(self.conn, rid, record_id, form_id, None if row.deleted else derived)

    def restamp_pulled(
        self, rows: Sequence[tuple[int, int, int, list[dict[str, Any]] | None, str, str]]
    ) -> None:
        """(rid, form_version, server version, conflict, updated_at, updated_by) per clean
        record whose values a pull left as they were: the columns ``write_pulled`` would
        change for it, in one executemany (its values, derived columns and side tables stay;
        ``sync.replica.pull._restamp_many`` says when)."""
        self.conn.executemany(
            "UPDATE records SET form_version = ?, server_version = ?, dirty = 0, base = NULL, "
            "conflict = ?, updated_at = ?, updated_by = ? WHERE rid = ?",
            [
                (form_version, version, dumps(conflict) if conflict else None, at, by, rid)
                for rid, form_version, version, conflict, at, by in rows
            ],
        )

    def insert_pulled_many(self, rows: Sequence[tuple[str, str, PulledRow, Derived]]) -> None:
        """Records new to this device, clean (no base stored: the record is its own), as
        (id, form, row, derived): one executemany for the records, then one per side table
        (a first pull brings 100 000 of them). The rows are numbered here, from the highest
        ``rid`` up as SQLite would number them, so the side tables need no read of the rids
        back (a query per 500 ids)."""
        c = self.conn
        first = int(c.execute("SELECT coalesce(max(rid), 0) + 1 FROM records").fetchone()[0])
        numbered = list(zip(itertools.count(first), rows))
        c.executemany(
            "INSERT INTO records (rid, id, form, form_version, grid, title, sort_key, data, "
            "status, deleted, server_version, dirty, conflict, created_at, created_by, "
            "updated_at, updated_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?)",
            [
                (
                    rid,
                    rec_id,
                    form,
                    r.form_version,
                    d.grid,
                    d.title,
                    d.sort,
                    dumps(r.data if type(r.data) is dict else dict(r.data)),
                    r.status,
                    int(r.deleted),
                    r.server_version,
                    dumps(r.conflict) if r.conflict else None,
                    r.updated_at,
                    r.updated_by,
                    r.updated_at,
                    r.updated_by,
                )
                for rid, (rec_id, form, r, d) in numbered
            ],
        )
        live = [(rid, rec_id, form, d) for rid, (rec_id, form, r, d) in numbered if not r.deleted]
        c.executemany(
            "INSERT OR IGNORE INTO record_keys (form, key, rid) VALUES (?, ?, ?)",
            [(form, key, rid) for rid, _rec_id, form, d in live for key in d.keys],
        )
        c.executemany(
            "INSERT OR IGNORE INTO refs (src, field, dst) VALUES (?, ?, ?)",
            [(rec_id, f, dst) for _rid, rec_id, _form, d in live for f, dst in d.refs],
        )
        c.executemany(
            "INSERT INTO people (rid, form, name, pinyin, birth, house) VALUES (?, ?, ?, ?, ?, ?)",
            [(rid, form, *d.person) for rid, _rec_id, form, d in live if d.person],
        )
        c.executemany(
            "INSERT INTO search (rowid, terms) VALUES (?, ?)",
            [(rid, d.terms) for rid, _rec_id, _form, d in live if d.terms],
        )
        places.write(c, [(rid, d.address) for rid, _rec_id, _form, d in live])

    def write_values(
        self,
        rid: int,
        data: Mapping[str, Any],
        status: str,
        derived: Derived,
        *,
        deleted: bool | None = None,
        conflict: list[dict[str, Any]] | None = None,
        updated: tuple[str, str] | None = None,
    ) -> None:
        """A record's values changed on the device by sync (a fold or a person's resolution):
        marked dirty. With ``updated`` (at, by) the deleted flag, the remaining conflicts and
        the update stamp are written too (a resolution)."""
        if updated is None:
            self.conn.execute(
                "UPDATE records SET data = ?, status = ?, title = ?, sort_key = ?, grid = ?, "
                "dirty = 1 WHERE rid = ?",
                (dumps(dict(data)), status, derived.title, derived.sort, derived.grid, rid),
            )
            return
        self.conn.execute(
            "UPDATE records SET data = ?, status = ?, deleted = ?, title = ?, sort_key = ?, "
            "grid = ?, conflict = ?, dirty = 1, updated_at = ?, updated_by = ? WHERE rid = ?",
            (
                dumps(dict(data)),
                status,
                int(bool(deleted)),
                derived.title,
                derived.sort,
                derived.grid,
                dumps(conflict) if conflict else None,
                *updated,
                rid,
            ),
        )

    def set_server_versions(self, versions: Sequence[tuple[int, str, int]]) -> None:
        """(version, record id, version): raise each record's known server version."""
        self.conn.executemany(
            "UPDATE records SET server_version = ? WHERE id = ? "
            "AND (server_version IS NULL OR server_version < ?)",
            versions,
        )

    def set_versions_and_dirty(
        self, rows: Sequence[tuple[int | None, int | None, str, str | None]]
    ) -> None:
        """(version or None, dirty 0/1 or None, record id, new id or None) per record:
        ``set_server_versions`` and ``set_dirty`` of each record in one row write (None leaves
        that column as it is), and the record's rename to the new id in the same write (a
        push's renames, ``rename_moved(records=False)``). Ids name distinct records.

        The rows go through a temp table and one ``UPDATE ... FROM`` per kind (renamed or
        not): an executemany by id paid SQLite's per-row bind, step and reset and a lookup in
        answer order (issue 17: a known push's recording spent ~5 ms per 1,000 records on its
        rename and this write, now ~3)."""
        c = self.conn
        c.execute(
            "CREATE TEMP TABLE IF NOT EXISTS settle_rows (id TEXT PRIMARY KEY, new TEXT, "
            "version INTEGER, dirty INTEGER) WITHOUT ROWID"
        )
        c.execute("DELETE FROM temp.settle_rows")
        c.executemany(
            "INSERT INTO temp.settle_rows (version, dirty, id, new) VALUES (?, ?, ?, ?)", rows
        )
        raised = (
            "server_version = CASE WHEN s.version IS NOT NULL AND (server_version IS NULL "
            "OR server_version < s.version) THEN s.version ELSE server_version END, "
            "dirty = coalesce(s.dirty, records.dirty)"
        )
        if any(new is not None for *_r, new in rows):
            c.execute(
                f"UPDATE records SET id = s.new, {raised} FROM temp.settle_rows AS s "
                "WHERE records.id = s.id AND s.new IS NOT NULL"
            )
        c.execute(
            f"UPDATE records SET {raised} FROM temp.settle_rows AS s "
            "WHERE records.id = s.id AND s.new IS NULL"
        )
        c.execute("DELETE FROM temp.settle_rows")

    def set_dirty(self, flags: Iterable[tuple[int, str]]) -> None:
        """(dirty 0/1, record id) per record."""
        self.conn.executemany("UPDATE records SET dirty = ? WHERE id = ?", flags)

    def open_conflict_count(self) -> int:
        """Live records with a conflict waiting for a person."""
        row = self.conn.execute(
            "SELECT count(*) FROM records WHERE conflict IS NOT NULL AND deleted = 0"
        ).fetchone()
        return int(row[0])

    @contextmanager
    def bulk_writes(self, cache_kib: int, checkpoint_pages: int) -> Iterator[None]:
        """A bigger page cache on this connection inside the block; the checkpointer's thread
        copies the WAL from a quarter of ``checkpoint_pages`` on, and a write copies it itself
        only past ``checkpoint_pages``; restored afterwards (``sync.replica.bulk_writes`` says
        why)."""
        with self._db.transaction():
            cache = self.conn.execute("PRAGMA cache_size").fetchone()[0]
            self.conn.execute(f"PRAGMA cache_size = {-abs(int(cache_kib))}")
        try:
            with self._db.bulk_checkpoints(int(checkpoint_pages), int(checkpoint_pages) // 4):
                yield
        finally:
            with self._db.transaction():
                self.conn.execute(f"PRAGMA cache_size = {int(cache)}")

    # -- id rewrites (the server merged two records) ------------------------------------------

    def rename_record(self, rid: int, old: str, canonical: str) -> None:
        """The record and its outgoing refs take the canonical id (its keys name its ``rid``,
        which a rename keeps)."""
        c = self.conn
        c.execute("UPDATE records SET id = ? WHERE rid = ?", (canonical, rid))
        c.execute("UPDATE refs SET src = ? WHERE src = ?", (canonical, old))

    def forms_of(self, record_ids: Iterable[str]) -> dict[str, str]:
        """The form of each of these records that exists, by id (no data parsed)."""
        wanted = list(dict.fromkeys(record_ids))
        if not wanted:
            return {}
        return dict(
            self.conn.execute(
                "SELECT r.id, r.form FROM json_each(?) AS w CROSS JOIN records r ON r.id = w.value",
                (_id_list(wanted),),
            )
        )

    def load_moves(self, moves: Sequence[tuple[str, str, str, bool]]) -> None:
        """(old, canonical, form, referenced) of one run of renames into a temp table keyed by
        the old id, in one executemany whatever the run's length: the run's statements
        (``rename_moved`` and the reference rewrites) read it instead of running once per
        record. A run names no id twice (its olds and canonicals are distinct).

        An executemany, not one statement over a JSON text: ``json_each`` writes each row's
        array out as text again and ``json_extract`` parses it four times (1.6 ms per 1,000
        moves against 0.7, issue 17)."""
        c = self.conn
        c.execute(
            "CREATE TEMP TABLE IF NOT EXISTS rekey_moves (n INTEGER PRIMARY KEY, "
            "old TEXT NOT NULL UNIQUE, new TEXT NOT NULL, form TEXT NOT NULL, "
            "refd INTEGER NOT NULL)"
        )
        c.execute("DELETE FROM temp.rekey_moves")
        c.executemany(
            "INSERT INTO temp.rekey_moves (old, new, form, refd) VALUES (?, ?, ?, ?)",
            [(old, new, form, int(refd)) for old, new, form, refd in moves],
        )

    def rename_moved(self, *, records: bool = True, outbox: bool = True) -> None:
        """What ``rename_record`` + ``move_record_links`` + the ``merge`` history row do for
        one record, for every record of the loaded run (``load_moves``): one statement per
        table (a push of 10 000 residents the platform already knows renames every one).
        ``records=False`` leaves the records' own ids to the caller, who writes them with
        their versions and dirty flags (``set_versions_and_dirty``: one write of each row);
        ``outbox=False`` the ops' (``Outbox.set_answers_renaming``, then
        ``rename_moved_outbox``)."""
        c = self.conn
        c.execute(_KEEP_BASES.format(f"IN ({_MOVED})"))  # before any of the ops is renamed
        skip = {"records"} if not records else set()
        skip |= {"outbox"} if not outbox else set()
        for table, column in _MOVED_COLUMNS:
            if table not in skip:
                self._rename_column(table, column)
        c.execute(
            f"UPDATE dedup_decisions SET "
            f"record_id = coalesce(({_NEW_OF.format('dedup_decisions.record_id')}), record_id), "
            f"other_id = coalesce(({_NEW_OF.format('dedup_decisions.other_id')}), other_id) "
            f"WHERE record_id IN ({_MOVED}) OR other_id IN ({_MOVED})"
        )
        self._drop_told_apart_merged()
        c.execute(
            "INSERT INTO history (record_id, at, author, kind, changes) SELECT new, ?, '', "
            "'merge', json_object('_merged_from', json_array(old, new)) "
            "FROM temp.rekey_moves ORDER BY n",
            (ids.now_iso(),),
        )

    def rename_moved_outbox(self) -> None:
        """The outbox part of ``rename_moved``: the ops still named by a loaded old id."""
        self._rename_column("outbox", "record_id")

    def _rename_column(self, table: str, column: str) -> None:
        """Every loaded old id in ``table.column`` takes its new id (by the column's index:
        an ``UPDATE ... FROM`` the run is planned as a scan of the whole table)."""
        self.conn.execute(
            f"UPDATE {table} SET {column} = ({_NEW_OF.format(f'{table}.{column}')}) "
            f"WHERE {column} IN ({_MOVED})"
        )

    def rows_referring_moved(self) -> list[tuple[int, str, str, str | None, str]]:
        """(rid, form, data, base, dst) of the records whose refs point at a loaded old id of
        a referenced form, one row per such ref."""
        return self.conn.execute(
            "SELECT r.rid, r.form, r.data, r.base, f.dst FROM refs f "
            f"JOIN records r ON r.id = f.src WHERE f.dst IN ({_MOVED_REFD})"
        ).fetchall()

    def set_data_and_base_many(
        self, rows: Sequence[tuple[int, Mapping[str, Any], Mapping[str, Any] | None]]
    ) -> None:
        """``set_data_and_base`` of many (rid, data, base), one executemany."""
        self.conn.executemany(
            "UPDATE records SET data = ?, base = ? WHERE rid = ?",
            [
                (dumps(dict(data)), dumps(dict(base)) if base is not None else None, rid)
                for rid, data, base in rows
            ],
        )

    def repoint_moved_refs(self, referring: Mapping[tuple[str, ...], Sequence[str]]) -> None:
        """``repoint_refs`` for every loaded old id of a referenced form; ``referring`` maps
        the forms whose people may live in a record of the target forms to those targets
        (one people statement per distinct set of referring forms)."""
        c = self.conn
        c.execute(
            f"UPDATE OR IGNORE refs SET dst = ({_NEW_OF.format('refs.dst')}) "
            f"WHERE dst IN ({_MOVED_REFD})"
        )
        c.execute(f"DELETE FROM refs WHERE dst IN ({_MOVED_REFD})")
        for forms, targets in referring.items():
            marks, tmarks = ",".join("?" * len(forms)), ",".join("?" * len(targets))
            c.execute(
                f"UPDATE people SET house = ({_NEW_OF.format('people.house')}) "
                f"WHERE form IN ({marks}) AND house IN "
                f"(SELECT old FROM temp.rekey_moves WHERE refd AND form IN ({tmarks}))",
                (*forms, *targets),
            )

    def pending_ops_naming_moved(
        self, fields: Mapping[str, Sequence[str]]
    ) -> list[tuple[int, str, str]]:
        """(seq, form, fields) of pending ops whose value of one of ``fields`` (form -> field
        names) is a loaded old id of a referenced form: one pass over the pending ops."""
        where, params = _naming_moved("fields", fields)
        return self.conn.execute(
            f"SELECT seq, form, fields FROM outbox WHERE state = '{PENDING}' AND ({where})",
            params,
        ).fetchall()

    def set_ops_fields(self, rows: Sequence[tuple[int, Mapping[str, Any]]]) -> None:
        """``set_op_fields`` of many (seq, fields), one executemany."""
        self.conn.executemany(
            "UPDATE outbox SET fields = ? WHERE seq = ?",
            [(dumps(dict(fields)), seq) for seq, fields in rows],
        )

    def autosaves_naming_moved(
        self, fields: Mapping[str, Sequence[str]]
    ) -> list[tuple[str, str, str]]:
        """(slot, form, data) of autosaved forms naming a loaded old id of a referenced form in
        one of ``fields`` (form -> field names)."""
        where, params = _naming_moved("data", fields)
        return self.conn.execute(
            f"SELECT slot, form, data FROM autosave WHERE {where}", params
        ).fetchall()

    def set_autosaves_data(self, rows: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        """``set_autosave_data`` of many (slot, data), one executemany."""
        self.conn.executemany(
            "UPDATE autosave SET data = ? WHERE slot = ?",
            [(dumps(dict(data)), slot) for slot, data in rows],
        )

    def clear_moves(self) -> None:
        """Empty the run's temp table (its ids are not kept past the run)."""
        self.conn.execute("DELETE FROM temp.rekey_moves")

    # -- duplicate decisions (PROTOCOL.md §9.2) -------------------------------------------------

    def pending_decisions(self, limit: int) -> list[tuple[int, str, str, str]]:
        """(seq, record id, other id, at) of the "different" answers the platform has not
        answered yet, oldest first. An answer naming a live record the platform has not
        accepted yet (its create refused or still waiting: no server version) waits for it:
        the platform would answer ``no_review``, which is final, and the item its create
        opens later would ask the supervisor again (PROTOCOL.md §9.2)."""
        return self.conn.execute(
            "SELECT d.seq, d.record_id, d.other_id, d.at FROM dedup_outbox o "
            "JOIN dedup_decisions d ON d.seq = o.seq WHERE NOT EXISTS (SELECT 1 FROM records r "
            "WHERE r.id IN (d.record_id, d.other_id) AND r.server_version IS NULL "
            "AND r.deleted = 0) ORDER BY o.seq LIMIT ?",
            (limit,),
        ).fetchall()

    def decisions_answered(self, seqs: Iterable[int]) -> None:
        """The platform answered these: they leave the outbox (the decisions stay)."""
        self.conn.executemany("DELETE FROM dedup_outbox WHERE seq = ?", [(s,) for s in seqs])

    def take_not_duplicates(self, pairs: Iterable[tuple[str, str, str, str]]) -> int:
        """Pulled (record id, other id, decided by, at) pairs: each becomes a "different"
        answer, unless the device has one about the pair already (its own coming back, or one
        heard before): not news, and a later answer given here since (a link cut before the
        pull that echoes it, a pair numbered again) stands. Not queued: the platform knows
        it. Returns how many were taken."""
        taken = 0
        for record_id, other_id, by, at in pairs:
            known = self.conn.execute(
                "SELECT 1 FROM dedup_decisions WHERE decision = 'different' AND "
                "((record_id = ?1 AND other_id = ?2) OR (record_id = ?2 AND other_id = ?1)) "
                "LIMIT 1",
                (record_id, other_id),
            ).fetchone()
            if known is not None:
                continue
            self.conn.execute(
                "INSERT INTO dedup_decisions (record_id, other_id, decision, author, at) "
                "VALUES (?, ?, 'different', ?, ?)",
                (record_id, other_id, by, at),
            )
            taken += 1
        return taken

    def move_record_links(self, old: str, canonical: str) -> None:
        """The outbox, autosave, task items and duplicate decisions name the canonical id
        (an op based on a version of ``old`` keeps naming it on the wire, ``outbox_bases``)."""
        c = self.conn
        c.execute(_KEEP_BASES.format("= ?"), (old,))
        c.execute("UPDATE outbox SET record_id = ? WHERE record_id = ?", (canonical, old))
        c.execute("UPDATE task_items SET record_id = ? WHERE record_id = ?", (canonical, old))
        c.execute("UPDATE autosave SET record_id = ? WHERE record_id = ?", (canonical, old))
        for column in ("record_id", "other_id"):
            c.execute(
                f"UPDATE dedup_decisions SET {column} = ? WHERE {column} = ?", (canonical, old)
            )
        self._drop_told_apart_merged()

    def _drop_told_apart_merged(self) -> None:
        """A "different" answer about two records the platform merged since (a supervisor
        overruled it, PROTOCOL.md §9.2) names one record twice once renamed: nothing is left
        to tell apart, so it goes, and is not sent (the platform's audit keeps the answer).
        Any such row, not only the run's: the table holds people's answers (small), and a
        condition on the renamed ids read the temp table of a run whole (no index on ``new``)."""
        told = "record_id = other_id AND decision = 'different'"
        marked = [
            r[0]
            for r in self.conn.execute(
                f"SELECT DISTINCT record_id FROM dedup_decisions WHERE {told}"
            )
        ]
        if not marked:
            return
        self.conn.execute(
            f"DELETE FROM dedup_outbox WHERE seq IN (SELECT seq FROM dedup_decisions WHERE {told})"
        )
        self.conn.execute(f"DELETE FROM dedup_decisions WHERE {told}")
        self.conn.executemany(_REMARK, [(rid,) for rid in marked])

    def referring_rows(self, dst: str) -> list[tuple[int, str, str, str | None]]:
        """(rid, form, data, base) of the records whose refs point at ``dst``."""
        return self.conn.execute(
            "SELECT DISTINCT r.rid, r.form, r.data, r.base FROM refs f "
            "JOIN records r ON r.id = f.src WHERE f.dst = ?",
            (dst,),
        ).fetchall()

    def set_data_and_base(
        self, rid: int, data: Mapping[str, Any], base: Mapping[str, Any] | None
    ) -> None:
        """Rewrite a record's data and stored base (no history: an id rewrite)."""
        self.conn.execute(
            "UPDATE records SET data = ?, base = ? WHERE rid = ?",
            (dumps(dict(data)), dumps(dict(base)) if base is not None else None, rid),
        )

    def repoint_refs(self, old: str, canonical: str, forms: Sequence[str]) -> None:
        """Refs and people's house links (of records of ``forms``) to ``old`` now name
        ``canonical`` (people.house by the (form, house) index, not a scan of every person)."""
        c = self.conn
        c.execute("UPDATE OR IGNORE refs SET dst = ? WHERE dst = ?", (canonical, old))
        c.execute("DELETE FROM refs WHERE dst = ?", (old,))
        marks = ",".join("?" * len(forms))
        c.execute(
            f"UPDATE people SET house = ? WHERE form IN ({marks}) AND house = ?",
            (canonical, *forms, old),
        )

    def pending_ops_mentioning(self, forms: Sequence[str], text: str) -> list[tuple[int, str, str]]:
        """(seq, form, fields) of pending ops of ``forms`` whose fields contain ``text``."""
        marks = ",".join("?" * len(forms))
        return self.conn.execute(
            f"SELECT seq, form, fields FROM outbox WHERE state = '{PENDING}' "
            f"AND form IN ({marks}) AND fields LIKE ?",
            (*forms, f"%{text}%"),
        ).fetchall()

    def set_op_fields(self, seq: int, fields: Mapping[str, Any]) -> None:
        """Rewrite an op's fields (an id rewrite inside them)."""
        self.conn.execute("UPDATE outbox SET fields = ? WHERE seq = ?", (dumps(dict(fields)), seq))

    def autosaves_mentioning(self, forms: Sequence[str], text: str) -> list[tuple[str, str, str]]:
        """(slot, form, data) of autosaved forms of ``forms`` whose data contain ``text``."""
        marks = ",".join("?" * len(forms))
        return self.conn.execute(
            f"SELECT slot, form, data FROM autosave WHERE form IN ({marks}) AND data LIKE ?",
            (*forms, f"%{text}%"),
        ).fetchall()

    def set_autosave_data(self, slot: str, data: Mapping[str, Any]) -> None:
        """Rewrite an autosaved form's data (an id rewrite inside them)."""
        self.conn.execute("UPDATE autosave SET data = ? WHERE slot = ?", (dumps(dict(data)), slot))
