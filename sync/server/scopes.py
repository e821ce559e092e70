"""Grids entering a scope (PROTOCOL.md §8 ``entered``): numbered grants and grid backfills.

Why: a pull sends records whose change number is above the device's cursor, so a grid given to
a worker (or moved into a supervisor's community) after the cursor passed its records' numbers
would reach the device one changed record at a time, and the worker would register the rest
again. Each grant takes a number from the one change counter, in the transaction that changes
the scope; the pull page whose range holds it names the grid with ``upto`` = the page's
``cursor`` (every record of the grid numbered above it arrives through the ordinary cursor, now
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

from sqlalchemy import and_, bindparam, exists, insert, or_, select
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


_S, _GR, _U, _MINE = db.scope_grants.c, db.grids.c, db.users.c, db.user_grids.c
# ``entered``'s two statements, built once (a pull built them anew: issue 19, server CPU).
_ENTERED_WORKER = db.prepared(
    select(_S.grid)
    .select_from(
        db.scope_grants.join(
            db.user_grids, and_(_MINE.username == bindparam("username"), _MINE.grid == _S.grid)
        )
    )
    .where(_S.username == bindparam("username"))
    .where(_S.seq > bindparam("since"), _S.seq <= bindparam("upper"))
    .order_by(_S.seq)
)
_ENTERED_SUPERVISOR = (
    select(_S.grid)
    .select_from(
        db.scope_grants.join(db.grids, _GR.code == _S.grid).join(
            db.users, and_(_U.username == bindparam("username"), _U.community == _GR.community)
        )
    )
    .where(or_(_S.username == bindparam("username"), _S.community == _U.community))
    .where(_S.seq > bindparam("since"), _S.seq <= bindparam("upper"))
    .order_by(_S.seq)
)


def entered(conn: Connection, user: User, since: int, upper: int) -> list[dict[str, Any]]:
    """Grids granted to the caller in ``(since, upper]`` and in their scope as this read sees
    it: ``[{"grid", "upto": upper}]``.

    Why the scope is read again here and ``upto`` is the page's end: the caller's scope was
    read before this page (``caller.find``), so a grant committed in between is in the page's
    range while the page's records were chosen without the grid; the grid's records up to
    ``upper`` are then fetched whole. A first pull (``since`` 0) names only such grids: every
    other grid of its scope is on its pages. An admin's pulls are never narrowed by scope."""
    if user.grids is None or user.role not in ("worker", "supervisor") or upper <= since:
        return []
    stmt = _ENTERED_WORKER if user.role == "worker" else _ENTERED_SUPERVISOR
    params = {"username": user.username, "since": since, "upper": upper}
    found = dict.fromkeys(conn.execute(stmt, params).scalars().all())
    if since <= 0:  # a first pull: only grids its pages were chosen without
        found = {grid: None for grid in found if grid not in user.grids}
    return [{"grid": grid, "upto": upper} for grid in found]


def leave_user(conn: Connection, username: str, grids: Iterable[str]) -> int:
    """Number the leaving of each of ``grids`` from ``username``'s scope (a worker's grids, a
    supervisor's community); returns how many. Call last in the writing transaction
    (numbering.py), after the scope changed.

    Why numbered as grants are: the device learns it from the pull page whose range holds the
    number (``grids_left``) and takes the grid's tasks off its list; a lost answer is asked
    again with the same ``since`` and names the grid again."""
    gone = sorted(set(grids))
    if not gone:
        return 0
    first = numbering.take(conn, len(gone))
    at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    conn.execute(
        insert(db.scope_leaves),
        [{"seq": first + i, "grid": g, "username": username, "at": at} for i, g in enumerate(gone)],
    )
    return len(gone)


def leave_community(conn: Connection, community: str, grid: str) -> int:
    """Number ``grid`` leaving ``community``: one leave per supervisor of it (a row per user,
    as a worker's, so the pull reads leaves one way; a community has few supervisors, and
    one appointed later never had the grid)."""
    names = conn.execute(
        select(_U.username).where(_U.role == "supervisor", _U.community == community)
    ).scalars()
    return sum(leave_user(conn, name, [grid]) for name in names.all())


_L = db.scope_leaves.c
_LEFT = db.prepared(
    select(_L.grid)
    .where(_L.username == bindparam("username"))
    .where(_L.seq > bindparam("since"), _L.seq <= bindparam("upper"))
    .where(~exists().where(_MINE.username == bindparam("username"), _MINE.grid == _L.grid))
    .where(
        ~exists().where(
            _U.username == bindparam("username"),
            _U.role == "supervisor",
            _GR.community == _U.community,
            _GR.code == _L.grid,
        )
    )
    .order_by(_L.seq)
)


def left(conn: Connection, user: User, since: int, upper: int) -> list[str]:
    """Grids taken from the caller in ``(since, upper]`` and not theirs as this read sees it
    (a worker's grid, or a grid of a supervisor's community).

    Why the scope is read again in the statement: the caller's scope was read before the
    page, so a grid taken in between would still look theirs and its leave, now behind the
    cursor, would never be named. A grid given back since is named in ``entered`` instead. A
    first pull names none: its device has nothing of a grid it never had."""
    if user.grids is None or since <= 0 or upper <= since:
        return []
    params = {"username": user.username, "since": since, "upper": upper}
    return list(dict.fromkeys(conn.execute(_LEFT, params).scalars().all()))


def narrowed(user: User, grid: str) -> User:
    """The caller as a backfill of ``grid`` sees it: their scope cut down to that grid (empty
    when it is no longer theirs; an admin's backfill is that one grid too)."""
    allowed = user.grids is None or grid in user.grids
    return replace(user, grids=frozenset({grid}) if allowed else frozenset())
