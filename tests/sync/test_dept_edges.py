"""Edges of the department taking, against the real server over loopback HTTP: statistics asked
in ways meant to undo their small-cell rule, and the trace shown on a record page after merges."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote, unquote

import requests

from app.core.forms import FormSet
from app.core.ids import uuid7
from sync.server import admin
from tests.factories import resident
from tests.sync.conftest import COMMUNITY, GRID_A, GRID_B, GRID_C, OTHER_COMMUNITY, Platform
from tests.sync.consolekit import login
from tests.sync.deptkit import DeptApi, expected, make_grant, make_key, seed_department


def _push(platform: Platform, grid: str, seq: int, population_type: str) -> str:
    root = platform.client("root")
    rid = uuid7()
    data = {**resident(grid=grid, seq=seq, population_type=population_type), "_status": "draft"}
    (res,) = root.push([root.op(rid, "create", data)])
    assert res["status"] == "applied", res
    return rid


def test_a_grid_asked_many_times_is_counted_once(platform: Platform) -> None:
    """One 流动 resident among nine in grid A: the cell is under 5 and must stay unpublished,
    however often the department names grid A (200 times would publish 200 × 1 exactly)."""
    seed_department(platform)
    _push(platform, GRID_A, 1, "2")
    for seq in range(3, 19, 2):
        _push(platform, GRID_A, seq, "1")
    _push(platform, GRID_B, 21, "1")
    grant = make_grant(platform, {"resident": {"population_type": "full"}})
    api = DeptApi(platform.url, make_key(platform))

    def table(grids: list[str]) -> dict[str, object]:
        resp = api.get(f"/v1/dept/grants/{grant}/stats", by="population_type", grid=grids)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        return {"rows": {r["value"]: r["count"] for r in body["rows"]}, "total": body["total"]}

    once = table([GRID_A])
    assert once == {"rows": {"1": 10, "2": None}, "total": 10}
    assert table([GRID_A] * 200) == once
    assert table([GRID_A, GRID_B, GRID_A]) == table([GRID_A, GRID_B])


def test_a_record_page_names_the_departments_that_received_a_record_merged_into_it(
    platform: Platform,
) -> None:
    """The department took 张三 of grid B; a supervisor then decides he is the 张三 of grid A
    (the newer record becomes an alias of the older). The resident's page — opened by either
    id — still says the department received him, and not a receiver list of another id."""
    seed_department(platform)
    root = platform.client("root")
    older, newer = uuid7(), uuid7()
    for rid, grid, seq in ((older, GRID_A, 1), (newer, GRID_B, 3)):
        data = {**resident(grid=grid, seq=seq, name="张三"), "_status": "complete"}
        (res,) = root.push([root.op(rid, "create", data)])
        assert res["status"] == "applied", res
    grant = make_grant(platform, grids=(GRID_B,))
    api = DeptApi(platform.url, make_key(platform))
    got, _ = api.export_all(grant)
    assert set(got) == {newer}
    chen = login(platform, "chen")
    reviews = chen.http.get(f"{platform.url}/v1/reviews", headers=_bearer(platform, "chen"))
    [review] = reviews.json()["reviews"]
    assert {review["record_id"], review["other_id"]} == {older, newer}
    resp = chen.post(f"/console/reviews/{review['id']}", {"decision": "same"})
    assert resp.status_code == 303 and "err=" not in resp.headers["location"], resp.text
    for rid in (older, newer):
        page = chen.get(f"/console/records/{rid}")
        assert page.status_code == 200 and f"/console/records/{older}/reveal" in page.text
        assert 'id="receivers"' in page.text and "民政局" in page.text, rid


def _bearer(platform: Platform, username: str) -> dict[str, str]:
    return platform.client(username).headers


def test_the_access_log_holds_no_searched_name_id_number_or_phone(tmp_path: Path) -> None:
    """A real ``server`` process with its access log on (the default): the console's search
    (``/console/records?q=``, ``/v1/console/records?q=``) puts what was searched — a name, an
    ID number, a phone — in the URL; the log line must not repeat it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    db_url = f"sqlite:///{tmp_path / 'p.db'}"
    cmd = [sys.executable, "-m", "sync.server.cli", "server", "--db", db_url, "--port", str(port)]
    root = Path(__file__).parents[2]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=root)
    url = f"http://127.0.0.1:{port}"
    secrets = ["330106198501011234", "13800138000", "张三"]
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                assert requests.get(f"{url}/v1/info", timeout=2).ok
                break
            except requests.ConnectionError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        for value in secrets:
            requests.get(f"{url}/console/records", params={"q": value}, timeout=10)
            requests.get(f"{url}/v1/console/records", params={"q": value}, timeout=10)
    finally:
        proc.terminate()
        logged = proc.communicate(timeout=30)[0].decode(errors="replace")
    assert '"GET /v1/info HTTP/1.1" 200' in logged
    assert "GET /console/records?q=" in logged and "GET /v1/console/records?q=" in logged
    lowered = unquote(logged)
    for value in secrets:
        assert value not in lowered and quote(value) not in logged, value


