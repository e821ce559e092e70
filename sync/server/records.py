"""Record storage of the platform: current rows, the append-only version history, natural keys,
the people index for fuzzy duplicates, aliases, and the change sequence behind pull cursors.

The change sequence is the part that must be exactly right. A number taken early in a
transaction would let a slow writer commit *below* a cursor a concurrent pull has already
returned, and that change would never be pulled. So writers only mark what they touched
(``Tx.touch``) and ``Tx.assign_seq`` numbers it at the very end, after locking the single
counter row (PostgreSQL: ``SELECT ... FOR UPDATE``; SQLite: writers are serialised anyway). The
lock is held until commit, so numbers become visible strictly in order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.engine import Connection

from app.core.formset import Form
from app.core.records import is_empty
from app.core.search import name_terms
from app.core.textnorm import normalize_key
from sync.merge import DELETED, STATUS, Stamp
from sync.server import db

_IN_CHUNK = 500  # ids per IN (...) list
MAX_KEY = 250  # db.record_keys.key holds 300
MAX_NAME = 100  # db.people.name holds 200 (pinyin: 300)

# Statements built once and executed with parameters: building Core statements with literal
# values per call costs more than running them (the push hot path runs ~8 per op).
_R, _V, _K, _P, _A, _O = (
    db.records.c,
    db.record_versions.c,
    db.record_keys.c,
    db.people.c,
    db.aliases.c,
    db.ops.c,
)
_LOAD = select(db.records).where(_R.id == bindparam("b_id"))
_LOAD_LOCKED = _LOAD.with_for_update()
_SNAPSHOT = select(_V.data, _V.status, _V.deleted).where(
    _V.record_id == bindparam("b_id"), _V.version == bindparam("b_version")
)
_DEVICE_VERSION = (
    select(_O.version)
    .where(_O.device_id == bindparam("b_device"), _O.record_id == bindparam("b_id"))
    .where(_O.version.is_not(None))
    .order_by(_O.version.desc())
    .limit(1)
)
_CANONICAL = select(_A.old_id, _A.canonical_id).where(
    _A.old_id.in_(bindparam("b_ids", expanding=True))
)
_KEY_OWNER = (
    select(_K.record_id)
    .where(_K.form == bindparam("b_form"), _K.key.in_(bindparam("b_keys", expanding=True)))
    .limit(1)
)
_KEY_OWNER_OTHER = (
    select(_K.record_id)
    .where(_K.form == bindparam("b_form"), _K.key.in_(bindparam("b_keys", expanding=True)))
    .where(_K.record_id != bindparam("b_id"))
    .limit(1)
)
_INSERT_RECORD = insert(db.records)
_UPDATE_RECORD = update(db.records).where(_R.id == bindparam("b_id"))
_DELETE_KEYS = delete(db.record_keys).where(_K.record_id == bindparam("b_id"))
_DELETE_PERSON = delete(db.people).where(_P.record_id == bindparam("b_id"))
_INSERT_KEY = insert(db.record_keys)
_INSERT_PERSON = insert(db.people)


@dataclass
class Row:
    """A record's current state on the server."""

    id: str
    form: str
    form_version: int
    grid: str | None
    title: str
    data: dict[str, Any]
    status: str
    deleted: bool
    version: int
    conflict: list[dict[str, Any]] | None
    stamps: dict[str, Stamp]
    created_at: str
    created_by: str
    updated_at: str = ""
    updated_by: str = ""

    def state(self) -> dict[str, Any]:
        """Fields plus the pseudo-fields the merge works on."""
        return {**self.data, STATUS: self.status, DELETED: self.deleted}

    def wire(self) -> dict[str, Any]:
        """The pull shape (PROTOCOL.md §8)."""
        return {
            "id": self.id,
            "form": self.form,
            "form_version": self.form_version,
            "version": self.version,
            "data": self.data,
            "status": self.status,
            "deleted": self.deleted,
            "conflict": self.conflict or None,
            "updated_at": self.updated_at,
            "updated_by": self.updated_by,
        }


@dataclass
class Meta:
    """Who and what caused a write, for the version history."""

    kind: str
    username: str
    at: str
    op_id: str | None = None
    device_id: str | None = None
    author: str = ""
    edited_at: str | None = None


