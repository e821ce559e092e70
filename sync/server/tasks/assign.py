"""Whom a task may be assigned to: workers holding one of its grids (PROTOCOL.md §13.1).

One check for the console's JSON API, its form pages and the CLI, so no door stores a name
the pull could never serve: a name that is no worker, or a worker of none of the task's grids,
would make the task reach nobody of its grids (the name never widens a scope, §13.2).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.engine import Connection

from sync.server import db
from sync.server.auth import User
from sync.server.errors import ApiError
from sync.server.tasks.spec import TaskEdit

_U, _G = db.users.c, db.user_grids.c


def workers_of(conn: Connection, grids: Iterable[str]) -> list[dict[str, Any]]:
    """The enabled workers holding any of ``grids``, by name, each with those of its grids
    (what the console offers as assignees)."""
    wanted = sorted(set(grids))
    out: dict[str, list[str]] = {}
    for i in range(0, len(wanted), 500):
        stmt = (
            select(_G.username, _G.grid)
            .join(db.users, _U.username == _G.username)
            .where(_U.role == "worker", _U.disabled.is_(False), _G.grid.in_(wanted[i : i + 500]))
        )
        for name, grid in conn.execute(stmt):
            out.setdefault(name, []).append(grid)
    return [{"username": n, "grids": sorted(out[n])} for n in sorted(out)]


def check(conn: Connection, user: User, names: Iterable[str], grids: Iterable[str]) -> None:
    """422 ``bad_assignee`` naming the first name that is not an enabled worker of the caller's
    scope, or is one holding none of ``grids`` (the task's). Why one message for "no such
    account", "not a worker" and "a worker elsewhere": a supervisor learns nothing of accounts
    outside their community by naming them."""
    task_grids = set(grids)
    for name in sorted(set(names)):
        row = conn.execute(select(_U.role, _U.disabled).where(_U.username == name)).first()
        held = set(conn.execute(select(_G.grid).where(_G.username == name)).scalars())
        mine = held if user.grids is None else held & user.grids
        if row is None or row.role != "worker" or row.disabled or not mine:
            raise ApiError(
                422,
                "bad_assignee",
                field="assignees",
                detail_zh=f"{name} 不是您辖区内在用的网格员账号",
                detail_en=f"{name} is not an active grid worker account within your scope",
            )
        if not held & task_grids:
            raise ApiError(
                422,
                "bad_assignee",
                field="assignees",
                detail_zh=f"网格员 {name} 不负责本任务的任何网格",
                detail_en=f"worker {name} holds none of the task's grids",
            )


def naming(names: list[str]) -> TaskEdit:
    """The change naming ``names`` (the console's form, ``task assign``). Why not
    ``TaskEdit(...)`` there: a name longer than an account name or more names than a task
    takes raised the request model's error, a 500 page and a traceback, where the API answers
    422; here it is ``bad_assignee`` like any refused name."""
    try:
        return TaskEdit(assignees=names)
    except ValidationError:
        raise ApiError(
            422,
            "bad_assignee",
            field="assignees",
            detail_zh="账号名至多 100 个字符，一个任务至多指派 200 人",
            detail_en="an account name has at most 100 characters, and a task at most 200 names",
        ) from None
