"""A department's request turned into a collection task for the grids (部门需求转采集任务).

When the platform does not hold the data yet (low fill rates), an admin turns the request into
a verify task of the tasks module over the request's records — its places and filter, by
default only those missing a requested field — with the requested fields as the task's fields,
due by the request's "until" date (or the admin's), the purpose as its instruction. One
transaction: the task, its audit row naming the request, and the request's link to it, so a
request is never marked collecting without its task nor a task left without its request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine, select, update
from sqlalchemy.engine import Connection

from app.core.forms import FormSet
from sync.server import auth, db
from sync.server.console import audit
from sync.server.console.audit import Actor
from sync.server.dept import asks
from sync.server.errors import ApiError
from sync.server.tasks import follow, store
from sync.server.tasks.spec import TaskSpec

_Q = db.dept_requests.c


@dataclass(frozen=True)
class Collect:
    """The admin's choices (each ``None``: as the request says)."""

    due: str | None = None  # YYYY-MM-DD; default the request's "until" date
    form: str | None = None  # which requested form the task covers; default the first
    only_missing: bool = True  # only records with a requested field empty
    reason: str = ""


def _bad(zh: str, en: str, field: str = "") -> ApiError:
    return ApiError(422, "bad_task", field=field or None, detail_zh=zh, detail_en=en)


def _form(formset: FormSet, asked: Mapping[str, Sequence[str]], chosen: str | None) -> str:
    """The form of the task: the admin's choice among the requested forms, else the first
    requested one in the form set's order (a task covers one form)."""
    if chosen:
        if chosen not in asked:
            raise _bad("所选表单不在此需求中", "the chosen form is not one of the request", "form")
        return chosen
    for form_id in formset.forms:
        if asked.get(form_id):
            return form_id
    raise _bad("此需求没有可采集的表单", "the request names no form to collect", "form")


def _grids(conn: Connection, ask: Mapping[str, Any]) -> list[str]:
    """The request's grids plus its communities' grids; empty when it names no place (every
    grid). Places named but holding no grid: 422, never a task over everything."""
    named = list(ask["grids"])
    communities = list(ask["communities"])
    if not named and not communities:
        return []
    found = set(named)
    if communities:
        g = db.grids.c
        found |= set(conn.execute(select(g.code).where(g.community.in_(communities))).scalars())
    if not found:
        raise ApiError(422, "request_no_grids", field="grids")
    return sorted(found)


def _filter(text: str, fields: Sequence[str], only_missing: bool) -> str | None:
    """The request's filter, narrowed to records missing a requested field when asked."""
    base = text.strip()
    if not only_missing or not fields:
        return base or None
    missing = " or ".join(f"{name} is empty" for name in fields)
    return f"({base}) and ({missing})" if base else missing


def task_spec(
    conn: Connection, formset: FormSet, ask: Mapping[str, Any], choice: Collect
) -> TaskSpec:
    """The verify task a request gives (checked as any task is, when it is issued)."""
    form = _form(formset, ask["fields"], choice.form)
    fields = list(ask["fields"][form])
    purpose = str(ask["purpose"]).strip()
    due = (choice.due or "").strip() or str(ask["until"])[:10]
    try:
        return TaskSpec(
            kind="verify",
            title=f"部门需求 #{ask['id']} {ask['department']}：{purpose}"[:200],
            instruction=purpose[:2000],
            form=form,
            fields=fields,
            due=due,
            grids=_grids(conn, ask),
            filter=_filter(str(ask["filter"]), fields, choice.only_missing),
        )
    except ValidationError:
        raise _bad("需求过长，无法转为任务", "the request is too long for a task") from None


def collect(
    engine: Engine,
    formset: FormSet,
    actor: Actor,
    request_id: int,
    choice: Collect,
    today: date | None = None,
) -> dict[str, Any]:
    """Issue the request's task and link it; answers the task's follow view, its item count
    and the request id. 409 when the request was decided meanwhile (nothing is written)."""
    with db.write(engine) as conn:
        ask = asks.get(conn, request_id)
        if ask["state"] != "open":
            raise ApiError(409, "already_decided")
        spec = task_spec(conn, formset, ask, choice)
        row, count = store.create(conn, formset, actor.user, spec, today)
        if count == 0:
            raise ApiError(422, "nothing_to_collect")
        task_id = str(row["id"])
        audit.write(conn, actor, "task_create", f"task:{task_id} request:{request_id}", spec.fields)
        _link(conn, request_id, actor.user.username, task_id, choice.reason)
        audit.write(conn, actor, "dept_collect", f"request:{request_id} task:{task_id}")
    with db.read(engine) as conn:
        shown = follow.follow(conn, actor.user, task_id)
    return {**shown, "items": count, "request_id": request_id}


def _link(conn: Connection, request_id: int, admin: str, task_id: str, reason: str) -> None:
    """Mark the request collecting with its task, only if still open (a racing decision
    rolls the whole transaction back)."""
    done = conn.execute(
        update(db.dept_requests)
        .where(_Q.id == request_id, _Q.state == "open")
        .values(
            state="collecting",
            task_id=task_id,
            reason=reason.strip()[:2000],
            decided_by=admin,
            decided_at=auth.iso(auth.now()),
        )
    )
    if done.rowcount != 1:
        raise ApiError(409, "already_decided")


def progress(conn: Connection, task_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """What a department sees of the tasks made of its requests: state, due date and items
    done / unable / total — counts only, never which records."""
    ids = sorted({t for t in task_ids if t})
    if not ids:
        return {}
    t = db.tasks.c
    rows = conn.execute(select(t.id, t.state, t.due).where(t.id.in_(ids))).all()
    counts = store.item_counts(conn, ids)
    out: dict[str, dict[str, Any]] = {}
    for task_id, state, due in rows:
        c = counts.get(task_id, {"open": 0, "done": 0, "unable": 0})
        out[task_id] = {
            "state": state,
            "due": due,
            "done": c["done"],
            "unable": c["unable"],
            "open": c["open"],
            "total": c["done"] + c["unable"] + c["open"],
        }
    return out
