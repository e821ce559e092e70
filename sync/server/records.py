"""Record storage of the platform: current rows, the append-only version history, aliases and
the reads a push needs. Writes go through a ``tx.Tx``, which buffers them and numbers the
changes behind pull cursors at the very end of the transaction (see its docstring).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.engine import Connection

from app.core.forms import Form
from app.core.records import clean
from sync.merge import DELETED, STATUS, Stamp
from sync.server import db, terms
from sync.server.rows import (
    Meta,
    Row,
    from_db,
    grid_of,
    natural_keys,
    person_of,
    stamps_text,
)
from sync.server.sqlin import Built, among_rows
from sync.server.tx import IN_CHUNK as _IN_CHUNK
from sync.server.tx import Side, Tx

__all__ = ["Meta", "Row", "grid_of", "natural_keys", "person_of"]

_A = db.aliases.c
_LOAD = select(db.records).where(db.records.c.id == bindparam("b_id"))
_C = db.records.c
_BRIEF = Built(lambda among: select(_C.id, _C.form, _C.grid, _C.version).where(among(_C.id, "ids")))
_CANONICAL = Built(  # its ids come each once (``canonical``)
    lambda among: among_rows(
        among, select(_A.old_id, _A.canonical_id), db.aliases, _A.old_id, "ids"
    )
)


_RV = db.reviews.c


def renumber_told_apart(tx: Tx, record_id: str) -> None:
    """A record moved into another grid (or merged into a record of another, ``reviews``):
    its pairs decided "different" take new numbers, so a device whose scope now holds both
    records hears them (``not_duplicates``, PROTOCOL.md §9.2) though its cursor is past their
    old numbers. A whole grid given is the grid's fetch (§8.1); this is the one record moved.
    Devices that had them already skip them."""
    ids = [record_id, *tx.incoming(record_id)]
    found = tx.conn.execute(
        select(_RV.id).where(
            _RV.state == "different",
            _RV.kind != "transfer",
            or_(_RV.record_id.in_(ids), _RV.other_id.in_(ids)),
        )
    ).scalars()
    for review_id in found:
        tx.touch("review", review_id)


def load(conn: Connection, record_id: str) -> Row | None:
    """The current row, for reading (writers use ``Tx.load``, which locks and caches)."""
    r = conn.execute(_LOAD, {"b_id": record_id}).first()
    return from_db(r) if r is not None else None


def brief(conn: Connection, ids: Iterable[str]) -> dict[str, tuple[str, str | None, int]]:
    """id -> (form, grid, version) for existing records."""
    out: dict[str, tuple[str, str | None, int]] = {}
    ids = list(set(ids))
    stmt = _BRIEF.on(conn)
    for i in range(0, len(ids), _IN_CHUNK):
        rows = conn.execute(stmt, {"ids": ids[i : i + _IN_CHUNK]})
        out.update({r.id: (r.form, r.grid, r.version) for r in rows})
    return out


def snapshot(tx: Tx, record_id: str, version: int) -> dict[str, Any] | None:
    """The full state (fields + pseudo-fields) of one stored version."""
    row = tx.version_row(record_id, version)
    if row is None:
        return None
    return {**(db.loads(row["data"]) or {}), STATUS: row["status"], DELETED: bool(row["deleted"])}


def device_base(tx: Tx, device_id: str, record_id: str) -> dict[str, Any]:
    """The version this device last produced on the record (it saw its own writes), else {}."""
    version = tx.device_version(device_id, record_id)
    if version is None:
        return {}
    return snapshot(tx, record_id, version) or {}


def canonical(conn: Connection, ids: Iterable[str]) -> dict[str, str]:
    """old id -> canonical id for those ids that are aliases (aliases are kept flat)."""
    ids = list(set(ids))
    out: dict[str, str] = {}
    stmt = _CANONICAL.on(conn)
    for i in range(0, len(ids), _IN_CHUNK):
        rows = conn.execute(stmt, {"ids": ids[i : i + _IN_CHUNK]})
        out.update({r.old_id: r.canonical_id for r in rows})
    return out


def add_alias(tx: Tx, old_id: str, canonical_id: str, reason: str, at: str) -> None:
    """old -> canonical, and every alias that pointed at ``old`` now points at the canonical id."""
    a = db.aliases.c
    moved = tx.incoming(old_id)
    if moved:
        tx.conn.execute(
            update(db.aliases).where(a.canonical_id == old_id).values(canonical_id=canonical_id)
        )
        tx.repoint_aliases(old_id, canonical_id)
        for old in moved:
            tx.touch("alias", old)
    tx.alias_rows.append(
        {"old_id": old_id, "canonical_id": canonical_id, "reason": reason, "at": at, "seq": 0}
    )  # inserted with the chunk's other rows (``Tx.finish``)
    tx.touch("alias", old_id)
    tx.aliased(old_id, canonical_id, moved)


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
    *,
    skip_keys: Iterable[str] = (),
) -> Row:
    """Store a new version of a record (version 1 when ``before`` is None).

    ``skip_keys``: natural keys of its values that another record holds (a transfer claim,
    PROTOCOL.md §9.1): the record is stored without them until the claim is decided."""
    data = clean(state)  # sorted, empty values dropped (one pass: ``clean`` skips calls)
    data.pop(STATUS, None)
    data.pop(DELETED, None)
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
        "stamps": stamps_text(row.stamps),
        "updated_at": row.updated_at,
        "updated_by": row.updated_by,
    }
    if before is None:
        values.update(id=record_id, seq=0, created_at=row.created_at, created_by=row.created_by)
    skipped = set(skip_keys)
    keys = tx.derived.natural_keys(form, data)
    held = tuple(k for k in keys if k not in skipped)
    claims = tuple(k for k in keys if k in skipped)
    side = None if deleted else Side(form.id, held, tx.derived.person_of(form, data), claims)
    tx.put(row, values, side, new=before is None)
    if before is None:
        tx.put_new_terms(record_id, row.grid or "")
    else:
        searched = frozenset(terms.record_keys(form, data, row.title))
        stored = (before.grid or "", frozenset(terms.record_keys(form, before.data, before.title)))
        if stored != (row.grid or "", searched):
            tx.put_terms(record_id, stored, (row.grid or "", searched))
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
    if before is not None and before.grid and before.grid != row.grid:
        key = tx.conn.execute(
            insert(db.scope_exits).values(record_id=record_id, grid=before.grid, seq=0)
        ).inserted_primary_key
        assert key is not None  # a single-row INSERT always reports its key
        exit_id = key[0]
        tx.touch("exit", exit_id)
    if before is not None and row.grid and before.grid != row.grid and not deleted:
        renumber_told_apart(tx, record_id)
    tx.touch("record", record_id)
    return row


def referrers(tx: Tx, record_id: str) -> list[Row]:
    """Records whose JSON mentions ``record_id`` (callers check which fields name it)."""
    tx.flush()
    stmt = select(db.records).where(
        db.records.c.data.contains(record_id, autoescape=True), db.records.c.id != record_id
    )
    return [from_db(r) for r in tx.conn.execute(stmt)]