@dataclass
class Tx:
    """One writing transaction: rows written in bulk at its end, and the changes that still
    need a sequence number.

    Version-history rows and op-log rows are only appended, never read back by other writers
    before commit, so they are buffered and inserted with one ``executemany`` each; the
    buffers double as an overlay for reads inside the same transaction (``snapshot``,
    ``device_base``, replays within one batch).
    """

    conn: Connection
    pending: list[tuple[str, Any]] = field(default_factory=list)
    versions: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    op_rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    quarantine_rows: list[dict[str, Any]] = field(default_factory=list)

    def touch(self, kind: str, key: Any) -> None:
        self.pending.append((kind, key))

    def finish(self) -> None:
        """Write the buffered rows, then number the changes; call last, just before commit."""
        for table, rows in (
            (db.record_versions, list(self.versions.values())),
            (db.ops, list(self.op_rows.values())),
            (db.quarantine, self.quarantine_rows),
        ):
            if rows:
                self.conn.execute(insert(table), rows)
        self.versions, self.op_rows, self.quarantine_rows = {}, {}, []
        self.assign_seq()

    def assign_seq(self) -> None:
        """Number every change of this transaction; call last, just before commit."""
        seen: dict[tuple[str, Any], None] = {}
        for item in self.pending:
            seen.setdefault(item, None)
        targets = list(seen)
        self.pending.clear()
        if not targets:
            return
        c = db.counters.c
        start = self.conn.execute(
            select(c.value).where(c.name == db.SEQ).with_for_update()
        ).scalar_one()
        self.conn.execute(
            update(db.counters).where(c.name == db.SEQ).values(value=start + len(targets))
        )
        by_kind: dict[str, list[dict[str, Any]]] = {}
        for number, (kind, key) in enumerate(targets, start=start + 1):
            by_kind.setdefault(kind, []).append({"k": key, "s": number})
        tables = {
            "record": (db.records, db.records.c.id),
            "alias": (db.aliases, db.aliases.c.old_id),
            "exit": (db.scope_exits, db.scope_exits.c.id),
        }
        for kind, params in by_kind.items():
            table, key_col = tables[kind]
            self.conn.execute(
                update(table).where(key_col == bindparam("k")).values(seq=bindparam("s")), params
            )


def from_db(r: Any) -> Row:
    """A ``records`` table row as a ``Row``."""
    stamps = {k: Stamp(v[0], v[1]) for k, v in (db.loads(r.stamps) or {}).items()}
    return Row(
        id=r.id,
        form=r.form,
        form_version=r.form_version,
        grid=r.grid,
        title=r.title,
        data=db.loads(r.data) or {},
        status=r.status,
        deleted=bool(r.deleted),
        version=r.version,
        conflict=db.loads(r.conflict),
        stamps=stamps,
        created_at=r.created_at,
        created_by=r.created_by,
        updated_at=r.updated_at,
        updated_by=r.updated_by,
    )


def load(conn: Connection, record_id: str, *, lock: bool = False) -> Row | None:
    """The current row, locked FOR UPDATE when ``lock`` (PostgreSQL)."""
    r = conn.execute(_LOAD_LOCKED if lock else _LOAD, {"b_id": record_id}).first()
    return from_db(r) if r is not None else None


def lock_many(conn: Connection, ids: Iterable[str]) -> None:
    """Lock existing rows in id order, so two batches never wait on each other in a cycle."""
    if conn.dialect.name == "sqlite":
        return  # writers are serialised; there are no row locks to order
    ordered = sorted(set(ids))
    for i in range(0, len(ordered), _IN_CHUNK):
        part = ordered[i : i + _IN_CHUNK]
        conn.execute(
            select(db.records.c.id)
            .where(db.records.c.id.in_(part))
            .order_by(db.records.c.id)
            .with_for_update()
        ).all()


def brief(conn: Connection, ids: Iterable[str]) -> dict[str, tuple[str, str | None, int]]:
    """id -> (form, grid, version) for existing records."""
    out: dict[str, tuple[str, str | None, int]] = {}
    ids = list(set(ids))
    c = db.records.c
    for i in range(0, len(ids), _IN_CHUNK):
        rows = conn.execute(
            select(c.id, c.form, c.grid, c.version).where(c.id.in_(ids[i : i + _IN_CHUNK]))
        )
        out.update({r.id: (r.form, r.grid, r.version) for r in rows})
    return out


