"""Taking data under a grant: the full export paged by cursor, and the feed of changes since a
cursor (PROTOCOL.md §14).

The export walks the granted forms' records in id order; its first page notes the change number
it started at (``feed_cursor``), so the feed from there brings every change made meanwhile. The
feed walks the change sequence: a changed record the grant still takes comes as an ``upsert``; a
record that was deleted, no longer matches the filter or left the grant's grids (``scope_exits``)
comes as a ``remove`` (its id only), so the department can delete it. Applying the feed to an
export gives exactly what a fresh export gives.

Cursors are opaque base64 JSON naming the grant, its revision and (a digest of) the grids it
covered: narrowing a grant, or a grid moved into or out of its communities, voids them (409
``grant_changed``) — records that left with their grid had no change of their own to say
``remove``, so the department takes a fresh export.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, and_, func, select
from sqlalchemy.engine import Connection

from app.core.forms import FormSet
from sync.server import db, numbering
from sync.server.dept import trace
from sync.server.dept.grants import Grant
from sync.server.dept.project import parse
from sync.server.dept.shape import Shaper
from sync.server.errors import ApiError

PAGE = 1000
MAX_PAGE = 5000
SCAN_FACTOR = 4  # an export page reads at most this many records per record it may return
SCAN_CHUNK = 5000  # rows fetched at a time (an export page stops reading when it is full)
_R, _X = db.records.c, db.scope_exits.c


def encode_cursor(payload: dict[str, Any]) -> str:
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str, grant: Grant, kind: str) -> dict[str, Any]:
    """The cursor's content; 422 ``bad_cursor`` if it is not one of this grant's, 409
    ``grant_changed`` if the grant was narrowed since."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        payload = json.loads(raw)
    except (ValueError, binascii.Error):
        raise ApiError(422, "bad_cursor") from None
    if not isinstance(payload, dict) or payload.get("g") != grant.id or payload.get("k") != kind:
        raise ApiError(422, "bad_cursor")
    if payload.get("r") != grant.revision:
        raise ApiError(409, "grant_changed")
    return payload


def places(shaper: Shaper) -> str:
    """A digest of the grids a grant covers now ("" for a grant over every grid)."""
    if shaper.everywhere:
        return ""
    return hashlib.sha256("\n".join(sorted(shaper.grids)).encode()).hexdigest()[:16]


def check_places(payload: dict[str, Any], shaper: Shaper) -> None:
    """409 ``grant_changed`` when the grant's grids are no longer those the cursor was given
    under. A cursor without the digest (given before it was written) is taken as it is: the
    check tells an honest client to export again, it guards no data (every page is shaped by
    the grant as it is now). The same when the fields given reduced (``shape``) differ; here a
    cursor without the digest is refused when the grant reduces some (it predates the rule)."""
    if "p" in payload and payload["p"] != places(shaper):
        raise ApiError(409, "grant_changed")
    if payload.get("z", "") != shape(shaper):
        raise ApiError(409, "grant_changed")


def shape(shaper: Shaper) -> str:
    """A digest of the fields the grant gives reduced beside a masked ID number ("" for none).
    A cursor given before they were reduced (a grant approved before the rule, a form set that
    changed) is then refused: the copy it built holds whole values a fresh export reduces,
    and the feed brings only records that change."""
    parts = sorted(
        f"{form}.{name}:{kind}"
        for form, found in shaper.grant.reduced(shaper.formset).items()
        for name, kind in found.items()
    )
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16] if parts else ""


def watermark(conn: Connection) -> int:
    return numbering.high_water(conn)


@dataclass
class Page:
    """One page of an export or a feed, and its trace."""

    items: list[dict[str, Any]] = field(default_factory=list)
    cursor: str = ""
    done: bool = False
    feed_cursor: str = ""
    export_id: str = ""

    def taken(self) -> list[str]:
        return [i["id"] for i in self.items if i.get("op", "upsert") == "upsert"]


Scanned = tuple[str, str, str, int, dict[str, Any]]  # id, form, grid, version, data


