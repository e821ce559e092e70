"""Who a token belongs to, in one statement: the token, its user and the user's grid scope.

Why: every request of every device authenticates, and every nightly sync exchanges its
credential; the token row, the user row, the worker's ``user_grids`` (or the supervisor's
community grids) and a worker's community used to be three or four statements per request.
The credential exchange also reads the device's stored installation digest here (the copy
check of ``devices.claim``). Nothing is cached between requests: a revoked token, a disabled user or a changed scope counts
at the next request, on every server process.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, bindparam, select
from sqlalchemy.engine import Connection

from sync.server import db


@dataclass(frozen=True)
class Found:
    """A token row with its user and scope (``grids``: ``None`` for an admin)."""

    username: str
    device_id: str
    expires_at: str
    revoked_at: str | None
    kind: str
    role: str
    community: str | None
    disabled: bool
    department: str | None
    grids: frozenset[str] | None
    grid_community: str | None  # a worker's community: the one all their grids belong to
    installation: str | None  # the installation digest stored for the token's device id


_T, _U = db.tokens.c, db.users.c
_MINE = db.user_grids.alias("mine")  # a worker's own grids
_OWN = db.grids.alias("own")  # the grid rows of those (their communities)
_AREA = db.grids.alias("area")  # a supervisor's community's grids
_DEV = db.devices.c

# The worker's grids' communities and the device's installation are scalar sub-queries, not
# joins: PostgreSQL planned every statement at each call (nothing was prepared) and searched the
# join orders of six relations three times per nightly sync (token, push, pull): 0.33 ms of
# backend CPU a call, 0.28 with four (tests/bench/bench_plan_costs.py, 20 k records; the same
# rows, as ``grids.code`` and ``devices.device_id`` are keys).
_OWN_COMMUNITY = select(_OWN.c.community).where(_OWN.c.code == _MINE.c.grid).scalar_subquery()
_INSTALLATION = select(_DEV.installation).where(_DEV.device_id == _T.device_id).scalar_subquery()

_FIND = db.prepared(  # three times per nightly sync: planned once per connection
    select(
        _T.username,
        _T.device_id,
        _T.expires_at,
        _T.revoked_at,
        _T.kind,
        _U.role,
        _U.community,
        _U.disabled,
        _U.department,
        _MINE.c.grid.label("mine"),
        _OWN_COMMUNITY.label("own_community"),
        _AREA.c.code.label("area"),
        _INSTALLATION.label("installation"),
    )
    .select_from(
        db.tokens.join(db.users, _U.username == _T.username)
        .outerjoin(_MINE, and_(_MINE.c.username == _T.username, _U.role == "worker"))
        .outerjoin(_AREA, and_(_AREA.c.community == _U.community, _U.role == "supervisor"))
    )
    .where(_T.token_hash == bindparam("digest"))
)


def find(conn: Connection, digest: str) -> Found | None:
    """The token stored under ``digest`` with its user and scope; ``None`` if unknown."""
    rows = conn.execute(_FIND, {"digest": digest}).all()
    if not rows:
        return None
    first = rows[0]
    grids: frozenset[str] | None
    if first.role == "admin":
        grids = None
    elif first.role == "supervisor":
        grids = frozenset(r.area for r in rows if r.area is not None)
    elif first.role == "worker":
        grids = frozenset(r.mine for r in rows if r.mine is not None)
    else:  # a department account touches no grid: it reads only through its grants
        grids = frozenset()
    communities = {r.own_community for r in rows if r.own_community is not None}
    return Found(
        first.username,
        first.device_id,
        first.expires_at,
        first.revoked_at,
        first.kind,
        first.role,
        first.community,
        bool(first.disabled),
        first.department,
        grids,
        communities.pop() if len(communities) == 1 else None,
        first.installation,
    )
