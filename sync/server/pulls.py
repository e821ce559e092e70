"""Pull pages (PROTOCOL.md §8): the changes after a cursor within the caller's scope.

Why apart from the push side: a page is a read-only view with its own performance traps (a
page over several grids, aliases of a range, JSON built from stored text), none of which the
op pipeline shares.
"""

from __future__ import annotations

import heapq
import itertools
import json
from collections.abc import Sequence
from json.encoder import encode_basestring
from typing import Any

from sqlalchemy import Engine, not_, or_, select, update
from sqlalchemy.engine import Connection, Row

from sync.server import db, gridsync, numbering, records, scopes
from sync.server.auth import User, iso, now
from sync.server.errors import ApiError
from sync.server.tasks import pull as task_pull


def page_json(
    engine: Engine, user: User, since: int, limit: int, backfill: tuple[str, int] | None = None
) -> bytes:
    """``pull`` as the response body: stored record JSON is spliced in, not re-encoded
    (a pull of 100 000 records would otherwise spend most of its time in ``json``).

    ``backfill`` = (grid, upto): a page of a grid that entered the caller's scope (scopes.py)."""
    rows, aliases, removed, grids, cursor, more, tasks, items, entered = _page_rows(
        engine, user, since, limit, backfill
    )
    if not more and backfill is None:
        _note_pull(engine, user)
    q = encode_basestring  # a JSON string literal, without json.dumps' per-call set-up
    parts = [
        f'{{"id":{q(x.id)},"form":{q(x.form)},"form_version":{int(x.form_version)},'
        f'"version":{int(x.version)},"data":{x.data},"status":{q(x.status)},'
        f'"deleted":{"true" if x.deleted else "false"},"conflict":{x.conflict or "null"},'
        f'"updated_at":{q(x.updated_at)},"updated_by":{q(x.updated_by)}}}'
        for x in rows
    ]
    tail = {
        "aliases": aliases,
        "removed": removed,
        "grids": grids,
        "tasks": tasks,
        **({"entered": entered} if entered else {}),  # scopes.py
        "cursor": cursor,
        "more": more,
    }
    body = (
        '{"records":['
        + ",".join(parts)
        + '],"task_items":'
        + items
        + ","
        + json.dumps(tail, ensure_ascii=False)[1:]
    )
    return body.encode()


def _page_rows(
    engine: Engine, user: User, since: int, limit: int, backfill: tuple[str, int] | None = None
) -> tuple[
    Sequence[Row[*tuple[Any, ...]]],
    list[dict[str, str]],
    list[str],
    list[dict[str, Any]],
    int,
    bool,
    list[dict[str, Any]],
    str,
    list[dict[str, Any]],
]:
    r, a, e = db.records.c, db.aliases.c, db.scope_exits.c
    caller = user
    if backfill is not None:  # scopes.py: the grid's records up to its ``upto``, nothing else
        user = scopes.narrowed(user, backfill[0])
    scope = sorted(user.grids) if user.grids is not None else None
    with db.read(engine) as conn:
        # The high-water mark first: every change numbered up to it is already committed.
        top = numbering.high_water(conn)
        if since > top:
            raise ApiError(409, "cursor_ahead")
        if backfill is not None:
            top = max(since, min(top, backfill[1]))
        stmt = select(
            r.id,
            r.form,
            r.form_version,
            r.version,
            r.data,
            r.status,
            r.deleted,
            r.conflict,
            r.updated_at,
            r.updated_by,
            r.seq,
        ).where(r.seq > since)
        # Task items count towards the page like records (PROTOCOL.md §13.2).
        item_seqs = task_pull.item_numbers(conn, scope, since, top, limit)
        if item_seqs:
            record_seqs = _record_numbers(conn, scope, since, top, limit)
            first = list(itertools.islice(heapq.merge(record_seqs, item_seqs), limit))
            more = len(first) == limit
            upper = first[-1] if more else top
            if scope is not None:
                stmt = stmt.where(r.grid.in_(scope))
            rows = conn.execute(stmt.where(r.seq <= upper).order_by(r.seq).limit(limit)).all()
        else:
            end = top
            if scope is None:
                stmt = stmt.where(r.seq <= top)
            else:
                end = top if len(scope) == 1 else _page_end(conn, scope, since, top, limit)
                stmt = stmt.where(r.seq <= end, r.grid.in_(scope))
            rows = conn.execute(stmt.order_by(r.seq).limit(limit)).all()
            # A short page covers (since, end], not (since, top]: on PostgreSQL each statement
            # sees the latest commits, and an update committed between ``_page_end`` and this
            # read renumbers its record past ``top``, leaving fewer rows than ``limit`` below
            # ``end`` while changes in (end, top] are still unsent.
            more = len(rows) == limit or end < top
            upper = int(rows[-1].seq) if len(rows) == limit else end
        # Aliases of the page's range first, then their records' grids: joining records
        # first made the database walk every record of the scope for each page.
        alias_rows = conn.execute(
            select(a.old_id, a.canonical_id).where(a.seq > since, a.seq <= upper).order_by(a.seq)
        ).all()
        if scope is not None and alias_rows:
            grids = records.brief(conn, [x.canonical_id for x in alias_rows])
            allowed = set(scope)
            alias_rows = [
                x for x in alias_rows if grids.get(x.canonical_id, ("", None))[1] in allowed
            ]
        removed: list[str] = []
        if scope is not None and backfill is None:
            exits = conn.execute(
                select(e.record_id)
                .join(db.records, r.id == e.record_id)
                .where(e.seq > since, e.seq <= upper, e.grid.in_(scope))
                .where(or_(r.grid.is_(None), not_(r.grid.in_(scope))))
                .order_by(e.seq)
            ).all()
            removed = list(dict.fromkeys(x.record_id for x in exits))
        changed_grids = gridsync.changed(conn, user.grids, since, upper)
        tasks = task_pull.tasks(conn, user, since, upper)
        items = task_pull.items_json(conn, scope, since, upper) if item_seqs else "[]"
        entered = scopes.entered(conn, caller, since, upper) if backfill is None else []
    aliases: list[dict[str, str]] = [
        {"old": x.old_id, "canonical": x.canonical_id} for x in alias_rows
    ]
    return rows, aliases, removed, changed_grids, upper, more, tasks, items, entered


