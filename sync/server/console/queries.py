"""What the console shows: every read is limited to the caller's scope as the sync API
computes it (``auth.User.grids`` from ``auth.scope_of``; ``User.in_scope`` for one record).

Nothing here writes. Values of sensitive fields leave masked (``app.core.masking``); the one
way to see such a value is ``actions.reveal``, which writes an audit row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, and_, case, func, or_, select
from sqlalchemy.engine import Connection

from app.core.forms import Form, FormSet
from app.core.masking import mask_value
from app.core.records import is_empty
from app.core.search import name_terms
from sync.server import auth, db, records, reviews
from sync.server.console import stats
from sync.server.console.i18n import ConsoleError

STALE_MONTHS = 12
SEARCH_LIMIT = 50
CONFLICT_LIMIT = 200
_R = db.records.c


# -- scope -----------------------------------------------------------------------------------


def grids_in_scope(conn: Connection, user: auth.User) -> list[dict[str, Any]]:
    """The grids the user may see (code, name, community, boundary points), by code."""
    g = db.grids.c
    stmt = select(g.code, g.name, g.community, g.polygon).order_by(g.code)
    if user.grids is not None:
        if not user.grids:
            return []
        stmt = stmt.where(g.code.in_(sorted(user.grids)))
    return [
        {
            "code": r.code,
            "name": r.name,
            "community": r.community,
            "points": len(db.loads(r.polygon) or []),
        }
        for r in conn.execute(stmt)
    ]


def require_grid(user: auth.User, grid: str | None) -> None:
    """A grid outside the caller's scope does not exist for them (404, never 403)."""
    if grid is not None and not user.in_scope(grid):
        raise ConsoleError(404, "not_found")


def users_in_scope(conn: Connection, user: auth.User) -> list[str] | None:
    """User names the caller may see and manage; ``None`` for an admin (everyone).

    A supervisor sees their community's supervisors and the workers of its grids; a worker
    sees only themselves.
    """
    if user.is_admin:
        return None
    if user.role != "supervisor":
        return [user.username]
    u, ug = db.users.c, db.user_grids.c
    names = {r[0] for r in conn.execute(select(u.username).where(u.community == user.community))}
    if user.grids:
        names |= {
            r[0]
            for r in conn.execute(
                select(ug.username).where(ug.grid.in_(sorted(user.grids))).distinct()
            )
        }
    return sorted(names | {user.username})


def _record_scope(
    stmt: Any, user: auth.User, grid: str | None, codes: list[str] | None = None
) -> Any:
    """Limit a records query to one grid, to ``codes``, or to the user's scope."""
    if grid is not None:
        return stmt.where(_R.grid == grid)
    if codes is not None:
        return stmt.where(_R.grid.in_(codes or [""]))
    if user.grids is not None:
        return stmt.where(_R.grid.in_(sorted(user.grids) or [""]))
    return stmt


# -- overview --------------------------------------------------------------------------------


def _count_if(cond: Any) -> Any:
    return func.sum(case((cond, 1), else_=0))


