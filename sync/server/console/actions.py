"""What the console (and its JSON API) changes. Every action checks the caller's scope with
the sync API's rules, goes through the platform's own functions (a resolve is a device's
``resolve`` op through ``Service.push``; a review decision is ``reviews.decide``) and writes
one audit row naming ids and field names, never values.
"""

from __future__ import annotations

import json
import math
import re
import secrets
from typing import Any

from sqlalchemy import select, update

from app.core import rules
from app.core.forms import FormSet
from app.core.masking import revealing
from sync import protocol as p
from sync.server import admin, auth, db, gridsync, passwords, records, reviews
from sync.server.console import audit
from sync.server.console.audit import Actor
from sync.server.console.i18n import ConsoleError
from sync.server.console.queries import users_in_scope
from sync.server.errors import ApiError
from sync.server.service import Service

_CODE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
SIDES = ("server", "incoming", "base")
MAX_BOUNDARY_POINTS = 10_000


def _manager(actor: Actor) -> None:
    """Workers only look: every change needs a supervisor or an admin."""
    if actor.user.role not in ("supervisor", "admin"):
        raise ConsoleError(403, "forbidden")


def console_device(user: auth.User) -> str:
    """The device id a console change is made from (stamps and history name it)."""
    if re.fullmatch(r"[A-Za-z0-9_.:\-]+", user.username):
        return f"console.{user.username}"[:64]
    return "console"


# -- conflicts -------------------------------------------------------------------------------


