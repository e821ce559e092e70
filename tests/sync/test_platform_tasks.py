"""Tasks on the platform (PROTOCOL.md §13), over the real server on loopback HTTP, on SQLite and
PostgreSQL: a supervisor issues a filtered task in the console API, workers receive exactly
their grids' items in pulls, results come back in pushes and merge (done wins, history kept),
a qualifying save finishes an item, the task closes by itself, changes reach devices once."""

from __future__ import annotations

import csv
import io
import itertools
from typing import Any

import pytest
import requests
from openpyxl import load_workbook
from sqlalchemy import select

from app.core.ids import uuid7
from sync.server import db
from tests.factories import resident
from tests.sync.conftest import GRID_A, GRID_B, GRID_C, Client, Platform, _now


def api(platform: Platform, client: Client, method: str, path: str, **kw: Any) -> requests.Response:
    return platform_request(platform, client, method, path, **kw)


def platform_request(
    platform: Platform, client: Client, method: str, path: str, **kw: Any
) -> requests.Response:
    return requests.request(
        method, f"{platform.url}/v1/console{path}", headers=client.headers, timeout=60, **kw
    )


_SEQ = itertools.count(101)


def people(client: Client, grid: str, kinds: list[str], **extra: Any) -> list[str]:
    """Draft residents of ``grid`` pushed by ``client``; ``kinds``: their 人口类型 codes."""
    ids = []
    ops = []
    for kind in kinds:
        rid = uuid7()
        seq = extra.pop("seq", None) or next(_SEQ)  # distinct ID numbers: no natural-key merges
        fields = resident(seq=seq, population_type=kind, grid=grid, **extra)
        fields.pop("phone")
        fields["_status"] = "draft"
        ops.append(client.op(rid, "create", fields))
        ids.append(rid)
    assert {r["status"] for r in client.push(ops)} == {"applied"}
    return ids


def result(client: Client, item_id: str, state: str, reason: str | None = None, **kw: Any):
    seq = kw.pop("seq", None) or uuid7()
    return {
        "op_id": f"{client.device_id}:t{seq}",
        "item_id": item_id,
        "state": state,
        "reason": reason,
        "edited_at": kw.pop("edited_at", f"{_now()}#0000"),
        "author": "tester",
    }


def push_results(client: Client, results: list[dict[str, Any]]) -> requests.Response:
    return client.push_raw([], task_results=results)


def pull_everything(client: Client, limit: int = 500) -> dict[str, Any]:
    since, out = 0, {"records": [], "tasks": [], "task_items": []}
    while True:
        page = client.pull(since, limit)
        for key in out:
            out[key].extend(page.get(key, []))
        since = page["cursor"]
        if not page["more"]:
            return {**out, "cursor": since}


SPEC = {
    "title": "核实流动人口电话",
    "instruction": "上门核实并填写联系电话",
    "form": "resident",
    "fields": ["phone"],
    "filter": "人口类型 = 流动人口",
    "due": "2030-12-31",
}


@pytest.fixture
def workers(platform: Platform) -> dict[str, Client]:
    return {name: platform.client(name) for name in ("wang", "li", "zhao", "chen", "root")}


