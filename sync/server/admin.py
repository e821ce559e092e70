"""Administration of the platform: communities, grids, users, tokens and base data.

Used by ``gridcollect server-admin`` and by tests. Base data (a city-mirror CSV/XLSX of residents,
houses, ...) goes through the same op pipeline as a device push, as the pseudo-device
``base-data``: a natural key the platform already has updates that record instead of adding a
person twice, and loading the same file again changes nothing (the op ids are content hashes).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, insert, select, update

from app.core import ids, rules
from app.core.forms import FormSet
from app.core.messages import lang_of
from app.core.tabular import read_table
from app.core.transfer import map_headers, prepare_row
from sync import protocol as p
from sync.merge import STATUS
from sync.server import auth, checks, db, gridsync
from sync.server.errors import ApiError
from sync.server.service import Service

BASE_DEVICE = "base-data"
ADMIN_CLI = "server-admin"  # who the audit log names for a change made on the command line
BATCH = 500


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


@dataclass
class LoadReport:
    """What a base-data load did; ``problems`` are (row, message) without personal data."""

    rows: int = 0
    created: int = 0
    merged: int = 0
    unchanged: int = 0
    drafts: int = 0
    rejected: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)


def load_base(
    service: Service,
    form_id: str,
    path: str | Path,
    *,
    lang: str = "zh",
    progress: Callable[[int, int], None] | None = None,
) -> LoadReport:
    """Load a city-mirror file as records the platform knows (see the module doc).

    Rows that fail validation are loaded as drafts and listed in the report, so the people are
    known to the platform and a worker completes them on site.
    """
    formset: FormSet = service.formset
    form = formset.form(form_id)
    table = read_table(path)
    mapping, unknown = map_headers(form, table.headers)
    if unknown:
        raise ValueError("unknown columns: " + ", ".join(unknown))
    report = LoadReport(rows=len(table.rows))
    stamp = auth.iso(auth.now()) + "#0000"
    user = auth.User(BASE_DEVICE, "admin", None, None, BASE_DEVICE)
    batch: list[tuple[int, p.Op]] = []
    for number, raw in table.rows:
        data = prepare_row(form, formset, raw, mapping)
        issues = [i for i in rules.validate(form, data, formset) if i.severity == "error"]
        status = "draft" if issues else "complete"
        if issues:
            report.drafts += 1
            report.problems.extend((number, i.message(form, lang)) for i in issues)
        digest = hashlib.sha256(f"{form.id}|{db.dumps(data)}".encode()).hexdigest()[:40]
        op = p.Op(
            op_id=f"base:{digest}",
            record_id=ids.uuid7(),
            form=form.id,
            kind="create",
            base_version=None,
            fields={**data, STATUS: status},
            edited_at=stamp,
            author=BASE_DEVICE,
        )
        try:
            checks.check_op_shape(formset, op, 0)
        except ApiError as exc:
            report.rejected += 1
            report.problems.append(
                (
                    number,
                    exc.body()["error"]["message_" + lang_of(lang)],
                )
            )
            continue
        batch.append((number, op))
        if len(batch) >= BATCH:
            _flush(service, user, batch, report)
            batch = []
            if progress:
                progress(number, report.rows)
    _flush(service, user, batch, report)
    db.analyze(service.engine)  # the planner must know the tables are no longer empty
    return report


def _flush(
    service: Service, user: auth.User, batch: list[tuple[int, p.Op]], report: LoadReport
) -> None:
    if not batch:
        return
    # the op id is a digest of the row: loading the same row again is a replay
    results = service.apply(user, BASE_DEVICE, [op for _, op in batch], ids_name_content=True)
    for (number, _), result in zip(batch, results, strict=True):
        status = result["status"]
        if status == "merged_into":
            report.merged += 1
        elif status in ("applied", "conflict"):
            report.created += 1
        elif status == "duplicate_op":
            report.unchanged += 1
        else:
            report.rejected += 1
            reason = result.get("reason") or {}
            report.problems.append((number, reason.get("message_zh", "")))
