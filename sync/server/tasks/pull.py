"""Tasks and items as pull pages carry them (PROTOCOL.md §13.2).

Items count towards a page like records: a task over 100 000 records must not make one page
of 100 000 items, so the page end is the ``limit``-th change among records and items of the
caller's scope together (``item_numbers`` gives the items' side of that merge).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from sync.server import db
from sync.server.auth import User
from sync.server.tasks import store

_I, _T, _G, _A = db.task_items.c, db.tasks.c, db.task_grids.c, db.task_assignees.c
_NAMED = db.task_assignees.alias("named")


def hidden(conn: Connection, user: User, scope: Sequence[str] | None) -> list[str]:
    """Tasks of the caller's grids that name other workers: a worker gets neither them nor
    their items (PROTOCOL.md §13.2). Why read once per page: a grid has a few tasks, and a
    correlated test per item would cost each of a 100 k-item task's items two probes."""
    if user.role != "worker" or not scope:
        return []
    mine = select(_NAMED.c.task_id).where(_NAMED.c.username == user.username)
    of_scope = select(_G.task_id).where(_G.grid.in_(list(scope)))
    stmt = (
        select(_A.task_id)
        .distinct()
        .where(_A.task_id.in_(of_scope), _A.task_id.not_in(mine))
        .order_by(_A.task_id)
    )
    return [str(t) for t in conn.execute(stmt).scalars().all()]


def _shown(hide: Sequence[str]) -> list[ColumnElement[bool]]:
    return [_I.task_id.not_in(list(hide))] if hide else []


def item_numbers(
    conn: Connection,
    scope: Sequence[str] | None,
    since: int,
    top: int,
    limit: int,
    hide: Sequence[str] = (),
) -> list[int]:
    """The first ``limit`` item change numbers in ``(since, top]`` within the scope, in order
    (one range of the (grid, seq) index per grid). Every query here is fetched whole
    (``.all()``): row-by-row iteration costs psycopg a result check per row, which doubled
    a 100 k-item task's pull on PostgreSQL. ``hide``: tasks whose items the caller does not
    get (``hidden``)."""
    if scope is None:
        stmt = select(_I.seq).where(_I.seq > since, _I.seq <= top).order_by(_I.seq).limit(limit)
        return [int(n) for n in conn.execute(stmt).scalars().all()]
    numbers: list[int] = []
    for grid in scope:
        stmt = (
            select(_I.seq)
            .where(_I.grid == grid, _I.seq > since, _I.seq <= top, *_shown(hide))
            .order_by(_I.seq)
            .limit(limit)
        )
        numbers.extend(int(n) for n in conn.execute(stmt).scalars().all())
    return sorted(numbers)[:limit]


def items_json(
    conn: Connection,
    scope: Sequence[str] | None,
    since: int,
    upper: int,
    hide: Sequence[str] = (),
) -> str:
    """The page's items as a JSON array text (built directly: a page may hold thousands);
    ``hide`` as for ``item_numbers``."""
    cols = (
        _I.id,
        _I.task_id,
        _I.record_id,
        _I.grid,
        _I.state,
        _I.reason,
        _I.updated_at,
        _I.updated_by,
        _I.seq,
    )
    if scope is None:
        rows = conn.execute(
            select(*cols).where(_I.seq > since, _I.seq <= upper).order_by(_I.seq)
        ).all()
    else:
        rows = []
        for grid in scope:
            stmt = select(*cols).where(
                _I.grid == grid, _I.seq > since, _I.seq <= upper, *_shown(hide)
            )
            rows.extend(conn.execute(stmt).all())
        rows.sort(key=lambda r: r.seq)
    keys = ("id", "task_id", "record_id", "grid", "state", "reason", "updated_at", "updated_by")
    # orjson writes the array (about 1 us per item against 4 us for Python formatting): a
    # 100 k-item task's pull is mostly these items
    return orjson.dumps([dict(zip(keys, r[:8], strict=True)) for r in rows]).decode()


def tasks(
    conn: Connection, user: User, since: int, upper: int
) -> tuple[list[dict[str, Any]], list[str]]:
    """Tasks changed in ``(since, upper]`` that reach the caller, in change order, and the ids
    of those that have one of the caller's grids but name other workers (``tasks_withdrawn``:
    a device that had one drops it; the ids only, never the task)."""
    rows = [
        dict(r)
        for r in conn.execute(
            select(db.tasks).where(_T.seq > since, _T.seq <= upper).order_by(_T.seq)
        ).mappings()
    ]
    if not rows:
        return [], []
    ids = [r["id"] for r in rows]
    grids, assignees = store.grids_of(conn, ids), store.assignees_of(conn, ids)
    reach, withdrawn = [], []
    for r in rows:
        mine, names = grids[r["id"]], assignees[r["id"]]
        if store.visible(user, mine, names):
            reach.append(store.wire(r, mine, names, user))
        elif any(user.in_scope(g) for g in mine):
            withdrawn.append(r["id"])
    return reach, withdrawn
