"""The trace of every taking: a ``dept_exports`` row (what the console's pages list), an audit
row (department, user or key, grant, how many records, which fields, from where) and, per
record handed over, ``dept_received`` (which departments received a record).

Export ids are random and go into the file or the API answer, so a leaked file leads back to its
download. No value is written here: ids, codes and field names only.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.engine import Connection

from sync.server import auth, db
from sync.server.dept.grants import Grant

_E, _RC = db.dept_exports.c, db.dept_received.c


@dataclass(frozen=True)
class Taker:
    """Who takes: a department account (``username``) or a department API key (``key_id``)."""

    department: str
    username: str = ""
    key_id: str = ""
    ip: str = ""

    @property
    def actor(self) -> str:
        return self.username or f"key:{self.key_id}"


def new_export_id() -> str:
    return "EX" + secrets.token_hex(8).upper()


def begin(
    conn: Connection, taker: Taker, grant: Grant, kind: str, fmt: str = "", export_id: str = ""
) -> str:
    """Note a taking that is starting (a download's count is filled in by ``finish``)."""
    export_id = export_id or new_export_id()
    conn.execute(
        insert(db.dept_exports).values(
            export_id=export_id,
            grant_id=grant.id,
            department=taker.department,
            actor=taker.actor[:120],
            kind=kind,
            format=fmt,
            records=0,
            fields=db.dumps(grant.field_names()),
            ip=taker.ip[:100],
            at=auth.iso(auth.now()),
        )
    )
    return export_id


def finish(
    conn: Connection, taker: Taker, grant: Grant, export_id: str, kind: str, count: int
) -> None:
    """The count of a taking, and its audit row (appended, never changed)."""
    conn.execute(update(db.dept_exports).where(_E.export_id == export_id).values(records=count))
    target = f"dept:{taker.department} grant:{grant.id} {kind}:{export_id} n:{count}"
    conn.execute(
        insert(db.audit_log).values(
            at=auth.iso(auth.now()),
            username=taker.actor[:100],
            ip=taker.ip[:100],
            action="dept_take",
            target=target[:200],
            fields=db.dumps(grant.field_names()),
        )
    )


def once(
    engine: Engine, taker: Taker, grant: Grant, kind: str, count: int, record_ids: Sequence[str]
) -> str:
    """One API page or statistics query: noted, audited and its records marked received."""
    with db.write(engine) as conn:
        export_id = begin(conn, taker, grant, kind)
        received(conn, grant, export_id, record_ids)
        finish(conn, taker, grant, export_id, kind, count)
    return export_id


_COLUMNS = "record_id, grant_id, department, first_at, last_at, export_id"
_ON_CONFLICT = (
    "ON CONFLICT (record_id, grant_id) "
    "DO UPDATE SET last_at = excluded.last_at, export_id = excluded.export_id"
)
# The ids go as one parameter (a JSON array for SQLite's json_each, an array for PostgreSQL's
# unnest): one statement per page instead of one bound row per record (``WHERE true`` lets
# SQLite read the upsert after a SELECT).
_UPSERT = {
    "sqlite": f"INSERT INTO dept_received ({_COLUMNS}) SELECT value, ?, ?, ?, ?, ? "
    f"FROM json_each(?) WHERE true {_ON_CONFLICT}",
    "postgresql": f"INSERT INTO dept_received ({_COLUMNS}) "
    f"SELECT unnest(%s::text[]), %s, %s, %s, %s, %s {_ON_CONFLICT}",
}


def received(conn: Connection, grant: Grant, export_id: str, record_ids: Iterable[str]) -> None:
    """Mark records as received by the grant's department (first and last time, last export).

    One statement for the whole batch, its ids in one parameter: a full export marks every
    record of a street office (~856 k), so nothing is bound or built per record.
    """
    at = auth.iso(auth.now())
    ids = list(dict.fromkeys(record_ids))  # once each: PostgreSQL's upsert refuses repeats
    if not ids:
        return
    rest = (grant.id, grant.department, at, at, export_id)
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(_UPSERT["postgresql"], (ids, *rest))
    else:
        conn.exec_driver_sql(_UPSERT["sqlite"], (*rest, json.dumps(ids)))


def receivers(conn: Connection, record_id: str) -> list[dict[str, Any]]:
    """Which departments received a record, under which grant, first and last when: the
    record the id names now (an alias is followed) and every record merged into it, so a
    person's page keeps saying who received them under an id merged away."""
    a, d = db.aliases.c, db.departments.c
    found = conn.execute(select(a.canonical_id).where(a.old_id == record_id)).scalar()
    canonical = found or record_id
    merged = conn.execute(select(a.old_id).where(a.canonical_id == canonical)).scalars()
    ids = sorted({canonical, *merged})  # aliases are kept flat: one level
    stmt = (
        select(_RC.department, d.name, _RC.grant_id, _RC.first_at, _RC.last_at, _RC.export_id)
        .join(db.departments, d.code == _RC.department, isouter=True)
        .where(_RC.record_id.in_(ids))
        .order_by(_RC.first_at)
    )
    return [dict(r._mapping) for r in conn.execute(stmt)]


def takings(
    conn: Connection, department: str | None = None, limit: int = 500
) -> list[dict[str, Any]]:
    """The latest takings (one department's, or everyone's), newest first."""
    stmt = select(db.dept_exports).order_by(_E.at.desc()).limit(limit)
    if department is not None:
        stmt = stmt.where(_E.department == department)
    return [{**dict(r._mapping), "fields": db.loads(r.fields) or []} for r in conn.execute(stmt)]