def snapshot(tx: Tx, record_id: str, version: int) -> dict[str, Any] | None:
    """The full state (fields + pseudo-fields) of one stored version."""
    row = tx.versions.get((record_id, version))
    if row is None:
        row = (
            tx.conn.execute(_SNAPSHOT, {"b_id": record_id, "b_version": version}).mappings().first()
        )
    if row is None:
        return None
    return {**(db.loads(row["data"]) or {}), STATUS: row["status"], DELETED: bool(row["deleted"])}


def device_base(tx: Tx, device_id: str, record_id: str) -> dict[str, Any]:
    """The version this device last produced on the record (it saw its own writes), else {}."""
    found = [
        r["version"]
        for r in tx.op_rows.values()
        if r["device_id"] == device_id and r["record_id"] == record_id and r["version"]
    ]
    stored = tx.conn.execute(_DEVICE_VERSION, {"b_device": device_id, "b_id": record_id}).scalar()
    if stored is not None:
        found.append(int(stored))
    if not found:
        return {}
    return snapshot(tx, record_id, max(found)) or {}


def canonical(conn: Connection, ids: Iterable[str]) -> dict[str, str]:
    """old id -> canonical id for those ids that are aliases (aliases are kept flat)."""
    ids = list(set(ids))
    out: dict[str, str] = {}
    for i in range(0, len(ids), _IN_CHUNK):
        rows = conn.execute(_CANONICAL, {"b_ids": ids[i : i + _IN_CHUNK]})
        out.update({r.old_id: r.canonical_id for r in rows})
    return out


def add_alias(tx: Tx, old_id: str, canonical_id: str, reason: str, at: str) -> None:
    """old -> canonical, and every alias that pointed at ``old`` now points at the canonical id."""
    conn = tx.conn
    a = db.aliases.c
    moved = [r[0] for r in conn.execute(select(a.old_id).where(a.canonical_id == old_id))]
    if moved:
        conn.execute(
            update(db.aliases).where(a.canonical_id == old_id).values(canonical_id=canonical_id)
        )
        for old in moved:
            tx.touch("alias", old)
    conn.execute(
        insert(db.aliases).values(
            old_id=old_id, canonical_id=canonical_id, reason=reason, at=at, seq=0
        )
    )
    tx.touch("alias", old_id)


# -- natural keys and the people index ------------------------------------------------------


def grid_of(form: Form, data: Mapping[str, Any]) -> str | None:
    """The record's grid: its ``roles.grid`` field as text, or None when empty."""
    value = data.get(form.roles.grid) if form.roles.grid else None
    return None if is_empty(value) else str(value).strip()


def natural_keys(form: Form, data: Mapping[str, Any]) -> list[str]:
    """Normalised keys, as ``Store.natural_key`` makes them (parts joined by "|").

    An absurdly long key (a draft may hold anything) is stored as its SHA-256, which keeps
    equality and fits a database index.
    """
    keys = []
    for fields in form.natural_keys:
        parts = []
        for field_id in fields:
            value = data.get(field_id)
            if value is None or str(value).strip() == "":
                break
            parts.append(normalize_key(str(value)))
        else:
            key = "|".join(parts)
            keys.append(
                key if len(key) <= MAX_KEY else "sha256:" + sha256(key.encode()).hexdigest()
            )
    return keys


def key_owner(
    conn: Connection, form_id: str, keys: list[str], exclude: str | None = None
) -> str | None:
    """The live record holding any of ``keys`` (other than ``exclude``)."""
    if not keys:
        return None
    params = {"b_form": form_id, "b_keys": list(keys), "b_id": exclude}
    return conn.execute(_KEY_OWNER_OTHER if exclude else _KEY_OWNER, params).scalar()


