"""Screenshots of the platform console on the demo platform, for the README.

Usage: python tools/console_screenshots.py [--out docs/screenshots] [--size 1500]

Loads the demo community into a fresh SQLite platform (``sync.server.demo.load_demo``), starts
the real server on loopback, lets two worker devices make a phone conflict, opens a possible
duplicate and has a push set aside, then drives the console in headless Chromium (Playwright
on Debian's ``chromium``) as a community supervisor (including issuing and following a task) and saves
``console-*.png``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
import uvicorn  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from app.core import idnumber  # noqa: E402
from app.core.forms import load_formset  # noqa: E402
from app.core.ids import now_iso, uuid7  # noqa: E402
from sync.server import auth  # noqa: E402
from sync.server.app import create_app  # noqa: E402
from sync.server.demo import load_demo  # noqa: E402
from tests.sync.browserkit import launch  # noqa: E402

PASSWORD = "demo password"
VIEWPORT = {"width": 1366, "height": 900}


def serve(app: Any) -> tuple[uvicorn.Server, str]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    return server, f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"


class Device:
    """A worker's device talking the sync protocol (enough to stage the demo's open work)."""

    def __init__(self, url: str, user: str, device: str) -> None:
        self.url, self.device, self.n = url, device, 0
        resp = requests.post(
            f"{url}/v1/login",
            json={"username": user, "password": PASSWORD, "device_id": device},
            timeout=30,
        )
        self.headers = {"Authorization": f"Bearer {resp.json()['token']}", "X-Device-Id": device}

    def push(self, record_id: str, kind: str, fields: dict, base: int | None = None) -> dict:
        self.n += 1
        op = {
            "op_id": f"{self.device}:{self.n}",
            "record_id": record_id,
            "form": "resident",
            "kind": kind,
            "base_version": base,
            "fields": fields,
            "edited_at": f"{now_iso()}#{self.n:04d}",
            "author": self.device,
        }
        body = {"protocol": 1, "device_id": self.device, "ops": [op]}
        resp = requests.post(f"{self.url}/v1/push", json=body, headers=self.headers, timeout=60)
        return resp.json()["results"][0]

    def residents(self) -> list[dict]:
        resp = requests.get(
            f"{self.url}/v1/pull", params={"limit": 5000}, headers=self.headers, timeout=60
        )
        return [r for r in resp.json()["records"] if r["form"] == "resident" and not r["deleted"]]


def stage(url: str, grid: str) -> None:
    """Two phone conflicts, a possible duplicate and a push the server sets aside."""
    one, two = Device(url, f"w-{grid}", "tablet-1"), Device(url, f"w-{grid}", "tablet-2")
    people = [r for r in one.residents() if r["status"] == "complete"]
    for n, record in enumerate(people[:2]):
        one.push(record["id"], "update", {"phone": f"1391111{n:04d}"}, record["version"])
        two.push(record["id"], "update", {"phone": f"1372222{n:04d}"}, record["version"])
    twin = dict(people[3]["data"])
    first17 = twin["id_number"][:14] + "997"
    twin["id_number"] = first17 + idnumber.check_char(first17)
    twin.pop("phone", None)
    one.push(uuid7(), "create", {**twin, "_status": "draft"})
    one.push(uuid7(), "create", {**people[4]["data"], "id_number": "", "_status": "complete"})


def task_results(url: str, grid: str) -> None:
    """A worker's device finishes two items of the issued task and marks one unable."""
    device = Device(url, f"w-{grid}", "tablet-1")
    resp = requests.get(
        f"{url}/v1/pull", params={"limit": 5000}, headers=device.headers, timeout=60
    )
    items = resp.json().get("task_items", [])
    results = [
        {
            "op_id": f"{device.device}:t{n}",
            "item_id": item["id"],
            "state": state,
            "reason": reason,
            "edited_at": f"{now_iso()}#{n:04d}",
            "author": device.device,
        }
        for n, (item, (state, reason)) in enumerate(
            zip(items, [("done", None), ("done", None), ("unable", "查无此人")], strict=False)
        )
    ]
    body = {"protocol": 1, "device_id": device.device, "ops": [], "task_results": results}
    requests.post(f"{url}/v1/push", json=body, headers=device.headers, timeout=60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    parser.add_argument("--size", type=int, default=1500)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    auth.set_kdf_cost(2**10)  # a throwaway platform: cheaper password hashes
    with tempfile.TemporaryDirectory(prefix="gc-console-shots-") as tmp:
        app = create_app(f"sqlite:///{tmp}/platform.db", forms=load_formset(), secret="demo")
        loaded = load_demo(app.state.service, PASSWORD, size=args.size)
        community, grid = loaded.communities[0], loaded.grids[0]
        server, url = serve(app)
        try:
            stage(url, grid)
            shoot(url, community, grid, out)
        finally:
            server.should_exit = True
    return 0


def act(page: Any, url: str) -> None:
    """What a supervisor does, so the audit log has something to show: reveal a phone number,
    resolve a conflict, decide a possible duplicate."""
    show = page.locator("button[id^=show-]").first
    if show.count():
        show.click()
    page.goto(f"{url}/console/conflicts")
    first = page.locator("section.conflict").first
    if first.count():
        first.locator("input[type=radio][value=server]").first.check()
        first.locator("button[id^=resolve-]").click()
    page.goto(f"{url}/console/reviews")
    different = page.locator("button[id^=different-]").first
    if different.count():
        different.click()


def tasks(page: Any, url: str, grid: str, out: Path) -> None:
    """Issue "confirm the phone of every 流动人口" with its preview, then follow it."""
    page.goto(f"{url}/console/tasks")
    page.fill("#task-title", "核实流动人口电话")
    page.select_option("#task-form-id", "resident")
    page.fill("#task-fields", "联系方式")
    page.fill("#task-filter", "人口类型 = 流动人口")
    page.fill("#task-due", "2030-12-31")
    page.click("#task-preview")
    page.wait_for_selector("#preview-total")
    page.screenshot(path=str(out / "console-task-new.png"), full_page=True)
    page.click("#task-issue")
    page.wait_for_url("**/console/tasks/*")
    task_results(url, grid)
    page.reload()
    page.screenshot(path=str(out / "console-task.png"), full_page=True)


def shoot(url: str, community: str, grid: str, out: Path) -> None:
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_context(viewport=VIEWPORT, locale="zh-CN").new_page()
        page.goto(f"{url}/console/login")
        page.screenshot(path=str(out / "console-login.png"))
        page.fill("#username", f"sup-{community}")
        page.fill("#password", PASSWORD)
        page.click("#login")
        page.wait_for_url("**/console/overview")
        page.screenshot(path=str(out / "console-overview.png"), full_page=True)
        page.goto(f"{url}/console/conflicts")
        page.screenshot(path=str(out / "console-conflicts.png"))
        page.goto(f"{url}/console/reviews")
        page.screenshot(path=str(out / "console-reviews.png"))
        page.goto(f"{url}/console/records?q=zh")
        page.screenshot(path=str(out / "console-records.png"))
        first = page.locator("#results a").first
        if first.count():
            first.click()
            page.wait_for_selector("#history")
            page.screenshot(path=str(out / "console-record.png"), full_page=True)
        act(page, url)
        tasks(page, url, grid, out)
        page.goto(f"{url}/console/people")
        page.screenshot(path=str(out / "console-people.png"))
        page.goto(f"{url}/console/grids")
        page.screenshot(path=str(out / "console-grids.png"))
        page.goto(f"{url}/console/audit")
        page.screenshot(path=str(out / "console-audit.png"))
        page.goto(f"{url}/console/overview?lang=en")
        page.screenshot(path=str(out / "console-overview-en.png"))
        browser.close()
    for path in sorted(out.glob("console-*.png")):
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


if __name__ == "__main__":
    raise SystemExit(main())