def test_a_filtered_task_reaches_only_its_grids_and_closes_when_no_item_is_open(
    platform: Platform, workers: dict[str, Client]
) -> None:
    wang, li, zhao, chen = (workers[n] for n in ("wang", "li", "zhao", "chen"))
    a_migrant, a_migrant2, a_local = people(wang, GRID_A, ["2", "2", "1"])
    (b_migrant,) = people(li, GRID_B, ["2"])
    (c_migrant,) = people(zhao, GRID_C, ["2"])

    preview = api(platform, chen, "POST", "/tasks/preview", json=SPEC).json()
    assert preview["total"] == 3
    assert {g["grid"]: g["count"] for g in preview["grids"]} == {GRID_A: 2, GRID_B: 1}
    made = api(platform, chen, "POST", "/tasks", json=SPEC)
    assert made.status_code == 200, made.text
    task = made.json()
    task_id = task["task"]["id"]
    assert task["items"] == 3 and task["counts"] == {"open": 3, "done": 0, "unable": 0}
    assert task["task"]["spec"]["filter"]["text"] == "population_type = 2"

    got = pull_everything(wang)
    (pulled,) = got["tasks"]
    assert pulled["id"] == task_id and pulled["grids"] == [GRID_A] and pulled["state"] == "open"
    assert pulled["fields"] == ["phone"] and pulled["kind"] == "verify"
    items = {i["record_id"]: i for i in got["task_items"]}
    assert set(items) == {a_migrant, a_migrant2}
    assert {i["grid"] for i in got["task_items"]} == {GRID_A}
    b_items = pull_everything(li)["task_items"]
    assert [i["record_id"] for i in b_items] == [b_migrant]
    nothing = pull_everything(zhao)
    assert nothing["tasks"] == [] and nothing["task_items"] == []
    assert c_migrant not in {i["record_id"] for i in pull_everything(workers["root"])["task_items"]}

    # wang cannot find one person; li confirms theirs; wang fills in a phone (a qualifying save)
    answer = push_results(wang, [result(wang, items[a_migrant]["id"], "unable", "查无此人")])
    assert answer.status_code == 200, answer.text
    assert answer.json()["task_results"][0] | {"op_id": None} == {
        "op_id": None,
        "status": "applied",
        "item_id": items[a_migrant]["id"],
        "state": "unable",
    }
    assert push_results(li, [result(li, b_items[0]["id"], "done")]).status_code == 200
    cursor = pull_everything(wang)["cursor"]
    wang.push([wang.op(a_migrant2, "update", {"phone": "13900139000"}, base_version=1)])
    after = wang.pull(cursor)
    (closed,) = after["tasks"]
    assert closed["state"] == "closed"  # no open item left: closed by itself
    assert [(i["record_id"], i["state"], i["updated_by"]) for i in after["task_items"]] == [
        (a_migrant2, "done", "wang")
    ]
    follow = api(platform, chen, "GET", f"/tasks/{task_id}").json()
    assert follow["counts"] == {"open": 0, "done": 2, "unable": 1}
    assert {g["grid"]: (g["done"], g["unable"]) for g in follow["grids"]} == {
        GRID_A: (1, 1),
        GRID_B: (1, 0),
    }
    assert follow["workers"] == [
        {"username": "li", "done": 1, "unable": 0},
        {"username": "wang", "done": 1, "unable": 1},
    ]
    detail = api(platform, chen, "GET", f"/tasks/{task_id}/items/{items[a_migrant2]['id']}").json()
    assert [(r["state"], r["source"], r["username"]) for r in detail["results"]] == [
        ("done", "save", "wang")
    ]
    (change,) = detail["changes"]
    assert [c["field"] for c in change["changes"]] == ["phone"]
    assert "13900139000" not in str(detail)  # sensitive values masked


def test_done_wins_over_unable_in_any_order_and_both_stay_in_history(
    platform: Platform, workers: dict[str, Client]
) -> None:
    wang, chen = workers["wang"], workers["chen"]
    wang2 = platform.client("wang")
    ids = people(wang, GRID_A, ["2", "2"])
    task_id = api(platform, chen, "POST", "/tasks", json=SPEC).json()["task"]["id"]
    items = {i["record_id"]: i["id"] for i in pull_everything(wang)["task_items"]}
    first, second = items[ids[0]], items[ids[1]]
    late, early = f"{_now()}#0009", "2000-01-01T00:00:00.000Z#0000"
    # item 1: done (early clock) then unable (late clock) -> done
    push_results(wang, [result(wang, first, "done", edited_at=early)])
    answer = push_results(wang2, [result(wang2, first, "unable", "拒绝配合", edited_at=late)])
    assert answer.json()["task_results"][0]["state"] == "done"
    # item 2: unable, then a later unable with another reason, then done
    push_results(wang2, [result(wang2, second, "unable", "已迁出", edited_at=early)])
    push_results(wang, [result(wang, second, "unable", "查无此人", edited_at=late)])
    with db.read(platform.engine) as conn:
        row = conn.execute(select(db.task_items).where(db.task_items.c.id == second)).one()
    assert (row.state, row.reason) == ("unable", "查无此人")
    push_results(wang2, [result(wang2, second, "done")])
    detail = api(platform, chen, "GET", f"/tasks/{task_id}/items/{second}").json()
    assert [(r["state"], r["reason"]) for r in detail["results"]] == [
        ("unable", "已迁出"),
        ("unable", "查无此人"),
        ("done", None),
    ]
    assert detail["item"]["state"] == "done"
    assert api(platform, chen, "GET", f"/tasks/{task_id}").json()["task"]["state"] == "closed"