def _item(
    shaper: Shaper, rid: str, form: str, version: int, data: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        "id": rid,
        "form": form,
        "version": int(version),
        "fields": shaper.projector(form).values(data),
    }


def _scan_sql(conn: Connection, shaper: Shaper, forms: list[str]) -> tuple[str, list[Any]]:
    """The scan's statement for the driver itself, with its leading parameters (the grid
    condition as ``Shaper.where_grid`` gives it; ``id > ?`` and ``LIMIT ?`` follow)."""
    mark = "%s" if conn.dialect.name == "postgresql" else "?"
    params: list[Any] = list(forms)
    where = [f"form IN ({', '.join([mark] * len(forms))})"]
    if shaper.everywhere:
        where.append("grid IS NOT NULL")
    else:
        grids = sorted(shaper.grids)
        where.append(f"grid IN ({', '.join([mark] * len(grids))})")
        params += grids
    where += ["deleted = false", f"id > {mark}"]
    sql = (
        "SELECT id, form, grid, version, data FROM records WHERE "
        + " AND ".join(where)
        + f" ORDER BY id LIMIT {mark}"
    )
    return sql, params


def scan(
    conn: Connection,
    shaper: Shaper,
    after: str,
    limit: int,
    forms: Sequence[str] | None = None,
) -> Iterator[Scanned]:
    """(id, form, grid, version, data) of the live records of the grant's forms (or of
    ``forms`` among them) in its grids with id > ``after``, in id order, reading at most
    ``limit`` rows (the caller resumes after the last id read and applies ``shaper.takes``).

    Rows come a chunk at a time from one ``fetchall`` of the driver's own cursor, as plain
    tuples: on a full export SQLAlchemy's row objects and row-by-row fetching cost more than
    reading the rows. A caller that stops early has read at most one chunk too many."""
    wanted = [f for f in shaper.grant.forms if forms is None or f in forms]
    if not shaper.grids or not wanted:
        return
    sql, params = _scan_sql(conn, shaper, wanted)
    cursor = conn.connection.cursor()
    try:
        left = limit
        while left > 0:
            size = min(left, SCAN_CHUNK)
            cursor.execute(sql, (*params, after, size))
            rows = cursor.fetchall()
            for rid, form, grid, version, data in rows:
                yield rid, form, grid, version, parse(data)
            if len(rows) < size:
                return
            left -= size
            after = rows[-1][0]
    finally:
        cursor.close()


def export_page(
    engine: Engine,
    formset: FormSet,
    grant: Grant,
    taker: trace.Taker,
    cursor: str | None,
    limit: int = PAGE,
) -> Page:
    """One page of the full export (at most ``limit`` records), traced."""
    limit = max(1, min(limit, MAX_PAGE))
    state = decode_cursor(cursor, grant, "export") if cursor else None
    page = Page()
    with db.read(engine) as conn:
        mark = int(state["w"]) if state else watermark(conn)
        after = str(state["a"]) if state else ""
        shaper = Shaper.of(conn, formset, grant)
        if state:
            check_places(state, shaper)
        where = places(shaper)
        read = 0
        last = after
        budget = limit * SCAN_FACTOR
        for rid, form, grid, version, data in scan(conn, shaper, after, budget):
            read += 1
            last = rid
            if shaper.takes(form, grid, False, data):  # scan reads live records only
                page.items.append(_item(shaper, rid, form, version, data))
                if len(page.items) >= limit:
                    break
    exhausted = read < budget and len(page.items) < limit
    page.done = exhausted
    z = shape(shaper)
    page.cursor = "" if exhausted else encode_cursor(_export_state(grant, last, mark, where, z))
    page.feed_cursor = encode_cursor(
        _with_shape({"g": grant.id, "r": grant.revision, "k": "feed", "s": mark, "p": where}, z)
    )
    page.export_id = trace.once(engine, taker, grant, "export", len(page.items), page.taken())
    return page


def _export_state(grant: Grant, after: str, mark: int, where: str, z: str) -> dict[str, Any]:
    state = {"g": grant.id, "r": grant.revision, "k": "export", "a": after, "w": mark, "p": where}
    return _with_shape(state, z)