def overview(
    engine: Engine,
    formset: FormSet,
    user: auth.User,
    grid: str | None = None,
    stale_months: int = STALE_MONTHS,
    community: str | None = None,
) -> dict[str, Any]:
    """Progress per grid and per worker, devices, set-aside ops and open work (see module).

    ``grid`` or ``community`` narrow it; one outside the caller's scope is 404. Counts come
    from the per-grid summaries (``stats``), recounted only for grids that changed.
    """
    require_grid(user, grid)
    if community is not None and not user.is_admin and community != user.community:
        raise ConsoleError(404, "not_found")
    today = auth.now().date()
    d7, d30 = (today - timedelta(days=6)).isoformat(), (today - timedelta(days=29)).isoformat()
    stale_day = (today - timedelta(days=30 * stale_months)).isoformat()
    summaries = stats.summaries(engine, user)
    with db.read(engine) as conn:
        grids = [
            g
            for g in grids_in_scope(conn, user)
            if (grid is None or g["code"] == grid)
            and (community is None or g["community"] == community)
        ]
        people = users_in_scope(conn, user)
        devices = _devices(conn, people)
        set_aside = _quarantine(conn, people)
    if user.grids is None and grid is None and community is None:
        known = {g["code"] for g in grids}
        for code in sorted(set(summaries) - known):  # records in grids the platform lacks
            grids.append({"code": code or None, "name": "", "community": "", "points": 0})
    shown_summaries = []
    for g in grids:
        summary = summaries.get(g["code"] or stats.NO_GRID)
        g["stats"] = _grid_stats(summary, d7, d30, stale_day)
        if summary:
            shown_summaries.append(summary)
    totals = _empty_stats()
    for g in grids:
        for key in totals:
            totals[key] += g["stats"][key]
    open_reviews = (
        len(reviews.list_reviews(engine, user)) if user.role in ("supervisor", "admin") else 0
    )
    return {
        "grid": grid,
        "community": community,
        "stale_months": stale_months,
        "grids": grids,
        "totals": totals,
        "workers": _workers(shown_summaries, d7, d30),
        "activity": _activity(shown_summaries, d30),
        "devices": devices,
        "quarantine": set_aside,
        "open_reviews": open_reviews,
        "forms": {f.id: (f.title.get("zh"), f.title.get("en")) for f in formset.forms.values()},
    }


def _empty_stats() -> dict[str, int]:
    keys = ("total", "complete", "draft", "created_7", "created_30", "changed_7", "changed_30")
    return dict.fromkeys((*keys, "conflicts", "stale"), 0)


def _grid_stats(
    summary: dict[str, Any] | None, d7: str, d30: str, stale_day: str
) -> dict[str, Any]:
    out: dict[str, Any] = dict(_empty_stats(), forms={})
    if not summary:
        return out
    out["forms"] = {
        form: {"draft": n.get("draft", 0), "complete": n.get("complete", 0)}
        for form, n in sorted(summary["forms"].items())
    }
    out["total"] = summary["total"]
    out["complete"] = sum(f["complete"] for f in out["forms"].values())
    out["draft"] = sum(f["draft"] for f in out["forms"].values())
    out["conflicts"] = summary["conflicts"]
    created, updated = summary["created"], summary["updated"]
    out["created_7"], out["created_30"] = (
        stats.days_from(created, d7),
        stats.days_from(created, d30),
    )
    out["changed_7"], out["changed_30"] = (
        stats.days_from(updated, d7),
        stats.days_from(updated, d30),
    )
    out["stale"] = stats.days_before(updated, stale_day)
    return out


def _workers(summaries: list[dict[str, Any]], d7: str, d30: str) -> list[dict[str, Any]]:
    """Records each person created (by form and status) and changed lately, in view."""
    people: dict[str, dict[str, Any]] = {}
    for summary in summaries:
        for name, part in summary["by"].items():
            p = people.setdefault(name, {"forms": {}, "created": [], "updated": []})
            for form, counts in part["forms"].items():
                mine = p["forms"].setdefault(form, {"draft": 0, "complete": 0})
                for status, n in counts.items():
                    mine[status] = mine.get(status, 0) + n
            p["created"].append(part["created"])
            p["updated"].append(part["updated"])
    out = []
    for name in sorted(people):
        p = people[name]
        created, updated = stats.merge_days(p["created"]), stats.merge_days(p["updated"])
        total = sum(sum(c.values()) for c in p["forms"].values())
        if not total and not stats.days_from(updated, d30):
            continue
        out.append(
            {
                "username": name,
                "forms": p["forms"],
                "total": total,
                "created_7": stats.days_from(created, d7),
                "created_30": stats.days_from(created, d30),
                "changed_7": stats.days_from(updated, d7),
                "changed_30": stats.days_from(updated, d30),
            }
        )
    return out