def test_results_are_idempotent_and_bad_ones_change_nothing(
    platform: Platform, workers: dict[str, Client]
) -> None:
    wang, li, chen = workers["wang"], workers["li"], workers["chen"]
    (rid,) = people(wang, GRID_A, ["2"])
    people(li, GRID_B, ["2"])
    api(platform, chen, "POST", "/tasks", json=SPEC)
    (item,) = pull_everything(wang)["task_items"]
    (b_item,) = pull_everything(li)["task_items"]
    sent = result(wang, item["id"], "unable", "拒绝配合")
    assert push_results(wang, [sent]).json()["task_results"][0]["status"] == "applied"
    again = push_results(wang, [sent]).json()["task_results"][0]
    assert (again["status"], again["state"]) == ("duplicate", "unable")
    before = platform.dump()
    op = wang.op(rid, "update", {"phone": "13900139000"}, base_version=1)
    bad = [
        ({**sent, "reason": "其他原因"}, 409, "op_id_reused"),
        (result(wang, uuid7(), "done"), 422, "unknown_item"),
        (result(wang, b_item["id"], "done"), 403, "out_of_scope"),
        (result(wang, item["id"], "unable", "  "), 422, "bad_reason"),
        (result(wang, item["id"], "unable"), 422, "bad_reason"),
        (result(wang, item["id"], "unable", "x\x00"), 422, "nul_char"),
    ]
    for res, status, code in bad:
        resp = wang.push_raw([op], task_results=[result(wang, item["id"], "done"), res])
        assert resp.status_code == status, (code, resp.text)
        error = resp.json()["error"]
        assert (error["code"], error["index"], error["field"]) == (code, 1, "task_results")
        assert error["message_zh"] and error["message_en"]
    assert platform.dump() == before  # the op and the good result were not applied either


def test_edit_remind_cancel_reach_devices_once_and_are_audited(
    platform: Platform, workers: dict[str, Client]
) -> None:
    wang, chen, li = workers["wang"], workers["chen"], workers["li"]
    people(wang, GRID_A, ["2"])
    task_id = api(platform, chen, "POST", "/tasks", json=SPEC).json()["task"]["id"]
    cursor = pull_everything(wang)["cursor"]
    assert wang.pull(cursor)["tasks"] == []  # sent once
    edited = api(platform, chen, "PATCH", f"/tasks/{task_id}", json={"due": "2031-01-31"})
    assert edited.status_code == 200 and edited.json()["task"]["due"] == "2031-01-31"
    page = wang.pull(cursor)
    assert [(t["due"], t["priority"]) for t in page["tasks"]] == [("2031-01-31", 0)]
    assert page["task_items"] == []  # items did not change
    cursor = page["cursor"]
    for expected in (1, 2, 2):
        assert api(platform, chen, "POST", f"/tasks/{task_id}/remind").status_code == 200
        page = wang.pull(cursor)
        assert [t["priority"] for t in page["tasks"]] == [expected]
        cursor = page["cursor"]
    assert api(platform, li, "POST", f"/tasks/{task_id}/cancel").status_code == 403
    assert api(platform, chen, "POST", f"/tasks/{task_id}/cancel").status_code == 200
    assert [t["state"] for t in wang.pull(cursor)["tasks"]] == ["cancelled"]
    refused = api(platform, chen, "POST", f"/tasks/{task_id}/remind")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "task_closed"
    with db.read(platform.engine) as conn:
        rows = conn.execute(
            select(db.audit_log.c.action, db.audit_log.c.target, db.audit_log.c.fields)
            .where(db.audit_log.c.action.like("task_%"))
            .order_by(db.audit_log.c.id)
        ).all()
    assert [r.action for r in rows] == [
        "task_create",
        "task_edit",
        "task_remind",
        "task_remind",
        "task_remind",
        "task_cancel",
    ]
    assert {r.target for r in rows} == {f"task:{task_id}"}


def test_items_count_towards_the_page_limit_and_arrive_once(
    platform: Platform, workers: dict[str, Client]
) -> None:
    wang, chen = workers["wang"], workers["chen"]
    ids = people(wang, GRID_A, ["2"] * 7)
    api(platform, chen, "POST", "/tasks", json=SPEC)
    since, seen_items, seen_records = 0, [], []
    while True:
        page = wang.pull(since, 3)
        assert len(page["records"]) + len(page["task_items"]) <= 3
        seen_items += [i["record_id"] for i in page["task_items"]]
        seen_records += [r["id"] for r in page["records"]]
        assert page["cursor"] >= since
        since = page["cursor"]
        if not page["more"]:
            break
    assert sorted(seen_items) == sorted(ids) and sorted(seen_records) == sorted(ids)