def _record_numbers(
    conn: Connection, scope: Sequence[str] | None, since: int, top: int, limit: int
) -> list[int]:
    """The first ``limit`` record change numbers in ``(since, top]`` within the scope."""
    r = db.records.c
    if scope is None:
        stmt = select(r.seq).where(r.seq > since, r.seq <= top).order_by(r.seq).limit(limit)
        return [int(n) for n in conn.execute(stmt).scalars().all()]
    per_grid = [_grid_numbers(conn, grid, since, top, limit) for grid in scope]
    return [int(n) for n in itertools.islice(heapq.merge(*per_grid), limit)]


def _grid_numbers(conn: Connection, grid: str, since: int, top: int, limit: int) -> list[int]:
    r = db.records.c
    stmt = (
        select(r.seq)
        .where(r.grid == grid, r.seq > since, r.seq <= top)
        .order_by(r.seq)
        .limit(limit)
    )
    return [int(n) for n in conn.execute(stmt).scalars().all()]  # whole: see item_numbers


def _note_pull(engine: Engine, user: User) -> None:
    """Remember when the device last pulled to the end, for the console's "last sync".

    Why only at the end of a pull: one write per pull rather than one per page (a first pull
    is hundreds of pages), and "pulled to here" is what a supervisor wants to know."""
    if not user.device_id:
        return
    with db.write(engine) as conn:
        conn.execute(
            update(db.devices)
            .where(db.devices.c.device_id == user.device_id)
            .values(last_pull_at=iso(now()))
        )


def _page_end(conn: Connection, grids: Sequence[str], since: int, top: int, limit: int) -> int:
    """The change number that ends a page of ``limit`` changes over several grids.

    Why: ``grid IN (...) ORDER BY seq LIMIT n`` makes the database collect and sort every
    remaining change of those grids for each page (a first pull of 100 000 records read them
    all a hundred times). One short range per grid on the (grid, seq) index, merged here,
    finds where the page ends; the page itself then reads only its own rows."""
    r = db.records.c
    per_grid = [
        conn.execute(
            select(r.seq)
            .where(r.grid == grid, r.seq > since, r.seq <= top)
            .order_by(r.seq)
            .limit(limit)
        )
        .scalars()
        .all()
        for grid in grids
    ]
    first = list(itertools.islice(heapq.merge(*per_grid), limit))
    return int(first[-1]) if len(first) == limit else top
