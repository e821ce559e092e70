"""Tasks end to end with real devices (their own store files, the real client and session) and
the real server over loopback HTTP: a supervisor issues "confirm the phone of every 流动人口 in
building 3" in the console API, two laptops of the grid work on it offline, both sync, the
console's counts follow, the task closes with its last item; a sync killed mid-push loses no
item result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import requests

from app.core import ids
from app.core.forms import FormSet
from app.core.store import Store
from tests.factories import resident
from tests.sync import devicekit
from tests.sync.devicekit import (
    GRID_A,
    GRID_B,
    PASSWORD,
    Device,
    FaultAdapter,
    faulty_session,
    is_push,
    nth,
    server_rows,
)

db_url = devicekit.db_url  # fixture: SQLite (the subject is the device side)
devices = devicekit.devices  # fixture

SPEC = {
    "title": "核实流动人口电话",
    "instruction": "3栋逐户上门，核实并填写联系电话",
    "form": "resident",
    "fields": ["phone"],
    "filter": "人口类型 = 流动人口",
    "grids": [GRID_A],
    "buildings": ["3栋"],
    "due": "2099-12-31",
}


def console(platform: Any, user: str, method: str, path: str, **kw: Any) -> Any:
    """The console JSON API as ``user`` (a supervisor issues and follows tasks there)."""
    client = platform.client(user)
    answer = requests.request(
        method, f"{platform.url}/v1/console{path}", headers=client.headers, timeout=60, **kw
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def _house(dev: Device, building: str, room: str) -> str:
    data = {
        "house_code": f"H-{building}-{room}",
        "address_text": f"幸福路12号{building}{room}室",
        "grid": GRID_A,
        "building": building,
        "room": room,
    }
    return dev.save("house", data).id


def building_three(dev: Device) -> dict[str, str]:
    """Four 流动人口 without a phone in building 3 (rooms 1201, 501, 502, 101), one 户籍 person
    there, and one 流动人口 in building 5: the task must pick exactly the four."""
    rooms = {"r1201": ("3栋", "1201"), "r501": ("3栋", "501"), "r502": ("3栋", "502")}
    rooms |= {"r101": ("3栋", "101"), "local": ("3栋", "101"), "b5": ("5栋", "101")}
    houses: dict[tuple[str, str], str] = {}
    out = {}
    for n, (key, place) in enumerate(rooms.items()):
        if place not in houses:
            houses[place] = _house(dev, *place)
        kind = "1" if key == "local" else "2"
        data = resident(seq=401 + 2 * n, population_type=kind, house_ref=houses[place])
        data.pop("phone")
        out[key] = dev.save("resident", data).id
    return out


def _item_of(dev: Device, task_id: str, record_id: str) -> str:
    return next(i.id for i in dev.store.tasks.items(task_id) if i.record_id == record_id)


def test_two_devices_carry_out_a_task_offline_and_it_closes(devices: Any, platform: Any) -> None:
    a, b = devices(2)  # two laptops of wang, grid A
    people = building_three(a)
    a.sync()
    made = console(platform, "chen", "POST", "/tasks", json=SPEC)
    task_id = made["task"]["id"]
    assert made["items"] == 4

    for dev in (a, b):
        summary = dev.sync()
        assert summary.tasks == 5  # the task and its four items
        [view] = dev.store.tasks.views()
        assert (view.task.title, view.total, view.open) == ("核实流动人口电话", 4, 4)
        walk = [(i.building, i.house) for i in dev.store.tasks.items(task_id)]
        assert walk == [("3栋", f"幸福路12号3栋{r}室") for r in ("101", "501", "502", "1201")]
        assert dev.store.tasks.open_item_count() == 4

    # Offline: a fills in two phones; b cannot find one person, and marks "unable" one that a
    # has just done (done wins on the platform, both results kept).
    a.edit(people["r101"], phone="13900000101")
    a.edit(people["r501"], phone="13900000501")
    assert [v.done for v in a.store.tasks.views()] == [2]
    b.store.tasks.mark_unable(_item_of(b, task_id, people["r502"]), "查无此人", author="b")
    b.store.tasks.mark_unable(_item_of(b, task_id, people["r501"]), "拒绝配合", author="b")
    assert b.store.tasks.open_item_count() == 2

    assert a.sync().task_results == 2
    assert b.sync().task_results == 2
    a.sync()
    follow = console(platform, "chen", "GET", f"/tasks/{task_id}")
    assert follow["counts"] == {"open": 1, "done": 2, "unable": 1}
    assert follow["task"]["state"] == "open"
    for dev in (a, b):
        states = {i.record_id: i.state for i in dev.store.tasks.items(task_id)}
        assert states == {
            people["r101"]: "done",
            people["r501"]: "done",
            people["r502"]: "unable",
            people["r1201"]: "open",
        }
        assert dev.store.tasks.pending_count() == 0
    detail = console(
        platform, "chen", "GET", f"/tasks/{task_id}/items/{_item_of(a, task_id, people['r501'])}"
    )
    assert sorted(r["state"] for r in detail["results"]) == ["done", "done", "unable"]

    # The last item: b confirms the phone it was given; the task closes; a learns it.
    b.edit(people["r1201"], phone="13900001201")
    b.sync()
    a.sync()
    follow = console(platform, "chen", "GET", f"/tasks/{task_id}")
    assert follow["counts"] == {"open": 0, "done": 3, "unable": 1}
    assert follow["task"]["state"] == "closed"
    for dev in (a, b):
        [view] = dev.store.tasks.views()
        assert view.task.state == "closed" and view.open == 0
        assert dev.store.tasks.open_item_count() == 0


def test_a_cancelled_task_leaves_the_devices_list(devices: Any, platform: Any) -> None:
    (a,) = devices(1)
    building_three(a)
    a.sync()
    task_id = console(platform, "chen", "POST", "/tasks", json=SPEC)["task"]["id"]
    a.sync()
    assert a.store.tasks.open_item_count() == 4
    console(platform, "chen", "POST", f"/tasks/{task_id}/cancel")
    a.sync()
    assert a.store.tasks.views() == [] and a.store.tasks.open_item_count() == 0
    assert a.store.tasks.get(task_id).state == "cancelled"


def test_a_lost_push_answer_is_resent_and_counted_once(
    devices: Any, platform: Any, tmp_path: Path, formset: FormSet
) -> None:
    (setup,) = devices(1)
    people = building_three(setup)
    setup.sync()
    task_id = console(platform, "chen", "POST", "/tasks", json=SPEC)["task"]["id"]
    adapter = FaultAdapter(after=nth(is_push, 1))
    (a,) = devices(1, session=faulty_session(adapter))
    a.sync()  # nothing to push yet: the first push is the next run's
    a.store.tasks.mark_unable(_item_of(a, task_id, people["r502"]), "已迁出")
    summary = a.sync()
    assert adapter.lost == [("POST", "/v1/push")]
    assert summary.task_results == 1 and a.store.tasks.pending_count() == 0
    pushed = [r for r in server_rows(platform, "task_results") if r.source == "push"]
    assert len(pushed) == 1  # the resend was a duplicate


def test_a_sync_killed_mid_push_loses_no_item_result(
    devices: Any, platform: Any, tmp_path: Path, formset: FormSet
) -> None:
    """The process dies after the platform answered the push and before the device recorded
    the answer: the results are still queued, the next run sends them again, the platform
    answers ``duplicate``, nothing is counted twice."""
    (setup,) = devices(1)
    people = building_three(setup)
    setup.sync()
    task_id = console(platform, "chen", "POST", "/tasks", json=SPEC)["task"]["id"]
    store_path = tmp_path / "killed.sqlite"
    first = Store(store_path, formset)
    first.close()
    script = textwrap.dedent(
        f"""
        import os
        from app.core.store import Store
        from sync.client import Client
        from sync.replica import identity
        from sync.session import SyncSession
        store = Store({str(store_path)!r})
        client = Client({platform.url!r}, store.device_id,
                        installation=identity.installation(store))
        client.login("wang", {PASSWORD!r})
        SyncSession(store, client).run()
        items = {{i.record_id: i.id for i in store.tasks.items({task_id!r})}}
        store.tasks.mark_unable(items[{people["r502"]!r}], "已迁出", "王五")
        store.tasks.mark_unable(items[{people["r1201"]!r}], "拒绝配合", "王五")
        real = client.push
        def push(*args, **kwargs):
            real(*args, **kwargs)
            os._exit(9)  # killed: the answer came back, nothing of it was recorded
        client.push = push
        SyncSession(store, client).run()
        """
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=120)
    assert proc.returncode == 9, proc.stderr.decode()[-2000:]
    pushed = [r for r in server_rows(platform, "task_results") if r.source == "push"]
    assert len(pushed) == 2  # the platform had applied them

    from sync.client import Client
    from sync.replica import identity
    from sync.session import SyncSession
    from tests.sync.devicekit import no_wait

    store = Store(store_path, formset)
    try:
        assert store.tasks.pending_count() == 2  # kept: no answer was recorded
        client = Client(
            platform.url,
            store.device_id,
            retry=no_wait(),
            installation=identity.installation(store),
        )
        client.login("wang", PASSWORD)
        summary = SyncSession(store, client).run()
        client.close()
        assert summary.task_results == 2 and store.tasks.pending_count() == 0
        states = {i.record_id: (i.state, i.reason) for i in store.tasks.items(task_id)}
        assert states[people["r502"]] == ("unable", "已迁出")
        assert states[people["r1201"]] == ("unable", "拒绝配合")
    finally:
        store.close()
    pushed = [r for r in server_rows(platform, "task_results") if r.source == "push"]
    assert len(pushed) == 2  # the resend changed nothing
    follow = console(platform, "chen", "GET", f"/tasks/{task_id}")
    assert follow["counts"] == {"open": 2, "done": 0, "unable": 2}


def test_results_wait_for_a_platform_that_takes_them(devices: Any, platform: Any) -> None:
    """A platform without the ``tasks`` feature (an older one) is never sent results: they
    stay queued, and go with the first push to a platform that lists the feature."""
    (a,) = devices(1)
    people = building_three(a)
    a.sync()
    task_id = console(platform, "chen", "POST", "/tasks", json=SPEC)["task"]["id"]
    a.sync()
    a.store.tasks.mark_unable(_item_of(a, task_id, people["r101"]), "拒绝配合")
    a.client.info()
    a.client.server_info.features = []  # as an older platform answers /v1/info
    sent: list[Any] = []
    real = a.client.push
    a.client.push = lambda ops, *results: sent.append(results) or real(ops, *results)  # type: ignore[method-assign]
    a.save("resident", resident(seq=499))  # an op, so the run does push
    assert a.sync().task_results == 0
    assert sent == [()] and a.store.tasks.pending_count() == 1
    a.client.info()  # the platform was upgraded
    assert a.sync().task_results == 1 and a.store.tasks.pending_count() == 0


def test_a_grid_taken_away_takes_its_tasks_off_the_device_and_keeps_the_results(
    devices: Any, platform: Any
) -> None:
    """Grid B is taken from wang after their device got its task: wang marks one item done and
    one unable offline, the platform refuses both (403 ``out_of_scope``): they are set aside,
    kept on the device, and the task leaves wang's list (``grids_left``, PROTOCOL.md §13.2),
    grid A's task stays. Given back, the grid brings the task again and the sync that fetches
    it sends the two results again (§11 rule 3a, as for edits): the platform has them."""
    from sync.server import admin

    root = platform.client("root")
    people = []
    for n in range(2):
        rid = ids.uuid7()
        fields = {**resident(seq=501 + 2 * n, grid=GRID_B), "_status": "draft"}
        fields.pop("phone")
        assert root.push([root.op(rid, "create", fields)])[0]["status"] == "applied"
        people.append(rid)
    admin.set_user_grids(platform.engine, "wang", [GRID_A, GRID_B])
    spec = {"title": "核实电话", "form": "resident", "fields": ["phone"], "grids": [GRID_B]}
    task_id = console(platform, "chen", "POST", "/tasks", json=spec)["task"]["id"]
    collect = {"kind": "collect", "title": "新增", "form": "resident", "grids": [GRID_A]}
    kept_id = console(platform, "chen", "POST", "/tasks", json=collect)["task"]["id"]
    (a,) = devices(1)
    a.sync()
    assert {i.state for i in a.store.tasks.items(task_id)} == {"open"}
    admin.set_user_grids(platform.engine, "wang", [GRID_A])
    a.store.tasks.mark_done(_item_of(a, task_id, people[0]), author="王五")
    a.store.tasks.mark_unable(_item_of(a, task_id, people[1]), "查无此人", author="王五")

    a.sync()

    assert [code for _op, _item, code in _aside(a)] == ["out_of_scope", "out_of_scope"]
    assert [v.task.id for v in a.store.tasks.views()] == [kept_id]
    assert a.store.tasks.get(task_id) is None and a.store.tasks.items(task_id) == []
    assert a.store.tasks.open_item_count() == 0

    admin.set_user_grids(platform.engine, "wang", [GRID_A, GRID_B])
    summary = a.sync()
    assert summary.requeued == 2 and summary.task_results == 2
    assert _aside(a) == [] and a.store.tasks.pending_count() == 0
    shown = {i.record_id: (i.state, i.pending) for i in a.store.tasks.items(task_id)}
    assert shown == {people[0]: ("done", False), people[1]: ("unable", False)}
    follow = console(platform, "chen", "GET", f"/tasks/{task_id}")
    assert follow["counts"] == {"open": 0, "done": 1, "unable": 1}


def _aside(dev: Device) -> list[tuple[str, str, str]]:
    import json

    return [
        (op_id, item_id, json.loads(reason)["code"])
        for op_id, item_id, reason in dev.store.tasks.set_aside_results()
    ]


def test_a_result_resent_by_a_copy_of_the_data_dir_is_kept_once(
    devices: Any, platform: Any, tmp_path: Path, formset: FormSet, monkeypatch: Any
) -> None:
    """The platform applied a result but the device never recorded the answer; the data dir is
    then copied to another laptop (a new device at login) and both sync: the copy sends the
    same result again under its new device id, and the platform answers ``duplicate`` as it
    does for ops a copy sends again (one result in the item's history, not two)."""
    import shutil

    from sync import replica
    from tests.sync.devicekit import make_device

    (setup,) = devices(1)
    people = building_three(setup)
    setup.sync()
    task_id = console(platform, "chen", "POST", "/tasks", json=SPEC)["task"]["id"]
    origin = make_device(platform.url, tmp_path, formset, name="origin")
    origin.sync()
    origin.store.tasks.mark_unable(_item_of(origin, task_id, people["r502"]), "已迁出", "王五")

    def lost(*_args: Any) -> int:
        raise ConnectionError("the answer was lost")

    with monkeypatch.context() as patched:
        patched.setattr(replica, "record_task_answers", lost)
        with pytest.raises(ConnectionError):
            origin.sync()
    assert origin.store.tasks.pending_count() == 1
    pushed = [r for r in server_rows(platform, "task_results") if r.source == "push"]
    assert len(pushed) == 1  # applied on the platform
    origin.close()
    shutil.copyfile(origin.store.path, tmp_path / "copy.sqlite")
    copy = make_device(platform.url, tmp_path, formset, name="copy")
    origin = make_device(platform.url, tmp_path, formset, name="origin")
    try:
        assert copy.sync().task_results == 1
        assert origin.sync().task_results == 1
        assert copy.store.device_id != origin.store.device_id  # the copy is a device of its own
        for dev in (copy, origin):
            assert dev.store.tasks.pending_count() == 0
    finally:
        copy.close()
        origin.close()
    pushed = [r for r in server_rows(platform, "task_results") if r.source == "push"]
    assert len(pushed) == 1, [(r.device_id, r.op_id) for r in pushed]
    detail = console(platform, "chen", "GET", f"/tasks/{task_id}/items/{pushed[0].item_id}")
    assert [r["reason"] for r in detail["results"]] == ["已迁出"]


def _listed(dev: Device) -> list[str]:
    return [v.task.id for v in dev.store.tasks.views()]


def test_a_task_follows_its_assignees_on_the_devices_of_the_grid(
    devices: Any, platform: Any
) -> None:
    """wang and sun both work grid A. A task naming nobody reaches both; named to wang, it
    leaves sun's list (sun's result recorded offline is still sent and kept on the platform);
    named to nobody again, it comes back to sun with its items (PROTOCOL.md §13.2)."""
    from sync.server import admin

    admin.put_user(platform.engine, "sun", PASSWORD, "worker", grids=[GRID_A])
    (a,) = devices(1)
    (s,) = devices(1, user="sun")
    people = building_three(a)
    a.sync()
    task_id = console(platform, "chen", "POST", "/tasks", json=SPEC)["task"]["id"]
    for dev in (a, s):
        dev.sync()
        assert _listed(dev) == [task_id] and dev.store.tasks.open_item_count() == 4
    s.store.tasks.mark_unable(_item_of(s, task_id, people["r502"]), "查无此人", author="孙")

    console(platform, "chen", "PATCH", f"/tasks/{task_id}", json={"assignees": ["wang"]})
    assert s.sync().task_results == 1  # sent, not lost
    assert _listed(s) == [] and s.store.tasks.open_item_count() == 0
    assert s.store.tasks.items(task_id) == [] and s.store.tasks.pending_count() == 0
    a.sync()
    assert _listed(a) == [task_id]
    assert {i.record_id: i.state for i in a.store.tasks.items(task_id)}[people["r502"]] == "unable"

    console(platform, "chen", "PATCH", f"/tasks/{task_id}", json={"assignees": []})
    s.sync()
    assert _listed(s) == [task_id]
    states = {i.record_id: i.state for i in s.store.tasks.items(task_id)}
    assert len(states) == 4 and states[people["r502"]] == "unable"


def test_a_task_named_to_another_worker_later_reaches_one_named_afterwards(
    devices: Any, platform: Any
) -> None:
    """Named to wang when issued, sun's device gets nothing; named to sun too afterwards,
    sun's next sync brings the task with every item (the items were numbered before)."""
    from sync.server import admin

    admin.put_user(platform.engine, "sun", PASSWORD, "worker", grids=[GRID_A])
    (a,) = devices(1)
    (s,) = devices(1, user="sun")
    building_three(a)
    a.sync()
    spec = {**SPEC, "assignees": ["wang"]}
    task_id = console(platform, "chen", "POST", "/tasks", json=spec)["task"]["id"]
    s.sync()
    assert _listed(s) == [] and s.store.tasks.items(task_id) == []
    console(platform, "chen", "PATCH", f"/tasks/{task_id}", json={"assignees": ["wang", "sun"]})
    s.sync()
    assert _listed(s) == [task_id] and s.store.tasks.open_item_count() == 4


def _task_cli(db_url: str, *argv: str, lang: str = "zh") -> subprocess.CompletedProcess[str]:
    """``gridcollect server-admin task …`` in its own process, on the platform's database."""
    cmd = [sys.executable, "-m", "sync.server.cli", "--lang", lang, "server-admin", "task"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    return subprocess.run(
        [*cmd, *argv, "--db", db_url, "--as", "chen"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=Path(__file__).parents[2],
    )


def test_a_task_the_cli_assigns_reaches_the_assignees_device_and_not_another_workers(
    devices: Any, platform: Any, db_url: str
) -> None:
    """``server-admin task create --assignee sun`` (a process of its own on the platform's
    database): sun's laptop gets the task and its items, wang's laptop of the same grid gets
    nothing; ``task assign`` to wang moves it from sun's laptop to wang's at their next sync
    (PROTOCOL.md §13.2). Refused names say why, in the CLI's language, and store nothing."""
    from sync.server import admin

    admin.put_user(platform.engine, "sun", PASSWORD, "worker", grids=[GRID_A])
    (a,) = devices(1)
    (s,) = devices(1, user="sun")
    building_three(a)
    a.sync()
    base = ["create", "--title", "核实流动人口电话", "--field", "phone", "--grid", GRID_A]
    base += ["--filter", "人口类型 = 流动人口", "--json"]
    refused = _task_cli(db_url, *base, "--assignee", "sun", "--assignee", "li")
    assert refused.returncode == 2 and "网格员 li 不负责本任务的任何网格" in refused.stderr
    refused = _task_cli(db_url, *base, "--assignee", "chen", lang="en")
    assert refused.returncode == 2
    assert "chen is not an active grid worker account" in refused.stderr
    assert console(platform, "chen", "GET", "/tasks")["tasks"] == []

    made = _task_cli(db_url, *base, "--assignee", "sun")
    assert made.returncode == 0, made.stderr
    task = json.loads(made.stdout)["task"]
    assert task["assignees"] == ["sun"]
    for dev in (a, s):
        dev.sync()
    assert _listed(s) == [task["id"]] and s.store.tasks.open_item_count() == 5
    assert _listed(a) == [] and a.store.tasks.items(task["id"]) == []

    moved = _task_cli(db_url, "assign", task["id"], "--assignee", "wang")
    assert moved.returncode == 0, moved.stderr
    assert "assignees wang" in moved.stdout
    for dev in (a, s):
        dev.sync()
    assert _listed(s) == [] and s.store.tasks.items(task["id"]) == []
    assert _listed(a) == [task["id"]] and a.store.tasks.open_item_count() == 5


def _items_by_grid(dev: Device) -> dict[str, set[str]]:
    """The tasks the device holds items of, per grid (the items' own grid)."""
    out: dict[str, set[str]] = {}
    for grid, task_id in dev.store.conn.execute("SELECT grid, task_id FROM task_items"):
        out.setdefault(grid, set()).add(task_id)
    return out


def test_a_supervisors_device_drops_the_tasks_of_a_grid_moved_out_of_the_community(
    devices: Any, platform: Any
) -> None:
    """chen's laptop holds a task over grids A and B and one over B alone. B moves to another
    community: at chen's next sync the task of B alone leaves the laptop and the other keeps
    only A's items (as a worker's laptop does when B is taken from the worker: PROTOCOL.md
    §8 ``grids_left``, §13.2). Moved back, B's task and items return."""
    from sync.server import admin
    from tests.sync.conftest import OTHER_COMMUNITY
    from tests.sync.test_platform_tasks import people

    (a,) = devices(1)
    (c,) = devices(1, user="chen")
    building_three(a)
    a.sync()
    people(platform.client("li"), GRID_B, ["2"])
    spec = {**SPEC, "buildings": [], "grids": [GRID_A, GRID_B]}
    both = console(platform, "chen", "POST", "/tasks", json=spec)["task"]["id"]
    only_b = console(platform, "chen", "POST", "/tasks", json={**spec, "grids": [GRID_B]})
    only_b_id = only_b["task"]["id"]
    c.sync()
    assert _items_by_grid(c) == {GRID_A: {both}, GRID_B: {both, only_b_id}}

    admin.put_grid(platform.engine, GRID_B, "二网格", OTHER_COMMUNITY)
    c.sync()
    assert _listed(c) == [both]
    assert _items_by_grid(c) == {GRID_A: {both}}

    admin.put_grid(platform.engine, GRID_B, "二网格", "330106001")
    c.sync()
    assert _items_by_grid(c) == {GRID_A: {both}, GRID_B: {both, only_b_id}}


def test_a_workers_device_drops_the_tasks_of_grids_lost_by_becoming_a_supervisor(
    devices: Any, platform: Any
) -> None:
    """wang (grid A) becomes the supervisor of the other community: grid A is no longer in
    their scope, so their laptop drops A's task at the next sync, as when A is taken from a
    worker."""
    from sync.server import admin
    from tests.sync.conftest import OTHER_COMMUNITY

    (a,) = devices(1)
    building_three(a)
    a.sync()
    task_id = console(platform, "chen", "POST", "/tasks", json=SPEC)["task"]["id"]
    a.sync()
    assert _listed(a) == [task_id]

    admin.put_user(platform.engine, "wang", PASSWORD, "supervisor", community=OTHER_COMMUNITY)
    a.client.login("wang", PASSWORD)
    a.sync()
    assert _listed(a) == [] and a.store.tasks.items(task_id) == []


def test_assignee_names_over_the_limits_are_refused_not_a_server_error(
    platform: Any, db_url: str
) -> None:
    """A name longer than an account name may be (forged into the console's form, or typed to
    ``task assign``), or more names than a task takes: the console page says what is wrong
    (422) and the CLI exits 2 with the reason, as ``task create`` does; nothing changes.
    (Both raised the request model's error: 500 and a traceback.)"""
    from tests.sync.consolekit import login

    task = console(platform, "chen", "POST", "/tasks", json={**SPEC, "assignees": ["wang"]})
    task_id = task["task"]["id"]
    chen = login(platform, "chen")
    for names in (["x" * 101], [f"w{n}" for n in range(201)]):
        resp = chen.post(f"/console/tasks/{task_id}/assignees", {"assignees": names})
        assert resp.status_code == 422, resp.text[:300]
        assert 'role="alert"' in resp.text
    done = _task_cli(db_url, "assign", task_id, "--assignee", "x" * 101, lang="en")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "cannot assign the task" in done.stderr, done.stderr
    shown = console(platform, "chen", "GET", f"/tasks/{task_id}")
    assert shown["task"]["assignees"] == ["wang"]
