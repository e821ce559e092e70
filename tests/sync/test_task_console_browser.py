"""Task pages of the console in a real Chromium (Playwright on Debian's ``chromium``), against
the real server: a supervisor previews and issues "confirm the phone of every 流动人口", follows
it while workers' results come in (counts per state, per grid and per worker, the SVG chart,
an item's results and the record's changes), reminds, exports; a bad filter says what to fix."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.sync.browserkit import chromium_path, launch
from tests.sync.conftest import GRID_A, GRID_B, PASSWORD, Platform
from tests.sync.test_platform_tasks import people, pull_everything, push_results, result

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
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(
        viewport={"width": 1366, "height": 900}, locale="zh-CN", accept_downloads=True
    )
    yield context.new_page()
    context.close()


def log_in(page: Any, url: str, username: str) -> None:
    page.goto(f"{url}/console/tasks")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#login")
    page.wait_for_url("**/console/tasks")


def test_a_supervisor_issues_and_follows_a_task_in_the_browser(
    platform: Platform, page: Any, tmp_path: Any
) -> None:
    wang, li = platform.client("wang"), platform.client("li")
    people(wang, GRID_A, ["2", "2", "1"])
    people(li, GRID_B, ["2"])
    log_in(page, platform.url, "chen")
    page.fill("#task-title", "核实流动人口电话")
    page.select_option("#task-form-id", "resident")
    page.fill("#task-fields", "联系方式")
    page.fill("#task-filter", "人口类型 = 流动人口")
    page.fill("#task-due", "2030-12-31")
    page.click("#task-preview")
    assert page.inner_text("#preview-total") == "共 3 条"
    counts = {
        row.get_attribute("data-grid"): row.inner_text().split()[-1]
        for row in page.query_selector_all("#preview tr[data-grid]")
    }
    assert counts == {GRID_A: "2", GRID_B: "1"}
    assert (
        page.input_value("#task-filter") == "人口类型 = 流动人口"
    )  # the form keeps what was typed
    page.click("#task-issue")
    page.wait_for_url("**/console/tasks/*")
    assert page.inner_text("#count-open") == "3" and page.inner_text("#task-state") == "待办"
    assert page.inner_text("#task-filter") == "人口类型 = 流动人口"  # labels, not codes
    assert page.get_attribute("#task-filter", "title") == "population_type = 2"
    grids_shown = {c.inner_text() for c in page.query_selector_all("#task-items td:nth-child(2)")}
    assert GRID_A not in grids_shown and GRID_B not in grids_shown  # names, not codes

    a_items = pull_everything(wang)["task_items"]
    (b_item,) = pull_everything(li)["task_items"]
    push_results(wang, [result(wang, a_items[0]["id"], "unable", "查无此人")])
    push_results(li, [result(li, b_item["id"], "done")])
    page.reload()
    assert [page.inner_text(f"#count-{s}") for s in ("open", "done", "unable")] == ["1", "1", "1"]
    workers = {
        r.get_attribute("data-worker"): r.inner_text().split()[1:]
        for r in page.query_selector_all("#task-workers tr[data-worker]")
    }
    assert workers == {"li": ["1", "0"], "wang": ["0", "1"]}
    assert len(page.query_selector_all("figure svg rect.bar3")) >= 2  # the chart is drawn
    if os.environ.get("GRIDCOLLECT_SCREENSHOTS"):
        page.screenshot(
            path=os.path.join(os.environ["GRIDCOLLECT_SCREENSHOTS"], "task.png"), full_page=True
        )

    page.click(f"#task-items tr[data-item='{a_items[0]['id']}'] a")
    page.wait_for_url("**/items/*")
    assert page.inner_text("#item-state") == "无法完成"
    assert "查无此人" in page.inner_text("#item-results")
    page.go_back()
    page.click("#task-remind")
    page.wait_for_url("**ok=done**")
    assert page.inner_text("#task-priority") == "高"
    with page.expect_download() as download:
        page.click("#export-csv")
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    assert "查无此人" in text and "unable" in text


def test_a_bad_filter_in_the_form_says_what_to_fix_and_issues_nothing(
    platform: Platform, page: Any
) -> None:
    log_in(page, platform.url, "chen")
    page.fill("#task-title", "核实")
    page.select_option("#task-form-id", "resident")
    page.fill("#task-filter", "人口类型 = 外星人")
    page.click("#task-issue")
    alert = page.inner_text("[role=alert]")
    assert "筛选条件有误" in alert and "第 8 个字符" in alert
    assert page.input_value("#task-filter") == "人口类型 = 外星人"
    assert page.query_selector("#task-table") is None  # no task was issued


def _options(page: Any, select: str) -> list[str]:
    return [o.get_attribute("value") for o in page.query_selector_all(f"{select} option")]


def test_a_supervisor_assigns_a_task_to_workers_of_its_grids_and_changes_them(
    platform: Platform, page: Any
) -> None:
    """The new-task form offers the workers of the chosen grids (of every grid of chen's before
    any is chosen; Preview narrows them), refuses li for a task of grid A with the reason and
    stores nothing; the task issued to sun says so on the list and its page; changing it to
    wang there withdraws it from sun's device at the next pull (as the API's PATCH); a name
    that is no worker of the task's grids, forged into the form, is refused and changes
    nothing."""
    from sync.server import admin

    admin.put_user(platform.engine, "sun", PASSWORD, "worker", grids=[GRID_A])
    wang, sun = platform.client("wang"), platform.client("sun")
    people(wang, GRID_A, ["2", "2"])
    log_in(page, platform.url, "chen")
    assert _options(page, "#task-assignees") == ["li", "sun", "wang"]  # not zhao: elsewhere
    page.fill("#task-title", "核实流动人口电话")
    page.select_option("#task-form-id", "resident")
    page.fill("#task-fields", "联系方式")
    page.fill("#task-filter", "人口类型 = 流动人口")
    page.select_option("#task-grids", [GRID_A])
    page.select_option("#task-assignees", ["li"])
    page.click("#task-issue")
    alert = page.inner_text("[role=alert]")
    assert "网格员 li 不负责本任务的任何网格" in alert and "任务未保存" in alert
    assert page.query_selector("#task-table") is None  # nothing issued
    assert _options(page, "#task-assignees") == ["sun", "wang"]  # narrowed to grid A's
    page.click("#task-preview")
    assert _options(page, "#task-assignees") == ["sun", "wang"]
    if os.environ.get("GRIDCOLLECT_SCREENSHOTS"):
        page.screenshot(
            path=os.path.join(os.environ["GRIDCOLLECT_SCREENSHOTS"], "task-assign.png"),
            full_page=True,
        )
    page.select_option("#task-assignees", ["sun"])
    page.click("#task-issue")
    page.wait_for_url("**/console/tasks/*")
    assert page.inner_text("#task-assignees") == "指派给: sun"
    task_id = page.url.split("/")[-1].split("?")[0]
    assert [t["id"] for t in pull_everything(sun)["tasks"]] == [task_id]
    assert pull_everything(wang)["tasks"] == []
    since = pull_everything(sun)["cursor"]

    page.select_option("#edit-assignees", ["wang"])
    page.click("#assignees-save")
    page.wait_for_url("**ok=done**")
    assert page.inner_text("#task-assignees") == "指派给: wang"
    assert sun.pull(since)["tasks_withdrawn"] == [task_id]
    assert [t["id"] for t in pull_everything(wang)["tasks"]] == [task_id]
    page.goto(f"{platform.url}/console/tasks")
    assert page.inner_text(f"tr[data-task='{task_id}'] td.assignees") == "wang"

    page.goto(f"{platform.url}/console/tasks/{task_id}?lang=en")
    page.evaluate(
        "() => { const o = new Option('zhao', 'zhao', true, true);"
        " document.querySelector('#edit-assignees').add(o); }"
    )
    page.click("#assignees-save")
    alert = page.inner_text("[role=alert]")
    assert "zhao is not an active grid worker account" in alert
    assert page.inner_text("#task-assignees") == "Assigned to: wang"
    assert "tasks_withdrawn" not in wang.pull(since)