def _with_shape(payload: dict[str, Any], z: str) -> dict[str, Any]:
    """The cursor with the digest of its reduced fields (left out when none, as before)."""
    return {**payload, "z": z} if z else payload


def feed_page(
    engine: Engine,
    formset: FormSet,
    grant: Grant,
    taker: trace.Taker,
    cursor: str,
    limit: int = PAGE,
) -> Page:
    """Changes after ``cursor``: upserts and removals in change order, traced."""
    limit = max(1, min(limit, MAX_PAGE))
    state = decode_cursor(cursor, grant, "feed")
    since = int(state["s"])
    page = Page()
    with db.read(engine) as conn:
        top = watermark(conn)
        if since > top:
            raise ApiError(409, "cursor_ahead")
        shaper = Shaper.of(conn, formset, grant)
        check_places(state, shaper)
        grids = sorted(shaper.grids)
        rows = _changed(conn, shaper, grids, since, limit)
        full = len(rows) == limit
        upto = int(rows[-1].seq) if full else top
        changes = [(int(r.seq), r.id, r) for r in rows]
        changes += [(seq, rid, None) for seq, rid in _exits(conn, grids, since, upto)]
        changes.sort(key=lambda c: (c[0], c[1]))
        page.items = _feed_items(conn, shaper, changes)
    page.done = not full
    state = {"g": grant.id, "r": grant.revision, "k": "feed", "s": upto, "p": places(shaper)}
    page.cursor = encode_cursor(_with_shape(state, shape(shaper)))
    page.export_id = trace.once(engine, taker, grant, "feed", len(page.items), page.taken())
    return page


def _changed(conn: Connection, shaper: Shaper, grids: list[str], since: int, limit: int) -> list:
    if not grids or not shaper.grant.forms:
        return []
    stmt = (
        select(_R.id, _R.form, _R.grid, _R.data, _R.deleted, _R.version, _R.seq)
        .where(shaper.where_grid(_R.grid), _R.form.in_(shaper.grant.forms), _R.seq > since)
        .order_by(_R.seq)
        .limit(limit)
    )
    return list(conn.execute(stmt))


def _exits(conn: Connection, grids: list[str], since: int, upto: int) -> list[tuple[int, str]]:
    if not grids:
        return []
    stmt = select(_X.seq, _X.record_id).where(
        _X.grid.in_(grids), and_(_X.seq > since, _X.seq <= upto)
    )
    return [(int(r.seq), r.record_id) for r in conn.execute(stmt)]


def _feed_items(
    conn: Connection, shaper: Shaper, changes: list[tuple[int, str, Any]]
) -> list[dict[str, Any]]:
    """Upserts for records the grant takes now, removals for the rest (latest state only)."""
    exited = [rid for _seq, rid, row in changes if row is None]
    now_in = _still_in(conn, shaper, exited)
    out: list[dict[str, Any]] = []
    for seq, rid, row in changes:
        if row is None:
            if rid not in now_in:  # left the grant's grids (back in: its own change says so)
                out.append({"op": "remove", "id": rid, "seq": seq})
            continue
        data = parse(row.data)
        if shaper.takes(row.form, row.grid, bool(row.deleted), data):
            item = _item(shaper, row.id, row.form, row.version, data)
            out.append({"op": "upsert", "seq": seq, **item})
        else:
            out.append({"op": "remove", "id": rid, "seq": seq})
    return out


def _still_in(conn: Connection, shaper: Shaper, ids: list[str]) -> set[str]:
    """Of these record ids, those whose grid is (again) one of the grant's."""
    found: set[str] = set()
    for i in range(0, len(ids), 500):
        part = ids[i : i + 500]
        rows = conn.execute(select(_R.id, _R.grid).where(_R.id.in_(part)))
        found |= {r.id for r in rows if r.grid in shaper.grids}
    return found


def count_taken(conn: Connection, grant_id: int) -> int:
    """How many records a grant's department has received so far."""
    rc = db.dept_received.c
    return int(conn.execute(select(func.count()).where(rc.grant_id == grant_id)).scalar_one())