def test_a_grid_leaving_a_granted_community_voids_the_feed_cursor(
    platform: Platform, formset: FormSet
) -> None:
    """A grant over a community; an admin then moves grid B to another community. Its records
    left the grant without a change of their own (no ``remove`` could come), so the cursor of
    the old places is refused as a narrowed grant's is, and a fresh export leaves them out."""
    seed_department(platform)
    in_a, in_b = _push(platform, GRID_A, 1, "1"), _push(platform, GRID_B, 3, "1")
    grant = make_grant(platform, communities=(COMMUNITY,))
    api = DeptApi(platform.url, make_key(platform))
    have, cursor = api.export_all(grant)
    assert set(have) == {in_a, in_b}
    admin.put_grid(platform.engine, GRID_B, "二网格", OTHER_COMMUNITY)
    resp = api.get(f"/v1/dept/grants/{grant}/feed", cursor=cursor)
    assert (resp.status_code, resp.json()["error"]["code"]) == (409, "grant_changed"), resp.text
    fresh, cursor = api.export_all(grant)
    assert fresh == expected(platform, formset, grant) and set(fresh) == {in_a}
    # the cursor of the new places works, and an unrelated grid change does not void it
    admin.put_grid(platform.engine, GRID_C, "另一网格", OTHER_COMMUNITY)
    assert api.follow(grant, fresh, cursor) and set(fresh) == {in_a}


def test_statistics_refuse_a_field_the_grant_gives_masked_or_not_at_all(
    platform: Platform,
) -> None:
    """Each cell of a count is a real value: by 特殊人群 granted masked, a department would read
    who is what in every grid. Refused naming the field (never a value) and not traced; by a
    field given in clear it counts as before; the console's page offers only those."""
    from sqlalchemy import select

    from sync.server import db

    seed_department(platform)
    root = platform.client("root")
    for seq in range(1, 13, 2):
        rid = uuid7()
        data = {**resident(grid=GRID_A, seq=seq), "special_group": ["01"], "_status": "draft"}
        (res,) = root.push([root.op(rid, "create", data)])
        assert res["status"] == "applied", res
    fields = {"population_type": "full", "special_group": "masked", "id_number": "masked"}
    grant = make_grant(platform, {"resident": fields})
    api = DeptApi(platform.url, make_key(platform))
    for by, label in (
        ("special_group", "特殊人群"),
        ("resident.special_group", "特殊人群"),
        ("left_behind", "留守人员"),  # not granted at all
        ("age_band", "出生日期"),  # banded birth dates: the birth date is not granted
    ):
        resp = api.get(f"/v1/dept/grants/{grant}/stats", by=by)
        assert resp.status_code == 403, (by, resp.text)
        error = resp.json()["error"]
        assert error["code"] == "stats_not_granted" and label in error["message_zh"], error
        assert error["message_en"] and "01" not in error["message_zh"] + error["message_en"]
    with db.read(platform.engine) as conn:
        kinds = conn.execute(select(db.dept_exports.c.kind)).scalars().all()
    assert kinds == []  # nothing was counted, nothing is traced
    resp = api.get(f"/v1/dept/grants/{grant}/stats", by="population_type")
    assert resp.status_code == 200 and resp.json()["total"] == 5, resp.text

    dept = login(platform, "minzheng")
    page = dept.get(f"/console/dept/grants/{grant}/stats?by=grid")
    assert page.status_code == 200
    assert 'value="resident.population_type"' in page.text
    assert "special_group" not in page.text and 'value="age_band"' not in page.text
    page = dept.get(f"/console/dept/grants/{grant}/stats?by=resident.special_group")
    assert page.status_code == 403 and "特殊人群" in page.text

    clear = make_grant(platform, {"resident": {"special_group": "full", "birth_date": "full"}})
    for by in ("special_group", "age_band"):
        resp = api.get(f"/v1/dept/grants/{clear}/stats", by=by)
        assert resp.status_code == 200 and resp.json()["total"] == 5, resp.text
