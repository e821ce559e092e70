"""The console in a real Chromium (Playwright on Debian's ``chromium``), against the real server
and real devices (Store data dirs + SyncSession): a supervisor resolves a phone conflict two
devices made, in the browser, and both devices converge with no conflict left."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.factories import resident
from tests.sync import devicekit
from tests.sync.browserkit import chromium_path, launch
from tests.sync.conftest import PASSWORD, Platform

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (dev extras)")
if chromium_path() is None:
    pytest.skip("Debian's chromium is not installed (./dev installs it)", allow_module_level=True)

devices = devicekit.devices  # fixture


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    yield context.new_page()
    context.close()


def log_in(page: Any, url: str, username: str) -> None:
    page.goto(f"{url}/console/overview")
    assert "/console/login" in page.url  # not logged in: the login page first
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#login")
    page.wait_for_url("**/console/overview")


def test_a_supervisor_resolves_a_phone_conflict_in_the_browser(
    platform: Platform, devices: Any, page: Any
) -> None:
    a, b = devices(2)
    record = a.save("resident", resident(seq=61, phone="13800000000"), status="complete")
    a.sync()
    b.sync()
    a.edit(record.id, phone="13911111111")
    b.edit(record.id, phone="13922222222")
    a.sync()
    assert b.sync().open_conflicts == 1  # the second edit of the same field: a hard conflict
    a.sync()
    assert a.get(record.id).conflict and b.get(record.id).conflict

    log_in(page, platform.url, "chen")
    assert page.inner_text("#tile-conflicts") == "1"
    page.click("#nav-conflicts")
    section = page.locator(f"#conflict-{record.id}")
    assert "139****1111" in section.inner_text() and "139****2222" in section.inner_text()
    section.locator("tr[data-field=phone] input[type=radio][value=typed]").check()
    section.locator("input[name='value:phone']").fill("13933333333")
    section.locator(f"#resolve-{record.id}").click()
    page.wait_for_selector("#no-conflicts")
    assert "已处理" in page.inner_text("main")

    for device in (a, b):
        assert device.sync().open_conflicts == 0
    for device in (a, b):
        got = device.get(record.id)
        assert got.conflict is None and got.data["phone"] == "13933333333"

    page.goto(f"{platform.url}/console/records/{record.id}")
    assert "139****3333" in page.inner_text("#fields")
    page.click("#show-phone")
    assert page.inner_text("#revealed-value") == "13933333333"
    page.click("#nav-audit")
    assert "reveal" in page.inner_text("#audit") and "resolve" in page.inner_text("#audit")


def test_a_worker_is_read_only_and_logout_ends_the_session(platform: Platform, page: Any) -> None:
    log_in(page, platform.url, "wang")
    assert "只读" in page.inner_text("main")
    assert page.locator("#nav-reviews").count() == 0 and page.locator("#nav-audit").count() == 0
    page.click("#lang-switch")
    assert "Overview" in page.inner_text("h1")
    page.click("#logout")
    page.wait_for_url("**/console/login")
    page.goto(f"{platform.url}/console/overview")
    assert "/console/login" in page.url


def test_a_supervisor_merges_a_pair_a_worker_told_apart_in_the_browser(
    platform: Platform, devices: Any, page: Any
) -> None:
    """A worker answers 不是同一人 on their device; the supervisor finds the item among those
    told apart by workers, with the worker's name, decides 是同一人, and the device merges
    the two records and keeps no answer about them."""
    [wang] = devices(1)
    a = wang.save("resident", resident(seq=71, name="许二")).id
    b = wang.save("resident", resident(seq=73, name="许二")).id
    wang.sync()
    wang.store.decide_duplicate(b, a, "different", author="王五")
    wang.sync()

    log_in(page, platform.url, "chen")
    page.click("#nav-reviews")
    page.wait_for_selector("#no-reviews")  # nothing open: the worker closed it
    page.click("#show-by-worker")
    card = page.locator("section.card[id^=review-]")
    assert card.count() == 1 and "wang" in card.inner_text()
    card.locator("button[value=same]").click()
    page.wait_for_selector("#no-reviews")
    assert "已判定" in page.inner_text("main") and "show=by_worker" in page.url

    wang.sync()
    live = [r for r in (wang.store.get(a), wang.store.get(b)) if r is not None and not r.deleted]
    assert len(live) == 1
    assert wang.store.pair_decisions(live[0].id) == []