def person_of(form: Form, data: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """(name, pinyin, birth date) for the fuzzy duplicate index, when the form has those roles."""
    roles = form.roles
    if not roles.birth_date or is_empty(data.get(roles.birth_date)):
        return None
    name = next((str(data[f]) for f in roles.name if not is_empty(data.get(f))), "")
    birth = str(data[roles.birth_date])
    terms = name_terms(name[:MAX_NAME]) if name else ()
    if not terms or len(birth) > 10:  # not a date: nothing to compare with
        return None
    pinyin = next((t for t in terms if t.isascii()), terms[0])
    return terms[0][:MAX_NAME], pinyin[:MAX_NAME], birth


def _side_tables(
    conn: Connection, form: Form, record_id: str, data: Mapping[str, Any] | None, *, new: bool
) -> None:
    """Replace the record's keys and people row (None: the record is not live)."""
    if not new:
        conn.execute(_DELETE_KEYS, {"b_id": record_id})
        conn.execute(_DELETE_PERSON, {"b_id": record_id})
    if data is None:
        return
    keys = natural_keys(form, data)
    if keys:
        conn.execute(
            _INSERT_KEY, [{"form": form.id, "key": k, "record_id": record_id} for k in keys]
        )
    person = person_of(form, data)
    if person:
        name, pinyin, birth = person
        conn.execute(
            _INSERT_PERSON,
            {
                "record_id": record_id,
                "form": form.id,
                "name": name,
                "pinyin": pinyin,
                "birth": birth,
            },
        )


# -- writing ---------------------------------------------------------------------------------


def write(
    tx: Tx,
    form: Form,
    before: Row | None,
    record_id: str,
    state: Mapping[str, Any],
    conflict: list[dict[str, Any]] | None,
    stamps: Mapping[str, Stamp],
    meta: Meta,
) -> Row:
    """Store a new version of a record (version 1 when ``before`` is None)."""
    data = {
        k: v for k, v in sorted(state.items()) if k not in (STATUS, DELETED) and not is_empty(v)
    }
    status = str(state.get(STATUS) or (before.status if before else "draft"))
    deleted = bool(state.get(DELETED))
    row = Row(
        id=record_id,
        form=form.id,
        form_version=form.version,
        grid=grid_of(form, data),
        title=form.title_of(data)[:200],
        data=data,
        status=status,
        deleted=deleted,
        version=(before.version + 1) if before else 1,
        conflict=conflict or None,
        stamps=dict(stamps),
        created_at=before.created_at if before else meta.at,
        created_by=before.created_by if before else meta.username,
        updated_at=meta.at,
        updated_by=meta.username,
    )
    values = {
        "form": row.form,
        "form_version": row.form_version,
        "grid": row.grid,
        "title": row.title,
        "data": db.dumps(data),
        "status": status,
        "deleted": deleted,
        "version": row.version,
        "conflict": db.dumps(row.conflict) if row.conflict else None,
        "stamps": db.dumps({k: [s.at, s.device] for k, s in row.stamps.items()}),
        "updated_at": row.updated_at,
        "updated_by": row.updated_by,
    }
    conn = tx.conn
    if before is None:
        values.update(id=record_id, seq=0, created_at=row.created_at, created_by=row.created_by)
        conn.execute(_INSERT_RECORD, values)
    else:
        conn.execute(_UPDATE_RECORD, {"b_id": record_id, **values})
    tx.versions[(record_id, row.version)] = {
        "record_id": record_id,
        "version": row.version,
        "form": row.form,
        "grid": row.grid,
        "data": values["data"],
        "status": status,
        "deleted": deleted,
        "conflict": values["conflict"],
        "kind": meta.kind,
        "op_id": meta.op_id,
        "device_id": meta.device_id,
        "username": meta.username,
        "author": meta.author,
        "edited_at": meta.edited_at,
        "at": meta.at,
    }
    _side_tables(conn, form, record_id, None if deleted else data, new=before is None)
    if before is not None and before.grid and before.grid != row.grid:
        exit_id = conn.execute(
            insert(db.scope_exits).values(record_id=record_id, grid=before.grid, seq=0)
        ).inserted_primary_key[0]
        tx.touch("exit", exit_id)
    tx.touch("record", record_id)
    return row


def referrers(conn: Connection, record_id: str) -> list[Row]:
    """Records whose JSON mentions ``record_id`` (callers check which fields name it)."""
    stmt = select(db.records).where(
        db.records.c.data.contains(record_id, autoescape=True), db.records.c.id != record_id
    )
    return [from_db(r) for r in conn.execute(stmt)]