def _activity(summaries: list[dict[str, Any]], d30: str) -> list[dict[str, Any]]:
    """Created and changed per day over the last 30 days (records as they are now)."""
    created = stats.merge_days(s["created"] for s in summaries)
    updated = stats.merge_days(s["updated"] for s in summaries)
    days = sorted({d for d in (*created, *updated) if d >= d30})
    return [{"day": d, "created": created.get(d, 0), "changed": updated.get(d, 0)} for d in days]


def _devices(conn: Connection, people: list[str] | None) -> list[dict[str, Any]]:
    """Each device a person logged in from: last login, live or revoked, last push."""
    t, o = db.tokens.c, db.ops.c
    logins = select(
        t.username,
        t.device_id,
        func.max(t.created_at),
        _count_if(and_(t.revoked_at.is_(None), t.expires_at > auth.iso(auth.now()))),
    ).group_by(t.username, t.device_id)
    if people is not None:
        logins = logins.where(t.username.in_(people))
    found = conn.execute(logins).all()
    devices = sorted({r[1] for r in found})
    last_push: dict[tuple[str, str], str] = {}
    for i in range(0, len(devices), 500):  # by device id: the op log's index, not a scan
        pushes = (
            select(o.device_id, o.username, func.max(o.at))
            .where(o.device_id.in_(devices[i : i + 500]))
            .group_by(o.device_id, o.username)
        )
        last_push.update({(r[0], r[1]): r[2] for r in conn.execute(pushes)})
    out = [
        {
            "username": name,
            "device_id": device,
            "console": device.startswith("console-"),
            "last_login": last,
            "live": int(live or 0) > 0,
            "last_push": last_push.get((device, name)),
        }
        for name, device, last, live in found
    ]
    return sorted(out, key=lambda d: (d["username"], d["device_id"]))


def _quarantine(conn: Connection, people: list[str] | None, limit: int = 100) -> list[dict]:
    """Ops the server checks set aside, with their reasons (codes and messages, no values)."""
    q = db.quarantine.c
    stmt = (
        select(q.id, q.at, q.username, q.device_id, q.record_id, q.form, q.code, q.reason)
        .order_by(q.id.desc())
        .limit(limit)
    )
    if people is not None:
        stmt = stmt.where(q.username.in_(people))
    out = []
    for r in conn.execute(stmt):
        reason = db.loads(r.reason) or {}
        out.append(
            {
                "id": r.id,
                "at": r.at,
                "username": r.username,
                "device_id": r.device_id,
                "record_id": r.record_id,
                "form": r.form,
                "code": r.code,
                "message_zh": reason.get("message_zh", ""),
                "message_en": reason.get("message_en", ""),
                "fields": sorted({i.get("field", "") for i in reason.get("issues", [])} - {""}),
            }
        )
    return out


# -- values ----------------------------------------------------------------------------------


def shown(form: Form, name: str, value: Any, formset: FormSet | None = None) -> str:
    """A value as the console shows it: masked when the form calls the field sensitive; codes
    with their Chinese label when the code table is known."""
    if is_empty(value):
        return ""
    fld = form.fields.get(name)
    if fld is not None and fld.sensitive:
        return mask_value(fld, value)
    if fld is not None and fld.codes and formset is not None and fld.codes in formset.tables:
        table = formset.table(fld.codes)
        codes = value if isinstance(value, list) else [value]
        return "、".join(f"{table.label(str(c))} ({c})" for c in codes)
    if isinstance(value, list):
        return "、".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, bool):
        return "是 yes" if value else "否 no"
    return str(value)


def _label(form: Form, name: str) -> dict[str, str]:
    fld = form.fields.get(name)
    if fld is None:
        return {"zh": name, "en": name}
    return {"zh": fld.label.get("zh"), "en": fld.label.get("en")}


def _sensitive(form: Form, name: str) -> bool:
    fld = form.fields.get(name)
    return bool(fld and fld.sensitive)


# -- conflicts -------------------------------------------------------------------------------


