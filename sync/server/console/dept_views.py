"""What the console's department pages show: a department's grants, requests and takings; the
admin's departments, open requests (with fill rates), grants, keys and who took what; a
record's receivers. Reads only (the changes are in ``dept_pages``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.engine import Connection

from app.core import masking
from app.core.forms import FormSet
from sync.server import auth, db
from sync.server.dept import asks, collect, grants, keys, trace
from sync.server.dept.grants import KEPT


def receivers_of(engine: Engine, record_id: str) -> list[dict[str, Any]]:
    with db.read(engine) as conn:
        return trace.receivers(conn, record_id)


def _field_rows(
    formset: FormSet, fields: dict[str, Any], reduced: dict[str, dict[str, str]] | None = None
) -> list[dict[str, Any]]:
    """Granted or requested fields with their labels (mode ``None`` for a request).

    ``reduced`` (a grant's, ``Grant.reduced``) marks the fields given as a year or a province
    because the grant masks the ID number; for a request (None), ``reduces`` marks those that
    would be, should the admin give the requested ID number masked."""
    out = []
    for form_id, names in fields.items():
        if form_id not in formset.forms:
            continue
        form = formset.form(form_id)
        modes = names if isinstance(names, dict) else dict.fromkeys(names)
        would = {} if reduced is not None else masking.reduced(form, formset, modes)
        given = (reduced or {}).get(form_id, {})
        for name, mode in modes.items():
            if name in form.fields:
                fld = form.fields[name]
                out.append(
                    {
                        "form": form_id,
                        "field": name,
                        "label": (fld.label.zh, fld.label.en),
                        "mode": mode,
                        "sensitive": fld.sensitive,
                        "reduced": KEPT.get(given.get(name, "")),
                        "reduces": KEPT.get(would.get(name, "")),
                    }
                )
    return out


def form_choices(formset: FormSet) -> list[dict[str, Any]]:
    """Every form and its fields, for the request and approval forms."""
    return [
        {
            "id": form.id,
            "title": (form.title.zh, form.title.en),
            "fields": [
                {
                    "id": f.id,
                    "label": (f.label.zh, f.label.en),
                    "sensitive": f.sensitive,
                    "reduces": KEPT.get(would.get(f.id, "")),
                }
                for f in form.fields.values()
            ],
        }
        for form in formset.forms.values()
        for would in [masking.reduced(form, formset, form.fields)]
    ]


def _grant_rows(formset: FormSet, found: list[grants.Grant]) -> list[dict[str, Any]]:
    now = auth.iso(auth.now())
    return [
        {
            **g.public(now, formset),
            "field_rows": _field_rows(formset, dict(g.fields), g.reduced(formset)),
        }
        for g in found
    ]


def _with_progress(conn: Connection, requests: list[dict[str, Any]]) -> None:
    """Each request turned into a task gets the task's progress (counts and state only)."""
    found = collect.progress(conn, [r["task_id"] for r in requests if r.get("task_id")])
    for r in requests:
        r["progress"] = found.get(r.get("task_id") or "")


def department_view(engine: Engine, formset: FormSet, user: auth.User) -> dict[str, Any]:
    dept = user.department or ""
    with db.read(engine) as conn:
        found = grants.of_department(conn, dept)
        requests = asks.listing(conn, dept)
        _with_progress(conn, requests)
        taken = trace.takings(conn, dept)
        name = conn.execute(
            select(db.departments.c.name).where(db.departments.c.code == dept)
        ).scalar()
    for r in requests:
        r["field_rows"] = _field_rows(formset, r["fields"])
    return {
        "dept_code": dept,
        "dept_name": name or dept,
        "grants": _grant_rows(formset, found),
        "requests": requests,
        "taken": taken,
        "forms": form_choices(formset),
    }


def admin_view(engine: Engine, formset: FormSet) -> dict[str, Any]:
    with db.read(engine) as conn:
        depts = [dict(r._mapping) for r in conn.execute(select(db.departments))]
        accounts = conn.execute(
            select(db.users.c.username, db.users.c.department).where(
                db.users.c.role == "department"
            )
        ).all()
        requests = asks.listing(conn)
        _with_progress(conn, requests)
        for r in requests:
            r["field_rows"] = _field_rows(formset, r["fields"])
            if r["state"] == "open":
                r["fill"] = asks.fill_rates(conn, formset, r["id"])
        result = {
            "departments": [
                {**d, "accounts": sorted(u for u, code in accounts if code == d["code"])}
                for d in depts
            ],
            "requests": requests,
            "grants": _grant_rows(formset, grants.of_department(conn, None)),
            "keys": keys.listing(conn),
            "taken": trace.takings(conn),
            "forms": form_choices(formset),
            "fill_sample": asks.FILL_SAMPLE,
        }
    return result