def test_a_task_from_a_list_never_takes_records_outside_the_issuers_scope(
    platform: Platform, workers: dict[str, Client]
) -> None:
    wang, zhao, chen = workers["wang"], workers["zhao"], workers["chen"]
    a1, a2 = people(wang, GRID_A, ["1", "1"])
    (c1,) = people(zhao, GRID_C, ["1"])
    with db.read(platform.engine) as conn:
        numbers = {
            r.id: db.loads(r.data)["id_number"]
            for r in conn.execute(select(db.records.c.id, db.records.c.data))
        }
    spec = {**SPEC, "filter": None, "id_numbers": [numbers[a1].lower(), numbers[c1]]}
    made = api(platform, chen, "POST", "/tasks", json=spec).json()
    assert made["items"] == 1
    spec = {**SPEC, "filter": None, "record_ids": [a2, c1]}
    assert api(platform, chen, "POST", "/tasks", json=spec).json()["items"] == 1
    outside = api(platform, chen, "POST", "/tasks", json={**spec, "grids": [GRID_C]})
    assert outside.status_code == 404


def test_a_task_from_a_list_of_id_numbers_finds_either_generation(
    platform: Platform, workers: dict[str, Client]
) -> None:
    """A listed ID number selects the record holding its other generation (one person,
    ``naturalkeys``): a record stored under its 15-digit number (as an old client's push could
    have stored it) by its 18 digits, and a record holding 18 digits by its 15."""
    wang, chen = workers["wang"], workers["chen"]
    a1, a2, a3 = people(wang, GRID_A, ["1", "1", "1"])
    r = db.records.c
    with db.write(platform.engine) as conn:
        datas = {
            row.id: db.loads(row.data)
            for row in conn.execute(select(r.id, r.data).where(r.id.in_([a1, a2])))
        }
        numbers = {rid: data["id_number"] for rid, data in datas.items()}
        stored = dict(datas[a1], id_number=numbers[a1][:6] + numbers[a1][8:17])
        conn.execute(db.records.update().where(r.id == a1).values(data=db.dumps(stored)))
    listed = [numbers[a1], numbers[a2][:6] + numbers[a2][8:17]]
    made = api(
        platform, chen, "POST", "/tasks", json={**SPEC, "filter": None, "id_numbers": listed}
    )
    with db.read(platform.engine) as conn:
        items = set(
            conn.execute(
                select(db.task_items.c.record_id).where(
                    db.task_items.c.task_id == made.json()["task"]["id"]
                )
            ).scalars()
        )
    assert items == {a1, a2} and a3 not in items


def test_a_bad_filter_says_what_to_fix_and_writes_nothing(
    platform: Platform, workers: dict[str, Client]
) -> None:
    chen, wang = workers["chen"], workers["wang"]
    before = platform.dump()
    resp = api(platform, chen, "POST", "/tasks", json={**SPEC, "filter": "人口类型 = 外星人"})
    assert resp.status_code == 422
    error = resp.json()["error"]
    assert error["code"] == "bad_filter" and error["field"] == "filter"
    assert "不是字段 population_type 的代码或名称" in error["message_zh"]
    assert "at character 8" in error["message_en"]
    assert api(platform, wang, "POST", "/tasks", json=SPEC).status_code == 403
    assert platform.dump() == before


def test_results_export_as_csv_and_xlsx_with_formula_cells_quoted(
    platform: Platform, workers: dict[str, Client]
) -> None:
    wang, chen = workers["wang"], workers["chen"]
    people(wang, GRID_A, ["2"], name="=HYPERLINK(1)")
    task_id = api(platform, chen, "POST", "/tasks", json=SPEC).json()["task"]["id"]
    (item,) = pull_everything(wang)["task_items"]
    push_results(wang, [result(wang, item["id"], "unable", "@SUM(1)")])
    text = api(platform, chen, "GET", f"/tasks/{task_id}/export").content.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[1][2] == "'=HYPERLINK(1)" and rows[1][4:6] == ["unable", "'@SUM(1)"]
    xlsx = api(platform, chen, "GET", f"/tasks/{task_id}/export", params={"format": "xlsx"})
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet.cell(2, 3).value == "'=HYPERLINK(1)" and sheet.cell(2, 3).data_type == "s"
    assert api(platform, wang, "GET", f"/tasks/{task_id}/export").status_code == 403