def conflicts(
    engine: Engine, formset: FormSet, user: auth.User, grid: str | None = None
) -> list[dict[str, Any]]:
    """Records with an open conflict: each field with base / platform / incoming, masked."""
    require_grid(user, grid)
    stmt = select(db.records).where(_R.conflict.is_not(None), _R.deleted.is_(False))
    stmt = _record_scope(stmt, user, grid).order_by(_R.updated_at.desc()).limit(CONFLICT_LIMIT)
    with db.read(engine) as conn:
        rows = [records.from_db(r) for r in conn.execute(stmt)]
    return [_conflict_view(formset, formset.form(row.form), row) for row in rows]


def _conflict_view(formset: FormSet, form: Form, row: records.Row) -> dict[str, Any]:
    fields = []
    for c in row.conflict or []:
        name = c["field"]
        stamp = row.stamps.get(name)
        fields.append(
            {
                "field": name,
                "label": _label(form, name),
                "sensitive": _sensitive(form, name),
                "base": shown(form, name, c.get("base"), formset),
                "server": shown(form, name, c.get("server"), formset),
                "incoming": shown(form, name, c.get("incoming"), formset),
                "provisional": shown(form, name, c.get("provisional"), formset),
                "changed_at": stamp.at.split("#")[0] if stamp else "",
                "changed_by_device": stamp.device if stamp else "",
            }
        )
    return {
        "id": row.id,
        "form": row.form,
        "title": row.title,
        "grid": row.grid,
        "version": row.version,
        "updated_at": row.updated_at,
        "updated_by": row.updated_by,
        "fields": fields,
    }


# -- records ---------------------------------------------------------------------------------


def _load_in_scope(conn: Connection, user: auth.User, record_id: str) -> records.Row:
    rid = records.canonical(conn, [record_id]).get(record_id, record_id)
    row = records.load(conn, rid)
    if row is None or not user.in_scope(row.grid):
        raise ConsoleError(404, "not_found")
    return row


def search(
    engine: Engine, formset: FormSet, user: auth.User, query: str, limit: int = SEARCH_LIMIT
) -> list[dict[str, Any]]:
    """Records in scope matching a name, pinyin initials, an ID or phone tail or an address."""
    q = query.strip().lower()
    if not q:
        return []
    digits = q.rstrip("x").isdigit() and len(q) >= 4
    stmt = select(_R.id, _R.form, _R.grid, _R.title, _R.status, _R.deleted, _R.data)
    stmt = _record_scope(stmt, user, None)  # unordered: stop at the first matches, no sort
    if digits:  # the tail of a stored value: the value ends with the digits, then a quote
        stmt = stmt.where(_R.data.like(f'%{_escape(q)}"%', escape="\\"))
    elif q.isascii() and q.isalpha():  # pinyin: only people's names can match
        stmt = stmt.where(
            or_(_R.title.ilike(f"%{_escape(q)}%", escape="\\"), _R.id.in_(_pinyin_ids(q)))
        )
    else:
        stmt = stmt.where(_R.data.like(f"%{_escape(query.strip())}%", escape="\\"))
    out: list[dict[str, Any]] = []
    with db.read(engine) as conn:
        for r in conn.execute(stmt.limit(limit * 4)):
            form = formset.form(r.form)
            data = db.loads(r.data) or {}
            if not _matches(form, data, r.title, q, digits):
                continue
            out.append(
                {
                    "id": r.id,
                    "form": r.form,
                    "grid": r.grid,
                    "title": r.title,
                    "status": r.status,
                    "deleted": bool(r.deleted),
                }
            )
            if len(out) >= limit:
                break
    return sorted(out, key=lambda r: (r["title"], r["id"]))


