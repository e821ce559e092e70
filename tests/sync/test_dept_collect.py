"""A department's request turned into a collection task (PROTOCOL.md §14.6), on SQLite and
PostgreSQL: the task takes the request's records (places + filter, only those missing a
requested field), its fields, due date and purpose; the request links it; the audit names the
request; the department sees the progress move when a worker's save finishes an item; a second
decision or a request with nothing to collect writes nothing. Through the service, the JSON API
and the console pages."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import requests
from sqlalchemy import select

from app.core.forms import FormSet
from app.core.ids import uuid7
from sync.server import auth, db
from sync.server.console.audit import Actor
from sync.server.dept import asks, collect
from sync.server.errors import ApiError
from tests.factories import resident
from tests.sync.conftest import COMMUNITY, GRID_A, GRID_B, GRID_C, Client, Platform
from tests.sync.consolekit import login
from tests.sync.deptkit import DEPT, DEPT_USER, far, seed_department

ROOT = Actor(auth.User("root", "admin", None, None), "127.0.0.1")
PURPOSE = "高龄老人联系电话核对"


def elders(platform: Platform) -> dict[str, str]:
    """Residents: in grid A an elder with a phone, one without and a young one without; in B
    an elder without; in C (the other community) an elder without."""
    made: dict[str, str] = {}
    for user, grid, seq, birth, phone in (
        ("wang", GRID_A, 1, dt.date(1940, 1, 1), "13800138000"),
        ("wang", GRID_A, 3, dt.date(1948, 1, 1), None),
        ("wang", GRID_A, 5, dt.date(1990, 1, 1), None),
        ("li", GRID_B, 7, dt.date(1950, 1, 1), None),
        ("zhao", GRID_C, 9, dt.date(1945, 1, 1), None),
    ):
        client = platform.client(user)
        data: dict[str, Any] = {**resident(grid=grid, seq=seq, birth=birth), "_status": "draft"}
        if phone is None:
            data.pop("phone")
        rid = uuid7()
        (res,) = client.push([client.op(rid, "create", data)])
        assert res["status"] == "applied", res
        made[f"{grid}:{seq}"] = rid
    return made


def ask(platform: Platform, formset: FormSet, **over: Any) -> int:
    spec = asks.Ask(
        department=DEPT,
        username=DEPT_USER,
        fields=over.pop("fields", {"resident": ["name", "phone"]}),
        purpose=PURPOSE,
        until=over.pop("until", far(30)),
        communities=over.pop("communities", (COMMUNITY,)),
        filter=over.pop("filter", "年龄 >= 60"),
        **over,
    )
    with db.write(platform.engine) as conn:
        return asks.create(conn, formset, spec)


def request_row(platform: Platform, request_id: int) -> Any:
    with db.read(platform.engine) as conn:
        return conn.execute(
            select(db.dept_requests).where(db.dept_requests.c.id == request_id)
        ).one()


def audit_rows(platform: Platform, action: str) -> list[str]:
    a = db.audit_log.c
    with db.read(platform.engine) as conn:
        return list(conn.execute(select(a.target).where(a.action == action)).scalars())


def progress(platform: Platform, task_id: str) -> dict[str, Any]:
    with db.read(platform.engine) as conn:
        return collect.progress(conn, [task_id])[task_id]


def fill_phone(client: Client, record_id: str) -> None:
    """A worker's save that fills the missing phone (the item becomes done, §13.1)."""
    (res,) = client.push([client.op(record_id, "update", {"phone": "13900139000"}, base_version=1)])
    assert res["status"] == "applied", res


def test_a_request_becomes_a_linked_task_over_its_records(
    platform: Platform, formset: FormSet
) -> None:
    made = elders(platform)
    seed_department(platform)
    request_id = ask(platform, formset)
    until = request_row(platform, request_id).until

    shown = collect.collect(platform.engine, formset, ROOT, request_id, collect.Collect())

    task = shown["task"]
    assert shown["request_id"] == request_id and shown["items"] == 2
    assert task["kind"] == "verify" and task["form"] == "resident"
    assert task["fields"] == ["name", "phone"] and task["due"] == until[:10]
    assert task["instruction"] == PURPOSE and f"#{request_id}" in task["title"]
    assert sorted(task["grids"]) == [GRID_A, GRID_B]  # the community's grids, not C
    with db.read(platform.engine) as conn:
        items = conn.execute(
            select(db.task_items.c.record_id).where(db.task_items.c.task_id == task["id"])
        ).scalars()
        assert set(items) == {made[f"{GRID_A}:3"], made[f"{GRID_B}:7"]}  # elders lacking a phone
    row = request_row(platform, request_id)
    assert (row.state, row.task_id, row.decided_by) == ("collecting", task["id"], "root")
    assert audit_rows(platform, "task_create") == [f"task:{task['id']} request:{request_id}"]
    assert audit_rows(platform, "dept_collect") == [f"request:{request_id} task:{task['id']}"]
    assert progress(platform, task["id"]) == {
        "state": "open",
        "due": until[:10],
        "done": 0,
        "unable": 0,
        "open": 2,
        "total": 2,
    }

    # the workers reach it through pull; a save filling the phone finishes the item
    pulled = platform.client("wang").pull(0, 500)
    assert [t["id"] for t in pulled["tasks"]] == [task["id"]]
    fill_phone(platform.client("wang"), made[f"{GRID_A}:3"])
    assert progress(platform, task["id"])["done"] == 1
    fill_phone(platform.client("li"), made[f"{GRID_B}:7"])
    assert progress(platform, task["id"]) | {"due": None} == {
        "state": "closed",
        "due": None,
        "done": 2,
        "unable": 0,
        "open": 0,
        "total": 2,
    }


