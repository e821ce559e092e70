"""Grids entering a scope (PROTOCOL.md §8 ``entered``): numbered grants and grid backfills.

Why: a pull sends records whose change number is above the device's cursor, so a grid given to
a worker (or moved into a supervisor's community) after the cursor passed its records' numbers
would reach the device one changed record at a time, and the worker would register the rest
again. Each grant takes a number from the one change counter, in the transaction that changes
the scope; the pull page whose range holds it names the grid with ``upto`` = the page's
``since`` (every record of the grid numbered above it arrives through the ordinary cursor, now
that the grid is in scope), and the device fetches the grid's records numbered ``<= upto`` with
``GET /v1/pull?grid=&upto=`` — the ordinary page code with the scope narrowed to that grid.
Being numbered, a grant inherits the cursor's guarantee: a lost answer is asked again with the
same ``since`` and names the grid again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, insert, or_, select
from sqlalchemy.engine import Connection

from sync.server import db, numbering

if TYPE_CHECKING:  # auth calls grant_user: no import of auth at run time
    from sync.server.auth import User


def grant_user(conn: Connection, username: str, grids: Iterable[str]) -> int:
    """Number the entry of each of ``grids`` into ``username``'s scope; returns how many.

    Call last in the writing transaction (numbering.py), after the scope itself changed."""
    return _grant(conn, sorted(set(grids)), username=username)


def grant_community(conn: Connection, community: str, grid: str) -> int:
    """Number the entry of ``grid`` into ``community`` (its supervisors' scope)."""
    return _grant(conn, [grid], community=community)


def _grant(
    conn: Connection, grids: list[str], *, username: str | None = None, community: str | None = None
) -> int:
    if not grids:
        return 0
    first = numbering.take(conn, len(grids))
    at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    conn.execute(
        insert(db.scope_grants),
        [
            {"seq": first + i, "grid": g, "username": username, "community": community, "at": at}
            for i, g in enumerate(grids)
        ],
    )
    return len(grids)


def entered(conn: Connection, user: User, since: int, upper: int) -> list[dict[str, Any]]:
    """Grids of the caller's scope granted in ``(since, upper]``: ``[{"grid", "upto"}]``.

    Nothing for a first pull (``since`` 0 brings the whole scope) or an admin (their pulls are
    never narrowed by scope)."""
    if since <= 0 or not user.grids or upper <= since:
        return []
    s = db.scope_grants.c
    whose = s.username == user.username
    if user.role == "supervisor" and user.community:
        whose = or_(whose, s.community == user.community)
    stmt = select(s.grid).where(and_(s.seq > since, s.seq <= upper, whose)).order_by(s.seq)
    grids = dict.fromkeys(g for g in conn.execute(stmt).scalars() if g in user.grids)
    return [{"grid": g, "upto": since} for g in grids]


def narrowed(user: User, grid: str) -> User:
    """The caller as a backfill of ``grid`` sees it: their scope cut down to that grid (empty
    when it is no longer theirs; an admin's backfill is that one grid too)."""
    allowed = user.grids is None or grid in user.grids
    return replace(user, grids=frozenset({grid}) if allowed else frozenset())
