"""The console's overview (PROTOCOL.md §11): progress per grid and per worker, activity over
the last 30 days, devices, ops the server set aside and open reviews, all within the caller's
scope (``queries`` decides the scope). Counts come from the per-grid summaries (``stats``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.engine import Connection

from app.core.forms import FormSet
from sync.server import auth, db, reviews
from sync.server.console import stats
from sync.server.console.i18n import ConsoleError
from sync.server.console.queries import devices, grids_in_scope, require_grid, users_in_scope

STALE_MONTHS = 12


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
        found_devices = devices(conn, people)
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
        "devices": found_devices,
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
