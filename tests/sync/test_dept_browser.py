"""The department pages in a real Chromium against the real server: a department asks for data,
an admin approves it (narrowed) and makes an API key, the department downloads the file and
reads statistics, and the record page shows which department received the record.

``GC_SCREENSHOTS=<dir>`` keeps a screenshot of each page (for the issue's closing note).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.core.ids import uuid7
from tests.factories import resident
from tests.sync.browserkit import chromium_path, launch
from tests.sync.conftest import COMMUNITY, GRID_A, PASSWORD, Platform
from tests.sync.deptkit import DEPT_USER, DeptApi, far, seed_department

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (dev extras)")
if chromium_path() is None:
    pytest.skip("Debian's chromium is not installed (./dev installs it)", allow_module_level=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Any]:
    contexts = []

    def make() -> Any:
        context = browser.new_context(
            viewport={"width": 1366, "height": 900}, locale="zh-CN", accept_downloads=True
        )
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def shot(page: Any, name: str) -> None:
    where = os.environ.get("GC_SCREENSHOTS")
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(where) / f"{name}.png"), full_page=True)


def log_in(page: Any, url: str, username: str, lands: str) -> None:
    page.goto(f"{url}/console/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#login")
    page.wait_for_url(f"**{lands}")


def test_ask_approve_download_and_see_who_received(platform: Platform, new_page: Any) -> None:
    wang = platform.client("wang")
    ids = []
    for seq, year in ((1, 1940), (3, 1948), (5, 1990)):
        rid = uuid7()
        data = {**resident(grid=GRID_A, seq=seq, birth=dt.date(year, 1, 1)), "_status": "draft"}
        wang.push([wang.op(rid, "create", data)])
        ids.append(rid)
    seed_department(platform)

    dept = new_page()
    log_in(dept, platform.url, DEPT_USER, "/console/dept")  # its one page
    dept.check("#ask-resident-name")
    dept.check("#ask-resident-id_number")
    dept.check("#ask-resident-population_type")
    dept.fill("#ask-communities", COMMUNITY)
    dept.fill("#ask-filter", "年龄 >= 60")
    dept.fill("#ask-purpose", "高龄津贴发放核对")
    dept.fill("#ask-until", far())
    shot(dept, "dept-ask")
    dept.click("#ask-send")
    dept.wait_for_selector("#requests tr[data-state=open]")

    admin = new_page()
    log_in(admin, platform.url, "root", "/console/overview")
    admin.click("#nav-departments")
    request = admin.locator("section[data-state=open]").first
    assert "100%" in request.locator("table.fill").inner_text()  # the data is there
    request.locator("select[id^=mode-][id$=-population_type]").select_option("out")
    request.locator("input[name=legal_basis]").fill("《老年人权益保障法》第三十三条")
    shot(admin, "admin-approve")
    request.locator("button[id^=approve-]").click()
    admin.wait_for_selector("#grants tr[data-state=active]")
    admin.select_option("#key-department", "mz")
    admin.fill("#key-label", "民政业务系统")
    admin.click("#key-create")
    key = admin.inner_text("#new-key-value")
    assert key.startswith("gck_")
    shot(admin, "admin-key")

    dept.goto(f"{platform.url}/console/dept")
    grant_row = dept.locator("#grants tr[data-state=active]")
    assert "人口类型" not in grant_row.inner_text()  # narrowed by the admin
    with dept.expect_download() as info:
        grant_row.locator("button[id$=-csv]").click()
    content = Path(info.value.path()).read_bytes()
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    assert rows[0] == ["证件号码", "姓名", "导出编号"] and len(rows) == 3  # the two over 60
    export_id = rows[1][2]
    grant_row.locator("a[id^=stats-]").click()
    dept.wait_for_selector("#stats-by")  # the form: nothing counted until asked
    assert dept.locator("#stats").count() == 0
    dept.click("#stats-go")  # by grid, the first choice
    dept.wait_for_selector("#stats")
    assert dept.inner_text("#stats-total") == "<5"
    shot(dept, "dept-stats")
    dept.goto(f"{platform.url}/console/dept")
    assert export_id in dept.inner_text("#taken")
    shot(dept, "dept-home")

    # the department's script pulls the feed with the key
    api = DeptApi(platform.url, key)
    grant_id = int(grant_row.get_attribute("id").split("-")[1])
    got, _cursor = api.export_all(grant_id)
    assert len(got) == 2

    admin.goto(f"{platform.url}/console/departments")
    assert export_id in admin.inner_text("#taken")
    shot(admin, "admin-who-took-what")
    admin.goto(f"{platform.url}/console/records/{ids[0]}")
    assert "民政局" in admin.inner_text("#receivers")
    shot(admin, "record-receivers")
    admin.goto(f"{platform.url}/console/records/{ids[2]}")
    assert admin.locator("#receivers-none").count() == 1

    # a department account opening a record page by URL gets a clear refusal
    dept.goto(f"{platform.url}/console/records/{ids[0]}")
    assert "部门账号只能按授权取数据" in dept.inner_text("main")


def test_an_admin_turns_a_request_into_a_task_and_the_department_sees_it_progress(
    platform: Platform, new_page: Any
) -> None:
    wang = platform.client("wang")
    lacking = []
    for seq, year in ((1, 1940), (3, 1948)):
        rid = uuid7()
        data = {**resident(grid=GRID_A, seq=seq, birth=dt.date(year, 1, 1)), "_status": "draft"}
        data.pop("phone")
        wang.push([wang.op(rid, "create", data)])
        lacking.append(rid)
    seed_department(platform)

    dept = new_page()
    log_in(dept, platform.url, DEPT_USER, "/console/dept")
    dept.check("#ask-resident-phone")
    dept.fill("#ask-communities", COMMUNITY)
    dept.fill("#ask-filter", "年龄 >= 60")
    dept.fill("#ask-purpose", "高龄老人联系电话核对")
    dept.fill("#ask-until", far())
    dept.click("#ask-send")
    dept.wait_for_selector("#requests tr[data-state=open]")

    admin = new_page()
    log_in(admin, platform.url, "root", "/console/overview")
    admin.click("#nav-departments")
    request = admin.locator("section[data-state=open]").first
    assert "0%" in request.locator("table.fill").inner_text()  # nobody's phone is known
    request.locator("input[id^=collect-due-]").fill("2031-03-31")
    shot(admin, "admin-collect")
    request.locator("button[id^=collect-]").click()
    admin.wait_for_selector("section[data-state=collecting] a[id^=task-link-]")
    admin.locator("a[id^=task-link-]").first.click()  # the task's own page, issued by the admin
    admin.wait_for_url("**/console/tasks/*")
    assert "高龄老人联系电话核对" in admin.inner_text("main")

    dept.goto(f"{platform.url}/console/dept")
    progress = dept.locator("#requests tr[data-state=collecting] span[id^=task-progress-]")
    assert progress.get_attribute("data-done") == "0"
    assert progress.get_attribute("data-total") == "2"
    assert "2031-03-31" in progress.inner_text()

    # a worker's device fills in one phone: the item is done, the department sees it move
    (res,) = wang.push([wang.op(lacking[0], "update", {"phone": "13900139000"}, base_version=1)])
    assert res["status"] == "applied", res
    dept.reload()
    assert progress.get_attribute("data-done") == "1"
    assert "1/2" in progress.inner_text()
    shot(dept, "dept-collect-progress")
