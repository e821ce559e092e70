"""The platform console over the real server on loopback HTTP, on SQLite and PostgreSQL: every
page renders for every role, scope holds by URL and by tampered forms (404, never 403), CSRF,
sessions shared by two server processes and kept over a restart, console actions reach devices
through pull, and every action leaves an audit row without personal values."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from app.core.forms import FormSet
from sync.server import db
from sync.server.app import create_app
from tests.sync.conftest import (
    GRID_A,
    GRID_B,
    GRID_C,
    OTHER_COMMUNITY,
    PASSWORD,
    Client,
    Platform,
    start_server,
)
from tests.sync.consolekit import Browser, Seeded, login, seed_console, stored

PAGES = ("overview", "conflicts", "reviews", "records?q=zs", "people", "grids", "audit")


@pytest.fixture
def seeded(platform: Platform) -> Seeded:
    return seed_console(platform)


def audit_rows(platform: Platform) -> list[Any]:
    with platform.engine.connect() as conn:
        return conn.execute(select(db.audit_log).order_by(db.audit_log.c.id)).all()


@pytest.mark.parametrize("username", ["wang", "chen", "root"])
def test_every_page_renders_for_every_role(
    platform: Platform, seeded: Seeded, username: str
) -> None:
    browser = login(platform, username)
    for page in PAGES:
        resp = browser.get(f"/console/{page}")
        if username == "wang" and page in ("reviews", "audit"):
            assert resp.status_code == 403, page
            continue
        assert resp.status_code == 200, (page, resp.text[:500])
        assert "<html" in resp.text and "网格采集平台" in resp.text
    rec = browser.get(f"/console/records/{seeded.conflict_a}")
    assert rec.status_code == 200 and "版本历史" in rec.text
    english = browser.get("/console/overview?lang=en")
    assert "Overview" in english.text and english.cookies.get("lang") == "en"
    assert "Overview" in browser.get("/console/conflicts").text  # the cookie keeps it


def test_not_logged_in_goes_to_the_login_page(platform: Platform) -> None:
    resp = requests.get(f"{platform.url}/console/overview", allow_redirects=False, timeout=30)
    assert resp.status_code == 303 and resp.headers["location"].startswith("/console/login")
    bad = Browser(platform.url).login("chen", "wrong password")
    assert bad.status_code == 401 and "用户名或密码错误" in bad.text


def test_session_cookie_flags(platform: Platform) -> None:
    browser = Browser(platform.url)
    plain_login = browser.login("chen")
    cookie = plain_login.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    https = {"X-Forwarded-Proto": "https"}  # TLS ends at the proxy in front
    page = requests.get(f"{platform.url}/console/login", headers=https, timeout=30)
    assert "Secure" in page.headers["set-cookie"]
    token = page.cookies["gc_login_csrf"]  # a browser would send it back over https only
    resp = requests.post(
        f"{platform.url}/console/login",
        data={"username": "chen", "password": PASSWORD, "csrf": token},
        headers={**https, "Cookie": f"gc_login_csrf={token}"},
        allow_redirects=False,
        timeout=30,
    )
    assert resp.status_code == 303 and "Secure" in resp.headers["set-cookie"]


def test_overview_counts_what_is_in_scope(platform: Platform, seeded: Seeded) -> None:
    chen = platform.client("chen")
    overview = requests.get(
        f"{platform.url}/v1/console/overview", headers=chen.headers, timeout=30
    ).json()
    codes = {g["code"] for g in overview["grids"]}
    assert codes == {GRID_A, GRID_B}  # chen's community only
    a = next(g for g in overview["grids"] if g["code"] == GRID_A)
    assert a["stats"]["conflicts"] == 1 and a["stats"]["total"] == 2
    assert a["stats"]["forms"]["resident"]["complete"] == 2
    assert overview["open_reviews"] == 1
    (set_aside,) = overview["quarantine"]
    assert set_aside["code"] == "invalid" and set_aside["fields"] == ["name"]
    assert any(d["username"] == "wang" and d["last_push"] for d in overview["devices"])


def test_a_grid_b_worker_gets_404_for_a_grid_a_record(platform: Platform, seeded: Seeded) -> None:
    li = login(platform, "li")  # worker of grid B
    assert li.get(f"/console/records/{seeded.conflict_a}").status_code == 404
    assert li.get(f"/console/overview?grid={GRID_A}").status_code == 404
    wang = login(platform, "wang")  # worker of grid A: sees it, read-only
    assert wang.get(f"/console/records/{seeded.conflict_a}").status_code == 200
    before = stored(platform)
    resp = wang.post(
        f"/console/conflicts/{seeded.conflict_a}", {"version": 3, "choice:phone": "server"}
    )
    assert resp.status_code == 403 and stored(platform) == before
    assert li.get("/console/records?q=zs").text.count("/console/records/0") == 0


def test_a_supervisor_cannot_reach_another_community(platform: Platform, seeded: Seeded) -> None:
    chen = login(platform, "chen")  # supervisor of COMMUNITY (grids A, B)
    assert chen.get(f"/console/overview?community={OTHER_COMMUNITY}").status_code == 404
    assert chen.get(f"/console/overview?grid={GRID_C}").status_code == 404
    assert chen.get(f"/console/conflicts?grid={GRID_C}").status_code == 404
    assert chen.get(f"/console/records/{seeded.conflict_c}").status_code == 404
    page = chen.get("/console/overview").text
    assert GRID_C not in page and GRID_A in page
    assert seeded.conflict_c not in chen.get("/console/conflicts").text
    before = stored(platform)
    tampered = [  # forms of chen's own pages, pointed at community Y's record, grid and users
        (f"/console/conflicts/{seeded.conflict_c}", {"version": 3, "choice:phone": "server"}),
        (f"/console/records/{seeded.conflict_c}/reveal", {"field": "phone"}),
        ("/console/people/zhao/disable", {"disabled": "1"}),
        ("/console/people/zhao/password", {"password": "a new password 1"}),
        ("/console/people/zhao/revoke", {"device_id": "x"}),
        ("/console/grids", {"code": GRID_C, "name": "renamed", "community": OTHER_COMMUNITY}),
        (f"/console/grids/{GRID_C}/boundary", {"geojson": json.dumps(_square())}),
    ]
    for path, data in tampered:
        resp = chen.post(path, data)
        assert resp.status_code == 404, (path, resp.status_code, resp.text[:300])
    assert stored(platform) == before


def test_a_form_posted_without_its_csrf_token_changes_nothing(
    platform: Platform, seeded: Seeded
) -> None:
    chen, root = login(platform, "chen"), login(platform, "root")
    someone_elses = root.csrf()
    before = stored(platform)
    path, data = f"/console/conflicts/{seeded.conflict_a}", {"version": 3, "choice:phone": "server"}
    for bad in ({}, {"csrf": "0" * 64}, {"csrf": someone_elses}):
        resp = chen.http.post(platform.url + path, data={**data, **bad}, allow_redirects=False)
        assert resp.status_code == 403 and "表单已过期" in resp.text
    assert (
        chen.post("/console/people/wang/disable", {"disabled": "1"}, token=False).status_code == 403
    )
    assert chen.post("/console/logout", token=False).status_code == 403
    assert stored(platform) == before
    assert chen.get("/console/overview").status_code == 200  # still logged in


def test_resolving_in_the_console_reaches_devices_on_their_next_pull(
    platform: Platform, seeded: Seeded
) -> None:
    chen = login(platform, "chen")
    device = platform.client("wang")
    _, cursor = device.pull_all()
    version = device.record(seeded.conflict_a).json()["version"]
    resp = chen.post(
        f"/console/conflicts/{seeded.conflict_a}",
        {"version": version, "choice:phone": "typed", "value:phone": "13600136000"},
    )
    assert resp.status_code == 303 and "ok=resolved" in resp.headers["location"]
    (pulled,) = device.pull(cursor)["records"]
    assert pulled["conflict"] is None and pulled["data"]["phone"] == "13600136000"
    assert "没有待处理的冲突" in chen.get("/console/conflicts").text
    stale = chen.post(
        f"/console/conflicts/{seeded.conflict_a}", {"version": version, "choice:phone": "server"}
    )
    assert "err=" in stale.headers["location"]  # nothing left to resolve: a message, no change
    row = audit_rows(platform)[-1]
    assert (row.action, row.target, json.loads(row.fields)) == (
        "resolve",
        seeded.conflict_a,
        ["phone"],
    )
    assert "13600136000" not in repr(audit_rows(platform))


def test_a_duplicate_review_is_decided_in_the_browser(platform: Platform, seeded: Seeded) -> None:
    chen = login(platform, "chen")
    page = chen.get("/console/reviews").text
    assert f"review-{seeded.review}" in page
    # the reason in words and the grid by name (they showed as same_pinyin_birth and a code)
    heading = page[page.index(f'id="review-{seeded.review}"') :].split("</h2>")[0]
    assert "拼音和出生日期相同" in heading and "一网格" in heading, heading
    assert GRID_A not in heading.replace(f'title="{GRID_A}"', "")
    english = chen.get("/console/reviews?lang=en").text
    assert "same pinyin and birth date" in english
    resp = chen.post(f"/console/reviews/{seeded.review}", {"decision": "different"})
    assert resp.status_code == 303 and "ok=decided" in resp.headers["location"]
    assert f"review-{seeded.review}" not in chen.get("/console/reviews").text
    assert audit_rows(platform)[-1].action == "review"
    root = platform.client("root")
    listed = requests.get(
        f"{platform.url}/v1/console/audit", headers=root.headers, timeout=30
    ).json()["rows"]
    assert [r["target"] for r in listed if r["action"] == "review"] == [
        f"review:{seeded.review}=different"
    ]  # once, with the console's address, though review_audit holds it too
    assert next(r for r in listed if r["action"] == "review")["ip"] == "127.0.0.1"


def test_search_finds_by_name_initials_tail_and_address(platform: Platform, seeded: Seeded) -> None:
    chen = platform.client("chen")

    def found(q: str) -> set[str]:
        resp = requests.get(
            f"{platform.url}/v1/console/records", params={"q": q}, headers=chen.headers, timeout=30
        )
        assert resp.status_code == 200, resp.text
        return {r["id"] for r in resp.json()["records"]}

    assert seeded.conflict_a in found("张三")
    assert seeded.conflict_a in found("zs")
    assert seeded.conflict_a in found("7000")  # the phone's tail (the provisional value)
    assert seeded.conflict_a in found("幸福路12号")
    assert seeded.conflict_c not in found("zs")  # another community's 张三
    assert found("nobody-here") == set()


def test_sensitive_values_are_masked_and_a_reveal_is_audited(
    platform: Platform, seeded: Seeded
) -> None:
    chen = login(platform, "chen")
    page = chen.get(f"/console/records/{seeded.conflict_a}").text
    assert "13700137000" not in page and "137****7000" in page
    shown = chen.post(f"/console/records/{seeded.conflict_a}/reveal", {"field": "phone"})
    assert shown.status_code == 200 and 'id="revealed-value">13700137000<' in shown.text
    row = audit_rows(platform)[-1]
    assert (row.username, row.action, row.target) == ("chen", "reveal", seeded.conflict_a)
    assert json.loads(row.fields) == ["phone"] and row.ip == "127.0.0.1"
    assert (
        chen.post(f"/console/records/{seeded.conflict_a}/reveal", {"field": "name"}).status_code
        == 422
    )


def test_values_that_give_a_masked_id_number_back_are_reduced_and_revealed_audited(
    platform: Platform, seeded: Seeded
) -> None:
    """Beside a masked ID number the record page shows the birth date's year and the area's
    province only (issue 15: with both in clear ~9 numbers fit); "show" reveals, audited."""
    chen = login(platform, "chen")
    page = chen.get(f"/console/records/{seeded.conflict_a}").text
    assert "1985-06-15" not in page and "1985-**-**" in page
    assert "(330106)" not in page and "浙江省****" in page  # 户籍地 / 现住地: province only
    shown = chen.post(f"/console/records/{seeded.conflict_a}/reveal", {"field": "birth_date"})
    assert shown.status_code == 200 and 'id="revealed-value">1985-06-15<' in shown.text
    row = audit_rows(platform)[-1]
    assert (row.action, json.loads(row.fields)) == ("reveal", ["birth_date"])
    area = chen.post(f"/console/records/{seeded.conflict_a}/reveal", {"field": "hukou_region"})
    assert area.status_code == 200 and ">330106<" in area.text


def test_users_and_devices(platform: Platform) -> None:
    chen = login(platform, "chen")
    device = platform.client("wang", device_id="tablet-1")
    assert "tablet-1" in chen.get("/console/people").text
    chen.post("/console/people/wang/revoke", {"device_id": "tablet-1"})
    assert device.record("00000000-0000-0000-0000-000000000000").status_code == 401
    wang_console = login(platform, "wang")
    chen.post("/console/people/wang/password", {"password": "a brand new secret"})
    assert wang_console.get("/console/overview", allow_redirects=False).status_code == 303
    assert Browser(platform.url).login("wang").status_code == 401
    assert Browser(platform.url).login("wang", "a brand new secret").status_code == 303
    chen.post("/console/people/wang/disable", {"disabled": "1"})
    assert Browser(platform.url).login("wang", "a brand new secret").status_code == 401
    chen.post("/console/people/wang/disable", {"disabled": "0"})
    assert Browser(platform.url).login("wang", "a brand new secret").status_code == 303
    actions = [r.action for r in audit_rows(platform) if r.username == "chen"]
    assert actions[-4:] == ["revoke_device", "reset_password", "disable_user", "enable_user"]
    assert "a brand new secret" not in repr(audit_rows(platform))
    assert chen.post("/console/people/root/disable", {"disabled": "1"}).status_code == 404
    weak = chen.post("/console/people/li/password", {"password": "short"})
    assert "err=weak_password" in weak.headers["location"]


def test_a_supervisor_adds_a_grid_worker_who_then_syncs(platform: Platform) -> None:
    chen = login(platform, "chen")
    page = chen.get("/console/people").text
    assert 'id="add-worker"' in page and GRID_A in page and GRID_C not in page
    added = chen.post(
        "/console/people",
        {"username": "sun", "password": "first day 2026", "grids": [GRID_A, GRID_B]},
    )
    assert "ok=worker_added" in added.headers["location"]
    sun = Client(platform.url, "laptop-sun")
    assert sun.login("sun", "first day 2026").status_code == 200
    assert sun.pull(0, 10)["cursor"] >= 0  # the new worker logs in and syncs
    assert "sun" in chen.get("/console/people").text
    assert [r.target for r in audit_rows(platform) if r.action == "add_user"] == ["sun"]
    assert "first day 2026" not in repr(audit_rows(platform))
    # never replaces an account, never reaches another community, says what to fix
    for data, code in [
        ({"username": "wang", "password": "first day 2026", "grids": [GRID_A]}, "user_exists"),
        ({"username": "zhou", "password": "first day 2026", "grids": [GRID_C]}, "unknown_grid"),
        ({"username": "zhou", "password": "short", "grids": [GRID_A]}, "weak_password"),
        ({"username": "周", "password": "first day 2026", "grids": [GRID_A]}, "bad_username"),
        ({"username": "zhou", "password": "first day 2026"}, "no_grid"),
    ]:
        refused = chen.post("/console/people", data)
        assert f"err={code}" in refused.headers["location"], (data, refused.headers)
    assert Browser(platform.url).login("wang").status_code == 303  # wang's password unchanged
    assert Browser(platform.url).login("zhou", "first day 2026").status_code == 401
    shown = chen.get(refused.headers["location"].replace(platform.url, ""))
    assert "请至少选择一个网格" in shown.text
    # the same through the API, which a worker may not call
    api = requests.Session()
    token = platform.client("chen").headers
    made = api.post(
        f"{platform.url}/v1/console/users",
        json={"username": "zhou", "password": "first day 2026", "grids": [GRID_B]},
        headers=token,
        timeout=30,
    )
    assert made.status_code == 201, made.text
    again = api.post(
        f"{platform.url}/v1/console/users",
        json={"username": "zhou", "password": "first day 2026", "grids": [GRID_B]},
        headers=token,
        timeout=30,
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "user_exists"
    worker = platform.client("wang").headers
    denied = api.post(
        f"{platform.url}/v1/console/users",
        json={"username": "qian", "password": "first day 2026", "grids": [GRID_A]},
        headers=worker,
        timeout=30,
    )
    assert denied.status_code == 403


def _square() -> dict[str, Any]:
    ring = [[120.10, 30.27], [120.11, 30.27], [120.11, 30.28], [120.10, 30.28], [120.10, 30.27]]
    return {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]}}


def test_grids_are_created_renamed_and_given_a_boundary(platform: Platform) -> None:
    chen = login(platform, "chen")
    resp = chen.post(
        "/console/grids", {"code": "330106001001-03", "name": "三网格", "community": "330106001"}
    )
    assert "ok=done" in resp.headers["location"]
    chen.post("/console/grids", {"code": GRID_B, "name": "二网格（新）", "community": "330106001"})
    files = {"file": ("b.geojson", json.dumps(_square()).encode(), "application/geo+json")}
    chen.post(f"/console/grids/{GRID_B}/boundary", files=files)
    with platform.engine.connect() as conn:
        g = db.grids.c
        rows = {r.code: r for r in conn.execute(select(db.grids))}
    assert rows["330106001001-03"].name == "三网格" and rows[GRID_B].name == "二网格（新）"
    assert json.loads(rows[GRID_B].polygon) == _square()["geometry"]["coordinates"][0][:4]
    assert g is not None
    before = stored(platform)
    bad = chen.post(f"/console/grids/{GRID_B}/boundary", {"geojson": '{"type": "Point"}'})
    assert "err=bad_boundary" in bad.headers["location"] and stored(platform) == before
    page = chen.get("/console/grids?err=bad_boundary").text
    assert "不是有效的 GeoJSON 多边形" in page
    assert [r.action for r in audit_rows(platform)][-3:] == [
        "grid_save",
        "grid_save",
        "grid_boundary",
    ]


def test_sessions_survive_a_restart_and_work_across_two_servers(
    platform: Platform, db_url: str, formset: FormSet
) -> None:
    chen = login(platform, "chen")
    token = chen.csrf()
    second = create_app(db_url, forms=formset, secret="test-secret")  # another process's app
    server, thread, url = start_server(second)
    try:
        other = Browser(url)
        other.http.cookies.update(chen.http.cookies)
        assert other.get("/console/overview").status_code == 200
        assert other.csrf() == token  # the same session, whichever process answers
        resp = other.post("/console/people/li/disable", {"disabled": "1"})
        assert "ok=done" in resp.headers["location"]
        platform.server.should_exit = True  # the first process goes away: a restart
        logout = other.post("/console/logout")
        assert logout.status_code == 303
    finally:
        server.should_exit = True
        thread.join(30)
        second.state.engine.dispose()
    third = create_app(db_url, forms=formset, secret="test-secret")
    server, thread, url = start_server(third)
    try:
        again = Browser(url)
        again.http.cookies.update(chen.http.cookies)
        assert again.get("/console/overview", allow_redirects=False).status_code == 303
        fresh = Browser(url)
        assert fresh.login("chen").status_code == 303
        restarted = create_app(db_url, forms=formset, secret="test-secret")
        s2, t2, url2 = start_server(restarted)
        try:
            later = Browser(url2)
            later.http.cookies.update(fresh.http.cookies)
            assert later.get("/console/overview").status_code == 200
        finally:
            s2.should_exit = True
            t2.join(30)
            restarted.state.engine.dispose()
    finally:
        server.should_exit = True
        thread.join(30)
        third.state.engine.dispose()


def test_the_console_api_is_in_the_openapi_schema(platform: Platform) -> None:
    paths = requests.get(f"{platform.url}/openapi.json", timeout=30).json()["paths"]
    console = sorted(p for p in paths if p.startswith("/v1/console"))
    tasks = [p for p in console if p.startswith("/v1/console/tasks")]
    assert "/v1/console/users/{username}/grids" in console
    assert "/v1/console/conflicts/{record_id}" in console and len(console) - len(tasks) == 17
    assert "/v1/console/tasks/{task_id}/items/{item_id}" in tasks and len(tasks) == 9
    assert not any(p.startswith("/console") for p in paths)


def test_the_api_needs_a_login_and_keeps_scope(platform: Platform, seeded: Seeded) -> None:
    assert requests.get(f"{platform.url}/v1/console/overview", timeout=30).status_code == 401
    li = platform.client("li")
    resp = requests.get(
        f"{platform.url}/v1/console/records/{seeded.conflict_a}", headers=li.headers, timeout=30
    )
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"
    assert GRID_B in {
        g["code"]
        for g in requests.get(
            f"{platform.url}/v1/console/grids", headers=li.headers, timeout=30
        ).json()["grids"]
    }


def test_static_css_is_served_locally(platform: Platform) -> None:
    css = requests.get(f"{platform.url}/console/static/console.css", timeout=30)
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert requests.get(f"{platform.url}/console/static/../app.py", timeout=30).status_code == 404
    page = login(platform, "chen").get("/console/overview").text
    assert "http://" not in page and "https://" not in page  # nothing from the internet


def test_the_audit_command_prints_the_log(
    platform: Platform, seeded: Seeded, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from sync.server import cli

    chen = login(platform, "chen")
    chen.post(f"/console/records/{seeded.conflict_a}/reveal", {"field": "id_number"})
    capsys.readouterr()
    assert cli.main(["server-admin", "audit", "--db", db_url, "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["username"], r["action"]) for r in lines] == [("chen", "login"), ("chen", "reveal")]
    assert lines[1]["target"] == seeded.conflict_a and lines[1]["fields"] == ["id_number"]
    assert cli.main(["server-admin", "audit", "--db", db_url, "--since", "2999-01-01"]) == 0
    assert capsys.readouterr().out == ""
    assert cli.main(["server-admin", "audit", "--db", db_url]) == 0
    assert "\tchen\t127.0.0.1\treveal\t" in capsys.readouterr().out
    assert cli.main(["--lang", "en", "server-admin", "audit", "--db", db_url, "--since", "x"]) == 2
    assert "--since must be a date" in capsys.readouterr().err


def test_load_demo_fills_an_empty_platform_for_the_console(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from sync.server import cli

    url = f"sqlite:///{tmp_path / 'demo.db'}"
    monkeypatch.setenv("GRIDCOLLECT_PASSWORD", "demo password")
    assert (
        cli.main(["--lang", "en", "server-admin", "load-demo", "--db", url, "--size", "200"]) == 0
    )
    assert "sup-330106090001" in capsys.readouterr().out
    assert cli.main(["--lang", "en", "server-admin", "load-demo", "--db", url]) == 2
    assert "already holds records" in capsys.readouterr().err
    engine = db.make_engine(url)
    with engine.connect() as conn:
        grids = conn.execute(select(db.grids.c.polygon)).scalars().all()
        assert grids and all(len(json.loads(p)) >= 3 for p in grids)
        assert conn.execute(select(db.records.c.id)).first() is not None
    engine.dispose()


def test_overview_counts_follow_every_change_and_match_a_recount(
    platform: Platform, seeded: Seeded
) -> None:
    """The per-grid summaries are reused between overviews: a create, a move to another grid
    and a delete must each show at once, and the reused figures must equal a full recount."""
    from app.core.ids import uuid7
    from tests.factories import resident

    chen = platform.client("chen")

    def totals() -> dict[str, tuple[int, int]]:
        got = requests.get(
            f"{platform.url}/v1/console/overview", headers=chen.headers, timeout=30
        ).json()
        return {g["code"]: (g["stats"]["total"], g["stats"]["conflicts"]) for g in got["grids"]}

    assert totals() == {GRID_A: (2, 1), GRID_B: (0, 0)}
    rid = uuid7()
    (made,) = chen.push(
        [chen.op(rid, "create", {**resident(grid=GRID_A, seq=21), "_status": "complete"})]
    )
    assert totals() == {GRID_A: (3, 1), GRID_B: (0, 0)}
    chen.push([chen.op(rid, "update", {"grid": GRID_B}, base_version=made["version"])])
    assert totals() == {GRID_A: (2, 1), GRID_B: (1, 0)}
    chen.push([chen.op(rid, "delete", {}, base_version=made["version"] + 1)])
    assert totals() == {GRID_A: (2, 1), GRID_B: (0, 0)}
    cached = totals()
    with platform.engine.begin() as conn:
        conn.execute(db.grid_stats.delete())
    assert totals() == cached


def test_the_login_form_has_its_own_csrf_check_and_no_open_redirect(platform: Platform) -> None:
    plain_post = requests.post(
        f"{platform.url}/console/login",
        data={"username": "chen", "password": PASSWORD, "csrf": "forged"},
        allow_redirects=False,
        timeout=30,
    )
    assert plain_post.status_code == 403 and "gc_console" not in plain_post.headers.get(
        "set-cookie", ""
    )
    browser = Browser(platform.url)
    page = browser.get("/console/login?next=https://evil.example/")
    token = page.cookies["gc_login_csrf"]
    resp = browser.http.post(
        f"{platform.url}/console/login",
        data={"username": "chen", "password": PASSWORD, "csrf": token, "next": "//evil.example/"},
        allow_redirects=False,
        timeout=30,
    )
    assert resp.status_code == 303 and resp.headers["location"] == "/console/overview"


def test_review_decisions_from_the_desktop_api_are_in_the_audit_log_once(
    platform: Platform, seeded: Seeded
) -> None:
    chen = platform.client("chen")
    resp = requests.post(
        f"{platform.url}/v1/reviews/{seeded.review}",
        json={"decision": "different"},
        headers=chen.headers,
        timeout=30,
    )
    assert resp.status_code == 200
    root = platform.client("root")
    rows = requests.get(
        f"{platform.url}/v1/console/audit", headers=root.headers, timeout=30
    ).json()["rows"]
    assert [(r["username"], r["action"], r["target"]) for r in rows] == [
        ("chen", "review", f"review:{seeded.review}=different")
    ]
    login(platform, "chen").post(f"/console/reviews/{seeded.review}", {"decision": "same"})
    rows = requests.get(
        f"{platform.url}/v1/console/audit", headers=root.headers, timeout=30
    ).json()["rows"]
    assert [r["action"] for r in rows] == ["login", "review"]  # already decided: nothing new


def test_a_session_works_on_another_server_process(
    platform: Platform, seeded: Seeded, db_url: str, tmp_path: Path
) -> None:
    """Two real server processes (``gridcollect server``) behind one proxy: a login made on one
    works on the other, CSRF token included, and a logout on the other ends it on both."""
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    secret = tmp_path / "secret"
    secret.write_text("test-secret", encoding="utf-8")  # the fixture's server secret
    cmd = [
        sys.executable,
        "-m",
        "sync.server.cli",
        "server",
        "--db",
        db_url,
        "--port",
        str(port),
        "--secret-file",
        str(secret),
    ]
    root = Path(__file__).parents[2]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=root)
    other_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"{other_url}/v1/info", timeout=2)
                break
            except requests.ConnectionError:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                assert time.monotonic() < deadline
                time.sleep(0.2)
        chen = login(platform, "chen")
        other = Browser(other_url)
        other.http.cookies.update(chen.http.cookies)
        assert other.get(f"/console/records/{seeded.conflict_a}").status_code == 200
        assert other.csrf() == chen.csrf()
        assert other.post("/console/logout").status_code == 303
        assert chen.get("/console/overview", allow_redirects=False).status_code == 303
    finally:
        proc.terminate()
        proc.wait(30)


def test_pages_show_times_in_the_platforms_zone(
    platform: Platform, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The platform stores UTC; pages showed it as stored, eight hours off for a supervisor in
    China. Pages now show the time in $GRIDCOLLECT_TZ (Asia/Shanghai unless set), to the
    minute; the JSON API keeps UTC."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    chen = login(platform, "chen")
    chen.post(f"/console/reviews/{seeded.review}", {"decision": "different"})
    stored = audit_rows(platform)[-1].at  # e.g. 2026-12-08T00:34:30.889Z

    def shown(zone: str) -> str:
        moment = dt.datetime.fromisoformat(stored.replace("Z", "+00:00"))
        return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")

    root = login(platform, "root")
    monkeypatch.delenv("GRIDCOLLECT_TZ", raising=False)
    page = root.get("/console/audit").text
    assert f"<td>{shown('Asia/Shanghai')}</td>" in page and stored not in page
    monkeypatch.setenv("GRIDCOLLECT_TZ", "Europe/Berlin")
    assert f"<td>{shown('Europe/Berlin')}</td>" in root.get("/console/audit").text
    listed = requests.get(
        f"{platform.url}/v1/console/audit", headers=platform.client("root").headers, timeout=30
    ).json()["rows"]
    assert stored in {row["at"] for row in listed}  # programs read UTC
