"""Grids as pulls deliver them (PROTOCOL.md §8): numbered changes, read within a scope.

Why a change number and not "send every grid on every pull": a grid changes a few times a year
and a device pulls many times a day; numbering a grid's change from the same counter as records
lets a pull send it exactly once, on the page whose range holds the number, with the same
"the cursor never skips a change" guarantee.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from sync.server import db, numbering


def number_change(conn: Connection, code: str) -> int:
    """Give grid ``code`` the next change number; call last in the writing transaction
    (numbering.py: a pull that reaches the number also sees the grid's new name and boundary)."""
    number = numbering.take(conn, 1)
    conn.execute(update(db.grids).where(db.grids.c.code == code).values(seq=number))
    return number


def changed(
    conn: Connection, scope: frozenset[str] | None, since: int, upper: int
) -> list[dict[str, Any]]:
    """Grids in ``scope`` (``None``: all) whose change number is in ``(since, upper]``.

    A worker's scope is their own grids: another grid's boundary never leaves the server."""
    if scope is not None and not scope:
        return []
    g, cm = db.grids.c, db.communities.c
    stmt = (
        select(g.code, g.name, g.community, cm.name.label("community_name"), g.level, g.polygon)
        .select_from(db.grids.outerjoin(db.communities, cm.code == g.community))
        .where(g.seq > since, g.seq <= upper)
        .order_by(g.seq)
    )
    if scope is not None:
        stmt = stmt.where(g.code.in_(sorted(scope)))
    return [
        {
            "code": r.code,
            "name": r.name,
            "community": r.community,
            "community_name": r.community_name or "",
            "level": r.level,
            "polygon": db.loads(r.polygon) if r.polygon else None,
        }
        for r in conn.execute(stmt)
    ]
