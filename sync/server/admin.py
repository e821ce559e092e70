"""Administration of the platform: communities, grids, users, tokens and base data.

Used by ``gridcollect server-admin`` and by tests. Base data (a city-mirror CSV/XLSX of residents,
houses, ...) is loaded by ``baseload`` (``load_base`` and ``LoadReport`` are named here too).
"""

from __future__ import annotations

from sqlalchemy import Engine, insert, select, update

from sync.server import auth, db, gridsync, scopes
from sync.server.baseload import BASE_DEVICE as BASE_DEVICE
from sync.server.baseload import LoadReport as LoadReport
from sync.server.baseload import load_base as load_base

ADMIN_CLI = "server-admin"  # who the audit log names for a change made on the command line


def put_community(engine: Engine, code: str, name: str) -> None:
    """Create or rename a community (社区)."""
    with db.write(engine) as conn:
        c = db.communities.c
        if conn.execute(select(c.code).where(c.code == code)).first():
            conn.execute(update(db.communities).where(c.code == code).values(name=name))
        else:
            conn.execute(insert(db.communities).values(code=code, name=name))


def put_grid(engine: Engine, code: str, name: str, community: str, level: str = "1") -> None:
    """Create or update a grid (网格) of a community; the community must exist."""
    with db.write(engine) as conn:
        if (
            conn.execute(
                select(db.communities.c.code).where(db.communities.c.code == community)
            ).first()
            is None
        ):
            raise ValueError(f"unknown community {community!r}; create it first")
        g = db.grids.c
        values = {"name": name, "community": community, "level": level}
        old = conn.execute(select(g.name, g.community, g.level).where(g.code == code)).first()
        if old is None:
            conn.execute(insert(db.grids).values(code=code, **values))
        elif tuple(old) != (name, community, level):
            conn.execute(update(db.grids).where(g.code == code).values(**values))
        else:
            return  # nothing changed: devices need not hear of it again
        gridsync.number_change(conn, code)  # devices in scope get it on their next pull
        if old is None or old.community != community:
            # its supervisors' devices fetch the records it already holds (scopes.py)
            scopes.grant_community(conn, community, code)
        if old is not None and old.community != community:
            # the old community's supervisors' devices drop its tasks (pull: grids_left)
            scopes.leave_community(conn, old.community, code)


def set_boundary(engine: Engine, code: str, points: list[list[float]]) -> bool:
    """Store a grid's boundary ([[lon, lat], ...], checked by the caller); False when the
    grid is unknown. Devices in the grid's scope get it on their next pull."""
    with db.write(engine) as conn:
        g = db.grids.c
        done = conn.execute(
            update(db.grids).where(g.code == code).values(polygon=db.dumps(points))
        ).rowcount
        if done:
            gridsync.number_change(conn, code)
    return bool(done)


def put_user(
    engine: Engine,
    username: str,
    password: str,
    role: str,
    *,
    community: str | None = None,
    grids: list[str] | None = None,
    department: str | None = None,
) -> None:
    """Create or replace a user; a worker's grids, a supervisor's community and a department
    account's department must exist."""
    with db.write(engine) as conn:
        if department and (
            conn.execute(
                select(db.departments.c.code).where(db.departments.c.code == department)
            ).first()
            is None
        ):
            raise ValueError(f"unknown department {department!r}; add it first")
        known = set(auth.all_grids(conn))
        missing = [g for g in grids or [] if g not in known]
        if missing:
            raise ValueError(f"unknown grid(s): {', '.join(missing)}")
        if (
            community
            and conn.execute(
                select(db.communities.c.code).where(db.communities.c.code == community)
            ).first()
            is None
        ):
            raise ValueError(f"unknown community {community!r}")
        auth.create_user(
            conn, username, password, role, community=community, grids=grids, department=department
        )


def set_user_grids(engine: Engine, username: str, grids: list[str]) -> tuple[list[str], list[str]]:
    """``server-admin set-grids``: give a worker exactly these grids (password and logins kept),
    with an audit row by ``server-admin``; returns (gained, lost). Their devices fetch the
    records of the gained grids on their next sync (PROTOCOL.md §8 ``entered``)."""
    from sync.server.console import audit

    with db.write(engine) as conn:
        u = db.users.c
        role = conn.execute(select(u.role).where(u.username == username)).scalar_one_or_none()
        if role is None:
            raise ValueError(f"unknown user {username!r}")
        if role != "worker":
            raise ValueError(f"{username!r} is a {role}, not a worker: only workers have grids")
        if not grids:
            raise ValueError("a worker needs at least one --grid")
        known = set(auth.all_grids(conn))
        missing = [g for g in grids if g not in known]
        if missing:
            raise ValueError(f"unknown grid(s): {', '.join(missing)}")
        gained, lost = auth.set_grids(conn, username, grids)
        if gained or lost:
            audit.event(conn, ADMIN_CLI, "", "set_grids", username)
    return gained, lost


def put_department(engine: Engine, code: str, name: str) -> None:
    """Create or rename a department (民政, 卫健, 公安…) that takes data under grants."""
    with db.write(engine) as conn:
        d = db.departments.c
        if conn.execute(select(d.code).where(d.code == code)).first():
            conn.execute(update(db.departments).where(d.code == code).values(name=name))
        else:
            conn.execute(
                insert(db.departments).values(code=code, name=name, created_at=auth.iso(auth.now()))
            )


def set_disabled(engine: Engine, username: str, disabled: bool) -> bool:
    """``server-admin disable-user``/``enable-user``: the console's rule (a disabled user's
    tokens are all revoked, logins refused) plus an audit row by ``server-admin``; False when
    there is no such user."""
    from sync.server.console import audit

    with db.write(engine) as conn:
        if not auth.set_disabled(conn, username, disabled):
            return False
        action = "disable_user" if disabled else "enable_user"
        audit.event(conn, ADMIN_CLI, "", action, username)
    return True


def reset_password(engine: Engine, username: str, password: str) -> int | None:
    """``server-admin reset-password``: a new password (role and scope kept), every token of
    the user revoked, an audit row by ``server-admin``; tokens revoked, None for no such user.
    The caller checks the strength (``passwords``)."""
    from sync.server.console import audit

    with db.write(engine) as conn:
        u = db.users.c
        if conn.execute(select(u.username).where(u.username == username)).first() is None:
            return None
        count = auth.set_password(conn, username, password)
        audit.event(conn, ADMIN_CLI, "", "reset_password", username)
    return count


def revoke_tokens(engine: Engine, username: str, device_id: str | None = None) -> int:
    with db.write(engine) as conn:
        return auth.revoke(conn, username, device_id)


def list_users(engine: Engine) -> list[tuple[str, str, str | None, list[str]]]:
    """(username, role, community, grids) of every user."""
    with db.read(engine) as conn:
        users = conn.execute(
            select(db.users.c.username, db.users.c.role, db.users.c.community)
        ).all()
        grids: dict[str, list[str]] = {}
        for row in conn.execute(select(db.user_grids.c.username, db.user_grids.c.grid)):
            grids.setdefault(row.username, []).append(row.grid)
    return [(u.username, u.role, u.community, sorted(grids.get(u.username, []))) for u in users]