def _pinyin_ids(q: str) -> Any:
    """People whose full pinyin starts like the query: "zs" narrows to surnames in z, the
    initials themselves are checked on the candidates (``_matches``)."""
    p = db.people.c
    return select(p.record_id).where(p.pinyin.like(f"{_escape(q[0])}%", escape="\\"))


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _matches(form: Form, data: Mapping[str, Any], title: str, q: str, digits: bool) -> bool:
    """The candidate really matches in a field whose role fits the query."""
    roles = form.roles

    def values(names: Iterable[str]) -> list[str]:
        return [str(data[n]).lower() for n in names if not is_empty(data.get(n))]

    if digits:
        return any(v.endswith(q) for v in values((*roles.id, *roles.phone)))
    names = values(roles.name) or [title.lower()]
    for name in names:
        if q in name or any(term.startswith(q) for term in name_terms(name)):
            return True
    return any(q in v for v in values(roles.address))


def record_view(
    engine: Engine, formset: FormSet, user: auth.User, record_id: str
) -> dict[str, Any]:
    """One record in scope, masked, with its full version history (who, device, when, what)."""
    v = db.record_versions.c
    with db.read(engine) as conn:
        row = _load_in_scope(conn, user, record_id)
        versions = conn.execute(
            select(db.record_versions).where(v.record_id == row.id).order_by(v.version)
        ).all()
    form = formset.form(row.form)
    fields = [
        {
            "field": name,
            "label": _label(form, name),
            "value": shown(form, name, row.data.get(name), formset),
            "sensitive": fld.sensitive,
        }
        for name, fld in form.fields.items()
        if not is_empty(row.data.get(name))
    ]
    history = []
    before: dict[str, Any] = {}
    for ver in versions:
        data = db.loads(ver.data) or {}
        changes = [
            {
                "field": name,
                "label": _label(form, name),
                "old": shown(form, name, before.get(name), formset),
                "new": shown(form, name, data.get(name), formset),
            }
            for name in sorted(set(before) | set(data))
            if before.get(name) != data.get(name)
        ]
        history.append(
            {
                "version": ver.version,
                "kind": ver.kind,
                "username": ver.username,
                "device_id": ver.device_id,
                "at": ver.at,
                "status": ver.status,
                "deleted": bool(ver.deleted),
                "changes": changes,
            }
        )
        before = data
    return {
        "id": row.id,
        "form": row.form,
        "title": row.title,
        "grid": row.grid,
        "status": row.status,
        "deleted": row.deleted,
        "version": row.version,
        "conflicts": len(row.conflict or []),
        "fields": fields,
        "history": history,
    }


# -- people ----------------------------------------------------------------------------------


def people(engine: Engine, user: auth.User) -> list[dict[str, Any]]:
    """The users the caller may see, with their grids and devices."""
    u, ug = db.users.c, db.user_grids.c
    with db.read(engine) as conn:
        names = users_in_scope(conn, user)
        stmt = select(u.username, u.role, u.community, u.disabled).order_by(u.username)
        grid_stmt = select(ug.username, ug.grid)
        if names is not None:
            stmt = stmt.where(u.username.in_(names))
            grid_stmt = grid_stmt.where(ug.username.in_(names))
        found = conn.execute(stmt).all()
        grids: dict[str, list[str]] = {}
        for name, grid in conn.execute(grid_stmt):
            grids.setdefault(name, []).append(grid)
        devices = _devices(conn, names)
    by_user: dict[str, list[dict[str, Any]]] = {}
    for d in devices:
        by_user.setdefault(d["username"], []).append(d)
    return [
        {
            "username": r.username,
            "role": r.role,
            "community": r.community,
            "disabled": bool(r.disabled),
            "grids": sorted(grids.get(r.username, [])),
            "devices": by_user.get(r.username, []),
        }
        for r in found
    ]


def grids(engine: Engine, user: auth.User) -> list[dict[str, Any]]:
    with db.read(engine) as conn:
        return grids_in_scope(conn, user)


def communities(engine: Engine, user: auth.User) -> list[dict[str, str]]:
    """Communities the caller may add grids to: all for an admin, their own for a supervisor."""
    c = db.communities.c
    stmt = select(c.code, c.name).order_by(c.code)
    if not user.is_admin:
        stmt = stmt.where(c.code == (user.community or ""))
    with db.read(engine) as conn:
        return [{"code": r.code, "name": r.name} for r in conn.execute(stmt)]