def test_the_cli_creates_lists_shows_and_cancels_tasks(
    platform: Platform,
    workers: dict[str, Client],
    db_url: str,
    tmp_path: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import json

    from sync.server import cli

    wang = workers["wang"]
    ids = people(wang, GRID_A, ["2", "2", "1"])
    base = ["server-admin", "task"]

    def run(*argv: str) -> tuple[int, str, str]:
        code = cli.main([*base, *argv, "--db", db_url])
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = run(
        "create", "--as", "chen", "--preview", "--json", "--filter", "人口类型 = 流动人口"
    )
    assert code == 0 and json.loads(out)["total"] == 2
    code, out, _ = run(
        "create",
        "--as",
        "chen",
        "--title",
        "核实电话",
        "--field",
        "phone",
        "--json",
        "--filter",
        "人口类型 = 流动人口",
        "--due",
        "2030-01-01",
    )
    made = json.loads(out)
    assert code == 0 and made["items"] == 2 and made["task"]["due"] == "2030-01-01"
    spec = tmp_path / "task.json"
    spec.write_text(json.dumps({**SPEC, "filter": None}), encoding="utf-8")
    listed = tmp_path / "ids.csv"
    listed.write_text(f"record_id\n{ids[2]}\n", encoding="utf-8")
    code, out, _ = run(
        "create", "--as", "root", "--spec", str(spec), "--ids-csv", str(listed), "--json"
    )
    assert code == 0 and json.loads(out)["items"] == 1
    code, out, _ = run("list", "--as", "chen", "--json")
    assert code == 0 and len(json.loads(out)["tasks"]) == 2
    code, out, _ = run("show", made["task"]["id"], "--as", "chen", "--json")
    assert json.loads(out)["counts"] == {"open": 2, "done": 0, "unable": 0}
    code, out, _ = run("cancel", made["task"]["id"], "--as", "chen")
    assert code == 0 and "cancelled" in out
    code, _, err = run("create", "--as", "chen", "--title", "x", "--filter", "年龄 > 老")
    assert code == 2 and "筛选条件有误" in err
    code, _, err = run("cancel", made["task"]["id"], "--as", "wang")
    assert code == 2 and "forbidden" in err
    states = {t["id"]: t["state"] for t in pull_everything(wang)["tasks"]}
    assert states[made["task"]["id"]] == "cancelled" and sorted(states.values()) == [
        "cancelled",
        "open",
    ]


def test_a_task_scoped_by_building_or_house_takes_the_people_living_there(
    platform: Platform, workers: dict[str, Client]
) -> None:
    wang, chen = workers["wang"], workers["chen"]
    houses = {}
    for code, building in (("H-1", "3栋"), ("H-2", "3栋"), ("H-3", "5栋")):
        hid = uuid7()
        fields = {
            "house_code": code,
            "address_text": f"幸福路{code}",
            "grid": GRID_A,
            "building": building,
            "_status": "draft",
        }
        assert wang.push([wang.op(hid, "create", fields, form="house")])[0]["status"] == "applied"
        houses[code] = hid
    lives = {}
    for n, code in enumerate(("H-1", "H-2", "H-3", "H-3")):
        (rid,) = people(wang, GRID_A, ["2"], house_ref=houses[code], seq=300 + n)
        lives[rid] = code
    (nowhere,) = people(wang, GRID_A, ["2"], seq=399)

    def items(**scope: Any) -> set[str]:
        spec = {**SPEC, **scope}
        made = api(platform, chen, "POST", "/tasks", json=spec)
        assert made.status_code == 200, made.text
        task_id = made.json()["task"]["id"]
        got = api(platform, chen, "GET", f"/tasks/{task_id}/items").json()["items"]
        return {i["record_id"] for i in got}

    in_3 = {rid for rid, code in lives.items() if code in ("H-1", "H-2")}
    assert items(buildings=["3栋"]) == in_3
    assert items(houses=[houses["H-3"]]) == {r for r, c in lives.items() if c == "H-3"}
    assert nowhere not in items(buildings=["3栋", "5栋"])
    house_task = items(form="house", fields=["owner_phone"], filter=None, buildings=["5栋"])
    assert house_task == {houses["H-3"]}
    refused = api(
        platform,
        chen,
        "POST",
        "/tasks",
        json={**SPEC, "form": "address", "fields": [], "filter": None, "buildings": ["3栋"]},
    )
    assert refused.status_code == 200  # addresses have a building field of their own


def test_a_collect_task_counts_new_records_of_its_form_in_its_grids(
    platform: Platform, workers: dict[str, Client]
) -> None:
    wang, li, chen = workers["wang"], workers["li"], workers["chen"]
    people(wang, GRID_A, ["1"])  # before the task: not counted
    spec = {
        "kind": "collect",
        "title": "登记新市场的单位",
        "form": "resident",
        "grids": [GRID_A],
        "target": 5,
    }
    made = api(platform, chen, "POST", "/tasks", json=spec).json()
    assert made["items"] == 0 and made["collected"] == 0
    (pulled,) = pull_everything(wang)["tasks"]
    assert (pulled["kind"], pulled["target"], pulled["grids"]) == ("collect", 5, [GRID_A])
    assert pull_everything(li)["tasks"] == []
    people(wang, GRID_A, ["1", "2"])
    people(li, GRID_B, ["1"])  # another grid: not counted
    follow = api(platform, chen, "GET", f"/tasks/{made['task']['id']}").json()
    assert follow["collected"] == 2


def test_the_task_list_counts_only_the_callers_items_as_the_task_page_does(
    platform: Platform, workers: dict[str, Client]
) -> None:
    """An admin's task over two communities: the supervisor of one and a worker of one grid
    see, in the list, the counts of their own grids' items, the same as on the task's page
    (every console read is cut to the caller's scope)."""
    wang, li, zhao, chen, root = (workers[n] for n in ("wang", "li", "zhao", "chen", "root"))
    people(wang, GRID_A, ["2"])
    people(li, GRID_B, ["2", "2"])
    people(zhao, GRID_C, ["2", "2", "2"])
    made = api(platform, root, "POST", "/tasks", json=SPEC)
    assert made.json()["items"] == 6, made.text
    task_id = made.json()["task"]["id"]
    for who, expected in ((chen, 3), (wang, 1), (root, 6)):
        (listed,) = api(platform, who, "GET", "/tasks").json()["tasks"]
        shown = api(platform, who, "GET", f"/tasks/{task_id}").json()
        assert listed["counts"] == shown["counts"] == {"open": expected, "done": 0, "unable": 0}


def _task_ids(client: Client) -> tuple[set[str], set[str]]:
    """The task ids and the items' task ids a full pull from 0 gives ``client``."""
    got = pull_everything(client)
    return {t["id"] for t in got["tasks"]}, {i["task_id"] for i in got["task_items"]}


def test_a_task_naming_assignees_reaches_only_them_among_the_grids_workers(
    platform: Platform, workers: dict[str, Client]
) -> None:
    """Two workers of grid A (wang, sun): a task naming wang goes to wang's device only (task and
    items); a task naming nobody goes to both; li, named while holding grid A too and then left
    with grid B only, gets nothing (scope still applies). The console shows the named task to
    the grid's supervisor with the same counts as before, and not to sun (PROTOCOL.md
    §13.1/§13.2)."""
    from sync.server import admin
    from tests.sync.conftest import PASSWORD

    admin.put_user(platform.engine, "sun", PASSWORD, "worker", grids=[GRID_A])
    admin.set_user_grids(platform.engine, "li", [GRID_A, GRID_B])
    wang, li, chen = workers["wang"], workers["li"], workers["chen"]
    sun = platform.client("sun")
    people(wang, GRID_A, ["2", "2"])
    spec = {**SPEC, "grids": [GRID_A]}
    named = api(platform, chen, "POST", "/tasks", json={**spec, "assignees": ["wang", "li"]})
    assert named.status_code == 200, named.text
    admin.set_user_grids(platform.engine, "li", [GRID_B])
    named_id = named.json()["task"]["id"]
    everyone = api(platform, chen, "POST", "/tasks", json={**spec, "title": "全体"})
    everyone_id = everyone.json()["task"]["id"]

    assert _task_ids(wang) == ({named_id, everyone_id}, {named_id, everyone_id})
    assert _task_ids(sun) == ({everyone_id}, {everyone_id})
    assert _task_ids(li) == (set(), set())

    listed = {t["id"]: t["counts"] for t in api(platform, chen, "GET", "/tasks").json()["tasks"]}
    assert listed == {n: {"open": 2, "done": 0, "unable": 0} for n in (named_id, everyone_id)}
    assert [t["id"] for t in api(platform, sun, "GET", "/tasks").json()["tasks"]] == [everyone_id]
    assert api(platform, sun, "GET", f"/tasks/{named_id}").status_code == 404
    assert api(platform, li, "GET", f"/tasks/{named_id}").status_code == 404


def _task_rows(platform: Platform) -> list[int]:
    with db.read(platform.engine) as conn:
        return [
            len(conn.execute(select(t)).all())
            for t in (db.tasks, db.task_items, db.task_grids, db.task_assignees)
        ]


def test_a_name_that_is_no_worker_of_the_tasks_grids_is_refused_and_nothing_is_stored(
    platform: Platform, workers: dict[str, Client]
) -> None:
    """The JSON API (and so the console form and the CLI, which call the same functions)
    refuses to name chen (a supervisor), nobody (no account), zhao (a worker of another
    community) or li (a worker of grid B for a task of grid A): 422 ``bad_assignee`` naming the
    name and the problem in both languages, no task, item or name stored; an edit adding li
    to an open task is refused the same way and leaves its names as they were."""
    wang, chen = workers["wang"], workers["chen"]
    people(wang, GRID_A, ["2", "2"])
    spec = {**SPEC, "grids": [GRID_A]}
    before = _task_rows(platform)
    for name in ("chen", "nobody", "zhao"):
        refused = api(platform, chen, "POST", "/tasks", json={**spec, "assignees": ["wang", name]})
        error = refused.json()["error"]
        assert refused.status_code == 422 and error["code"] == "bad_assignee", refused.text
        assert f"{name} 不是您辖区内在用的网格员账号" in error["message_zh"]
        assert f"{name} is not an active grid worker account" in error["message_en"]
        assert error["field"] == "assignees"
    refused = api(platform, chen, "POST", "/tasks", json={**spec, "assignees": ["li"]})
    error = refused.json()["error"]
    assert refused.status_code == 422 and "网格员 li 不负责本任务的任何网格" in error["message_zh"]
    assert "worker li holds none of the task's grids" in error["message_en"]
    assert _task_rows(platform) == before

    task_id = api(platform, chen, "POST", "/tasks", json={**spec, "assignees": ["wang"]}).json()[
        "task"
    ]["id"]
    stored = _task_rows(platform)
    edit = api(platform, chen, "PATCH", f"/tasks/{task_id}", json={"assignees": ["wang", "li"]})
    assert edit.status_code == 422 and edit.json()["error"]["code"] == "bad_assignee"
    assert _task_rows(platform) == stored
    assert api(platform, chen, "GET", f"/tasks/{task_id}").json()["task"]["assignees"] == ["wang"]


def test_pulls_name_a_grid_taken_away_and_a_task_named_to_others_once(
    platform: Platform, workers: dict[str, Client]
) -> None:
    """PROTOCOL.md §8/§13.2 on the wire: ``grids_left`` names grid B in the page that covers
    its leaving (again when that page is asked again), never afterwards nor once B is back;
    ``tasks_withdrawn`` names a task of wang's grid edited to name li only."""
    from sync.server import admin

    wang, li, chen = workers["wang"], workers["li"], workers["chen"]
    people(wang, GRID_A, ["2"])
    admin.set_user_grids(platform.engine, "wang", [GRID_A, GRID_B])
    admin.set_user_grids(platform.engine, "li", [GRID_A, GRID_B])
    made = api(platform, chen, "POST", "/tasks", json={**SPEC, "grids": [GRID_A]})
    task_id = made.json()["task"]["id"]
    since = pull_everything(wang)["cursor"]

    admin.set_user_grids(platform.engine, "wang", [GRID_A])
    page = wang.pull(since)
    assert page["grids_left"] == [GRID_B] and "tasks_withdrawn" not in page
    assert wang.pull(since)["grids_left"] == [GRID_B]  # a lost answer is named again
    since = page["cursor"]
    assert "grids_left" not in wang.pull(since)

    edit = api(platform, chen, "PATCH", f"/tasks/{task_id}", json={"assignees": ["li"]})
    assert edit.status_code == 200, edit.text
    page = wang.pull(since)
    assert page["tasks_withdrawn"] == [task_id] and page["tasks"] == []
    assert page["task_items"] == []
    assert "grids_left" not in page
    li_page = li.pull(since)
    assert [t["id"] for t in li_page["tasks"]] == [task_id] and len(li_page["task_items"]) == 1

    admin.set_user_grids(platform.engine, "wang", [GRID_A, GRID_B])
    admin.set_user_grids(platform.engine, "wang", [GRID_A])
    admin.set_user_grids(platform.engine, "wang", [GRID_A, GRID_B])
    page = wang.pull(page["cursor"])
    assert "grids_left" not in page and [e["grid"] for e in page["entered"]] == [GRID_B]


def test_the_console_task_page_says_whom_a_task_goes_to_with_the_counts_of_the_api(
    platform: Platform, workers: dict[str, Client]
) -> None:
    """The server-rendered task page (what a supervisor follows a task on) names the workers a
    task is assigned to, or says it goes to every worker of its grids, and shows the same
    counts as the JSON API and the list page."""
    from tests.sync.consolekit import login

    wang, chen = workers["wang"], workers["chen"]
    people(wang, GRID_A, ["2", "2"])
    spec = {**SPEC, "grids": [GRID_A]}
    named_id = api(platform, chen, "POST", "/tasks", json={**spec, "assignees": ["wang"]}).json()[
        "task"
    ]["id"]
    everyone_id = api(platform, chen, "POST", "/tasks", json={**spec, "title": "全体"}).json()[
        "task"
    ]["id"]
    browser = login(platform, "chen")
    listing = browser.get("/console/tasks").text
    assert named_id in listing and everyone_id in listing
    for task_id, whom in ((named_id, "指派给: wang"), (everyone_id, "指派给: 本网格全体网格员")):
        page = browser.get(f"/console/tasks/{task_id}").text
        assert f'<p id="task-assignees">{whom}</p>' in page
        counts = api(platform, chen, "GET", f"/tasks/{task_id}").json()["counts"]
        assert f'<b id="count-open">{counts["open"]}</b>' in page and counts["open"] == 2
    english = browser.get(f"/console/tasks/{everyone_id}?lang=en").text
    assert '<p id="task-assignees">Assigned to: every worker of its grids</p>' in english


def test_a_console_export_happens_only_by_the_task_page_button_never_by_a_get(
    platform: Platform, workers: dict[str, Client]
) -> None:
    """An export is audited (``task_export``): a prefetched link, a crawler or a forwarded URL
    must not record one nobody made. The task page POSTs with its CSRF token; a GET answers
    405 and a POST without the token 403, neither audited nor carrying the results."""
    import re

    from tests.sync.consolekit import login

    wang, chen = workers["wang"], workers["chen"]
    people(wang, GRID_A, ["2"])
    spec = {**SPEC, "grids": [GRID_A]}
    task_id = api(platform, chen, "POST", "/tasks", json=spec).json()["task"]["id"]
    browser = login(platform, "chen")

    def audited() -> int:
        with db.read(platform.engine) as conn:
            rows = conn.execute(
                select(db.audit_log.c.id).where(db.audit_log.c.action == "task_export")
            ).all()
        return len(rows)

    path = f"/console/tasks/{task_id}/export.csv"
    page = browser.get(f"/console/tasks/{task_id}").text
    assert f'href="{path}"' not in page  # no link to prefetch
    assert re.search(rf'<form method="post" action="{path}"', page)
    got = browser.get(path)
    assert got.status_code == 405 and got.headers["allow"] == "POST"
    assert "导出" in got.text and "text/csv" not in got.headers["content-type"]
    forged = browser.post(path, token=False)
    assert forged.status_code == 403
    assert audited() == 0
    for fmt in ("csv", "xlsx"):
        done = browser.post(f"/console/tasks/{task_id}/export.{fmt}")
        assert done.status_code == 200 and "attachment" in done.headers["content-disposition"]
        if fmt == "csv":  # a header and the one item of the task
            assert len(list(csv.reader(io.StringIO(done.content.decode("utf-8-sig"))))) == 2
    assert audited() == 2


def test_the_per_worker_chart_never_cuts_a_name_into_another_name(
    platform: Platform, workers: dict[str, Client]
) -> None:
    """Account names of a city look like ``w-330106090001001``: the chart cut labels to 16
    characters, which read as another account (``w-33010609000100``). A long name now ends in
    "…" and the whole name is the label's tooltip."""
    from sync.server import admin
    from tests.sync.conftest import PASSWORD
    from tests.sync.consolekit import login

    long_name = "w-330106090001001"
    admin.put_user(platform.engine, long_name, PASSWORD, "worker", grids=[GRID_A])
    worker, chen = platform.client(long_name), workers["chen"]
    people(worker, GRID_A, ["2"])
    task_id = api(platform, chen, "POST", "/tasks", json={**SPEC, "grids": [GRID_A]}).json()[
        "task"
    ]["id"]
    (item,) = pull_everything(worker)["task_items"]
    assert push_results(worker, [result(worker, item["id"], "done")]).status_code == 200
    page = login(platform, "chen").get(f"/console/tasks/{task_id}").text
    label = f'class="lbl"><title>{long_name}</title>{long_name[:15]}…</text>'
    assert label in page
    assert f">{long_name[:16]}<" not in page