def test_every_matching_record_when_asked_and_the_admins_due_date(
    platform: Platform, formset: FormSet
) -> None:
    elders(platform)
    seed_department(platform)
    request_id = ask(platform, formset, communities=(), grids=(GRID_A,))
    choice = collect.Collect(due="2031-01-31", only_missing=False)
    shown = collect.collect(platform.engine, formset, ROOT, request_id, choice)
    assert shown["items"] == 1 + 1  # both elders of grid A, the one with a phone too
    assert shown["task"]["due"] == "2031-01-31" and shown["task"]["grids"] == [GRID_A]
    assert shown["task"]["spec"]["filter"]["text"] == "age >= 60"


def test_a_decided_request_or_nothing_to_collect_writes_nothing(
    platform: Platform, formset: FormSet
) -> None:
    elders(platform)
    seed_department(platform)
    full = ask(platform, formset, fields={"resident": ["name"]})  # every name is filled
    before = platform.dump()
    try:
        collect.collect(platform.engine, formset, ROOT, full, collect.Collect())
        raise AssertionError("a task without items was made")
    except ApiError as exc:
        assert (exc.status, exc.code) == (422, "nothing_to_collect")
    assert platform.dump() == before  # no task, no audit row, the request still open

    request_id = ask(platform, formset)
    collect.collect(platform.engine, formset, ROOT, request_id, collect.Collect())
    before = platform.dump()
    for choice in (collect.Collect(), collect.Collect(only_missing=False)):
        try:
            collect.collect(platform.engine, formset, ROOT, request_id, choice)
            raise AssertionError("a decided request was turned into a second task")
        except ApiError as exc:
            assert (exc.status, exc.code) == (409, "already_decided")
    with db.write(platform.engine) as conn:
        try:
            asks.approve(conn, formset, request_id, "root", "依据")
            raise AssertionError("a collecting request was granted")
        except ApiError as exc:
            assert exc.code == "already_decided"
    assert platform.dump() == before


def test_the_json_api_turns_a_request_into_a_task_for_admins_only(
    platform: Platform, formset: FormSet
) -> None:
    elders(platform)
    seed_department(platform)
    request_id = ask(platform, formset)
    url = f"{platform.url}/v1/console/dept/requests/{request_id}/task"

    def post(user: str, body: dict[str, Any]) -> requests.Response:
        headers = platform.client(user).headers
        return requests.post(url, json=body, headers=headers, timeout=60)

    assert post("chen", {}).status_code == 403  # a supervisor may not
    bad = post("root", {"due": "31/01/2031"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "bad_due"
    assert post("root", {"form": "house"}).status_code == 422  # not a requested form
    assert request_row(platform, request_id).state == "open"
    made = post("root", {"due": "2031-01-31", "reason": "平台尚无电话"})
    assert made.status_code == 200, made.text
    body = made.json()
    assert body["request_id"] == request_id and body["items"] == 2
    assert body["task"]["due"] == "2031-01-31" and body["counts"]["open"] == 2
    assert request_row(platform, request_id).reason == "平台尚无电话"
    again = post("root", {})
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_decided"


def test_the_console_turns_a_request_into_a_task_and_the_department_follows_it(
    platform: Platform, formset: FormSet
) -> None:
    made = elders(platform)
    seed_department(platform)
    request_id = ask(platform, formset)
    root = login(platform, "root")
    page = root.get("/console/departments")
    assert f'id="collect-due-{request_id}" value="' in page.text
    resp = root.post(
        f"/console/departments/requests/{request_id}/collect",
        {"due": "2031-02-28", "only_missing": ["0", "1"], "reason": ""},
    )
    assert resp.status_code == 303 and "err=" not in resp.headers["location"], resp.headers
    task_id = request_row(platform, request_id).task_id
    assert task_id
    admin_page = root.get("/console/departments").text
    assert f'id="task-link-{request_id}"' in admin_page and task_id in admin_page

    dept = login(platform, DEPT_USER)

    def shown() -> tuple[str, str, str]:
        text = dept.get("/console/dept").text
        found = re.search(
            rf'id="task-progress-{request_id}" data-done="(\d+)" data-total="(\d+)" '
            r'data-state="(\w+)"',
            text,
        )
        assert found, text
        return found.group(1), found.group(2), found.group(3)

    assert shown() == ("0", "2", "open")
    fill_phone(platform.client("wang"), made[f"{GRID_A}:3"])
    assert shown() == ("1", "2", "open")
    assert made[f"{GRID_A}:3"] not in dept.get("/console/dept").text  # counts, never records
    assert dept.get(f"/console/tasks/{task_id}").status_code == 403  # its own page only


def test_the_console_says_what_to_fix_when_there_is_nothing_to_collect(
    platform: Platform, formset: FormSet
) -> None:
    elders(platform)
    seed_department(platform)
    request_id = ask(platform, formset, fields={"resident": ["name"]})
    root = login(platform, "root")
    resp = root.post(f"/console/departments/requests/{request_id}/collect", {"due": ""})
    assert resp.status_code == 303 and "err=nothing_to_collect" in resp.headers["location"]
    page = root.get(resp.headers["location"].removeprefix(platform.url))
    assert "没有需要采集的记录" in page.text
    assert request_row(platform, request_id).state == "open"