def resolve(
    service: Service,
    actor: Actor,
    record_id: str,
    version: int,
    choices: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """Resolve conflicts of one record as a device would: a ``resolve`` op pushed through
    ``Service.push`` (same checks, same merge rules), so devices get it on their next pull.

    ``choices`` maps a conflicted field to ``{"side": "server"|"incoming"|"base"}`` or
    ``{"value": text}`` (typed, coerced like an imported cell).
    """
    _manager(actor)
    user = actor.user
    with db.read(service.engine) as conn:
        rid = records.canonical(conn, [record_id]).get(record_id, record_id)
        row = records.load(conn, rid)
    if row is None or not user.in_scope(row.grid):
        raise ConsoleError(404, "not_found")
    if rid != record_id:
        # the page showed the record before a merge: its version and the sides chosen are
        # that record's, not the held one's (whose version may be the same number)
        raise ConsoleError(409, "merged_since")
    if not choices:
        raise ConsoleError(422, "no_choice")
    form = service.formset.form(row.form)
    open_by_field = {c["field"]: c for c in row.conflict or []}
    fields: dict[str, Any] = {}
    for name, choice in choices.items():
        if name not in open_by_field:
            raise ConsoleError(422, "not_in_conflict", field=name)
        fields[name] = _chosen(service.formset, form.id, name, choice, open_by_field[name])
    device = console_device(user)
    op = p.Op(
        op_id=f"console:{secrets.token_hex(12)}",
        record_id=rid,
        form=row.form,
        kind="resolve",
        base_version=version,
        fields=fields,
        edited_at=auth.iso(auth.now()) + "#0000",
        author=user.username,
    )
    request = p.PushRequest(protocol=p.PROTOCOL_VERSION, device_id=device, ops=[op])
    (result,) = service.push(user, request, device)
    if result["status"] == "rejected":
        reason = result["reason"] or {}
        status = 409 if reason.get("code") == "stale" else 422
        raise ApiError(status, reason.get("code", "invalid"))
    audit.record(service.engine, actor, "resolve", rid, sorted(fields))
    return result


def _chosen(
    formset: FormSet, form_id: str, name: str, choice: dict[str, Any], conflict: dict[str, Any]
) -> Any:
    side = choice.get("side")
    if side is not None:
        if side not in SIDES:
            raise ConsoleError(422, "no_choice", field=name)
        return conflict.get(side)
    if "value" not in choice or not isinstance(choice["value"], str):
        raise ConsoleError(422, "no_choice", field=name)
    text = choice["value"].strip()
    if "\x00" in text or len(text) > p.MAX_VALUE_CHARS:
        raise ApiError(422, "bad_text")
    if not text:
        return None
    return rules.coerce_record(formset.form(form_id), {name: text}, formset).get(name, text)


# -- reviews and values ----------------------------------------------------------------------


def decide_review(service: Service, actor: Actor, review_id: int, decision: str) -> dict[str, Any]:
    """``reviews.decide`` (the /v1/reviews path) plus an audit row."""
    outcome = reviews.decide(service.engine, service.formset, actor.user, review_id, decision)
    audit.record(service.engine, actor, "review", audit.review_target(review_id, decision))
    return outcome


def reveal(service: Service, actor: Actor, record_id: str, field: str) -> dict[str, Any]:
    """One sensitive value (or one that a masked ID number would be guessed from, as a birth
    date) in clear, written to the audit log (record id + field name)."""
    with db.write(service.engine) as conn:
        rid = records.canonical(conn, [record_id]).get(record_id, record_id)
        row = records.load(conn, rid)
        if row is None or not actor.user.in_scope(row.grid):
            raise ConsoleError(404, "not_found")
        fld = service.formset.form(row.form).fields.get(field)
        if fld is None:
            raise ConsoleError(404, "not_found")
        form = service.formset.form(row.form)
        if not fld.sensitive and field not in revealing(form, service.formset):
            raise ConsoleError(422, "not_sensitive", field=field)
        audit.write(conn, actor, "reveal", rid, [field])
    return {"record_id": rid, "field": field, "value": row.data.get(field)}


# -- users and devices -----------------------------------------------------------------------


def _managed_user(conn: Any, actor: Actor, username: str) -> Any:
    """The target user, if the caller may manage them; others do not exist for the caller."""
    _manager(actor)
    names = users_in_scope(conn, actor.user)
    u = db.users.c
    row = conn.execute(select(u.username, u.role).where(u.username == username)).first()
    if row is None or (names is not None and username not in names):
        raise ConsoleError(404, "not_found")
    if not actor.user.is_admin and row.role == "admin":
        raise ConsoleError(404, "not_found")
    return row


def revoke_device(service: Service, actor: Actor, username: str, device_id: str) -> int:
    """Revoke one device's tokens of a user; returns how many."""
    with db.write(service.engine) as conn:
        _managed_user(conn, actor, username)
        count = auth.revoke(conn, username, device_id)
        audit.write(conn, actor, "revoke_device", f"{username}/{device_id}")
    return count


def set_disabled(service: Service, actor: Actor, username: str, disabled: bool) -> None:
    """Disable (every token stops working at once) or enable a user."""
    with db.write(service.engine) as conn:
        _managed_user(conn, actor, username)
        if disabled and username == actor.user.username:
            raise ConsoleError(422, "not_yourself")
        auth.set_disabled(conn, username, disabled)
        audit.write(conn, actor, "disable_user" if disabled else "enable_user", username)


def reset_password(service: Service, actor: Actor, username: str, password: str) -> int:
    """Set a new password and revoke every token of the user; returns tokens revoked."""
    if "\x00" in password:
        raise ApiError(422, "nul_char")
    if passwords.problem(password, username):
        raise ConsoleError(422, "weak_password")
    if username == actor.user.username:
        raise ConsoleError(422, "not_yourself")
    with db.write(service.engine) as conn:
        _managed_user(conn, actor, username)
        count = auth.set_password(conn, username, password)
        audit.write(conn, actor, "reset_password", username)
    return count


def set_worker_grids(service: Service, actor: Actor, username: str, grids: list[str]) -> int:
    """Give a worker the grids the caller manages that are named (a supervisor: their
    community's; the worker's other grids stay); returns how many grids were gained. Logins
    are kept; the worker's devices fetch the gained grids' records on their next sync."""
    wanted = list(dict.fromkeys(grids))
    with db.write(service.engine) as conn:
        row = _managed_user(conn, actor, username)
        if row.role != "worker":
            raise ConsoleError(422, "not_worker")
        g, mine = db.grids.c, db.user_grids.c
        known = dict(conn.execute(select(g.code, g.community).where(g.code.in_(wanted))).all())
        if any(not _manages(actor, known.get(code)) for code in wanted):
            raise ConsoleError(422, "unknown_grid", field="grids")
        held = conn.execute(
            select(mine.grid, g.community)
            .select_from(db.user_grids.outerjoin(db.grids, g.code == mine.grid))
            .where(mine.username == username)
        ).all()
        kept = [code for code, community in held if not _manages(actor, community)]
        final = list(dict.fromkeys([*kept, *wanted]))
        if not final:
            raise ConsoleError(422, "no_grid", field="grids")
        gained, lost = auth.set_grids(conn, username, final)
        if gained or lost:
            audit.write(conn, actor, "set_grids", username)
    return len(gained)


def _manages(actor: Actor, community: str | None) -> bool:
    """May the caller hand out grids of ``community``? (an unknown grid: nobody may)"""
    return community is not None and (actor.user.is_admin or community == actor.user.community)


_USERNAME = re.compile(r"^[A-Za-z0-9_.\-]{2,64}$")


def add_worker(
    service: Service, actor: Actor, username: str, password: str, grids: list[str]
) -> None:
    """A new grid worker (网格员) for grids the caller manages: a supervisor in their own
    community, an admin anywhere. Never replaces an existing account (the CLI's ``add-user``
    does, on purpose); the worker's first login then sets up their device."""
    _manager(actor)
    if not _USERNAME.fullmatch(username):
        raise ConsoleError(422, "bad_username", field="username")
    if "\x00" in password:
        raise ApiError(422, "nul_char")
    if passwords.problem(password, username):
        raise ConsoleError(422, "weak_password", field="password")
    wanted = list(dict.fromkeys(grids))
    if not wanted:
        raise ConsoleError(422, "no_grid", field="grids")
    with db.write(service.engine) as conn:
        g = db.grids.c
        known = dict(conn.execute(select(g.code, g.community).where(g.code.in_(wanted))).all())
        for code in wanted:
            community = known.get(code)
            if community is None or not (actor.user.is_admin or community == actor.user.community):
                raise ConsoleError(422, "unknown_grid", field="grids")
        u = db.users.c
        if conn.execute(select(u.username).where(u.username == username)).first() is not None:
            raise ConsoleError(409, "user_exists", field="username")
        auth.create_user(conn, username, password, "worker", grids=wanted)
        audit.write(conn, actor, "add_user", username)


# -- grids -----------------------------------------------------------------------------------


def save_grid(service: Service, actor: Actor, code: str, name: str, community: str) -> None:
    """Create or rename a grid: an admin in any community, a supervisor in their own."""
    _manager(actor)
    if not _CODE.match(code):
        raise ConsoleError(422, "bad_code")
    name = name.strip()
    if not name or len(name) > 200 or "\x00" in name:
        raise ConsoleError(422, "bad_name")
    user = actor.user
    if not user.is_admin and community != user.community:
        raise ConsoleError(404, "not_found")
    with db.read(service.engine) as conn:
        g = db.grids.c
        existing = conn.execute(select(g.community, g.level).where(g.code == code)).first()
    if existing is not None and not user.in_scope(code):
        raise ConsoleError(404, "not_found")
    level = existing.level if existing is not None else "1"
    try:
        admin.put_grid(service.engine, code, name, community, level)
    except ValueError:
        raise ConsoleError(422, "unknown_community") from None
    audit.record(service.engine, actor, "grid_save", code, ["name"])


def set_boundary(service: Service, actor: Actor, code: str, geojson: Any) -> int:
    """Store a grid's boundary (a GeoJSON Polygon, Feature or one-feature collection) as the
    devices store theirs: a JSON list of [lon, lat]. Returns the number of points."""
    _manager(actor)
    if not actor.user.in_scope(code):
        raise ConsoleError(404, "not_found")
    points = boundary_points(geojson)
    with db.write(service.engine) as conn:
        g = db.grids.c
        done = conn.execute(
            update(db.grids).where(g.code == code).values(polygon=db.dumps(points))
        ).rowcount
        if not done:
            raise ConsoleError(404, "not_found")
        audit.write(conn, actor, "grid_boundary", code, ["polygon"])
        gridsync.number_change(conn, code)  # devices in scope get it on their next pull
    return len(points)


def boundary_points(geojson: Any) -> list[list[float]]:
    """The outer ring of a GeoJSON polygon as [[lon, lat], ...]; ``bad_boundary`` otherwise."""
    if isinstance(geojson, str | bytes):
        try:
            geojson = json.loads(geojson)
        except (ValueError, UnicodeDecodeError):
            raise ConsoleError(422, "bad_boundary", detail="JSON") from None
    if isinstance(geojson, dict) and geojson.get("type") == "FeatureCollection":
        features = geojson.get("features")
        if not isinstance(features, list) or len(features) != 1:
            raise ConsoleError(422, "bad_boundary", detail="FeatureCollection: 1 feature")
        geojson = features[0]
    if isinstance(geojson, dict) and geojson.get("type") == "Feature":
        geojson = geojson.get("geometry")
    if not isinstance(geojson, dict) or geojson.get("type") != "Polygon":
        raise ConsoleError(422, "bad_boundary", detail="type Polygon")
    rings = geojson.get("coordinates")
    if not isinstance(rings, list) or not rings or not isinstance(rings[0], list):
        raise ConsoleError(422, "bad_boundary", detail="coordinates")
    points: list[list[float]] = []
    for pt in rings[0][: MAX_BOUNDARY_POINTS + 1]:
        if (
            not isinstance(pt, list)
            or len(pt) < 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in pt[:2])
            or not all(math.isfinite(v) for v in pt[:2])
            or not (-180 <= pt[0] <= 180 and -90 <= pt[1] <= 90)
        ):
            raise ConsoleError(422, "bad_boundary", detail="[lon, lat]")
        points.append([float(pt[0]), float(pt[1])])
    if len(points) > MAX_BOUNDARY_POINTS:
        raise ConsoleError(422, "bad_boundary", detail=f"≤ {MAX_BOUNDARY_POINTS}")
    if len(points) > 1 and points[0] == points[-1]:
        points = points[:-1]
    if len({tuple(pt) for pt in points}) < 3:
        raise ConsoleError(422, "bad_boundary", detail="≥ 3")
    return points
