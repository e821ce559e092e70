"""Grids as pulls deliver them (PROTOCOL.md §8): numbered changes, read within a scope.

Why a change number and not "send every grid on every pull": a grid changes a few times a year
and a device pulls many times a day; numbering a grid's change from the same counter as records
lets a pull send it exactly once, on the page whose range holds the number, with the same
"the cursor never skips a change" guarantee.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection

from sync.server import db, numbering
from sync.server.sqlin import Built


def number_change(conn: Connection, code: str) -> int:
    """Give grid ``code`` the next change number; call last in the writing transaction
    (numbering.py: a pull that reaches the number also sees the grid's new name and boundary)."""
    number = numbering.take(conn, 1)
    conn.execute(update(db.grids).where(db.grids.c.code == code).values(seq=number))
    return number


_G, _CM = db.grids.c, db.communities.c
# Built once (a pull of a page with grid changes built, compiled and cache-keyed it anew: ~5 %
# of a city night's server CPU, issue 19); the scope comes as a list parameter (``sqlin``).
_CHANGED = (
    select(_G.code, _G.name, _G.community, _CM.name.label("community_name"), _G.level, _G.polygon)
    .select_from(db.grids.outerjoin(db.communities, _CM.code == _G.community))
    .where(_G.seq > bindparam("since"), _G.seq <= bindparam("upper"))
    .order_by(_G.seq)
)
_CHANGED_IN = Built(lambda among: db.prepared(_CHANGED.where(among(_G.code, "scope"))))


def changed(
    conn: Connection, scope: frozenset[str] | None, since: int, upper: int
) -> list[dict[str, Any]]:
    """Grids in ``scope`` (``None``: all) whose change number is in ``(since, upper]``.

    A worker's scope is their own grids: another grid's boundary never leaves the server."""
    if scope is not None and not scope:
        return []
    params: dict[str, Any] = {"since": since, "upper": upper}
    stmt = _CHANGED
    if scope is not None:
        stmt, params["scope"] = _CHANGED_IN.on(conn), sorted(scope)
    return [
        {
            "code": r.code,
            "name": r.name,
            "community": r.community,
            "community_name": r.community_name or "",
            "level": r.level,
            "polygon": db.loads(r.polygon) if r.polygon else None,
        }
        for r in conn.execute(stmt, params)
    ]
