"""A task item whose record the platform merges into another (a review decision "same") while
the task is open, over the real server on loopback HTTP: the item follows the merge, so a save
of the surviving record finishes it, and a device pulling the item with the alias names the
surviving record (PROTOCOL.md §7, §13.1, §13.2)."""

from __future__ import annotations

from typing import Any

from app.core.ids import uuid7
from tests.factories import resident
from tests.sync.conftest import GRID_A, Client, Platform
from tests.sync.devicekit import db_url  # noqa: F401  (SQLite only: a fixture)
from tests.sync.test_platform_tasks import api, pull_everything


def _person(seq: int) -> dict[str, Any]:
    fields = {**resident(grid=GRID_A, seq=seq, name="张三"), "_status": "complete"}
    fields.pop("phone")
    return fields


def _merged_pair(platform: Platform, wang: Client, chen: Client) -> tuple[str, str, str]:
    """a (older) and b (its fuzzy duplicate); a task names b; then b is merged into a.
    Returns (a, b, task id)."""
    a, b = uuid7(), uuid7()
    wang.push([wang.op(a, "create", _person(1))])
    wang.push([wang.op(b, "create", _person(3))])
    spec = {"title": "核实电话", "form": "resident", "fields": ["phone"], "record_ids": [b]}
    made = api(platform, chen, "POST", "/tasks", json=spec)
    assert made.status_code == 200 and made.json()["items"] == 1, made.text
    reviews = chen.http.get(f"{platform.url}/v1/reviews", headers=chen.headers, timeout=30)
    (review,) = [r for r in reviews.json()["reviews"] if r["record_id"] == b]
    decided = chen.http.post(
        f"{platform.url}/v1/reviews/{review['id']}",
        json={"decision": "same"},
        headers=chen.headers,
        timeout=30,
    )
    assert decided.json()["merged_into"] == a, decided.text
    return a, b, made.json()["task"]["id"]


def test_a_save_of_the_record_an_items_record_was_merged_into_finishes_it(
    platform: Platform,
) -> None:
    wang, chen = platform.client("wang"), platform.client("chen")
    a, _b, task_id = _merged_pair(platform, wang, chen)
    version = max(r["version"] for r in pull_everything(wang)["records"] if r["id"] == a)
    (answer,) = wang.push([wang.op(a, "update", {"phone": "13900139000"}, base_version=version)])
    assert answer["status"] == "applied", answer
    follow = api(platform, chen, "GET", f"/tasks/{task_id}").json()
    assert follow["counts"] == {"open": 0, "done": 1, "unable": 0}
    assert follow["task"]["state"] == "closed"


def test_an_item_pulled_after_the_merge_names_the_surviving_record(platform: Platform) -> None:
    wang, chen = platform.client("wang"), platform.client("chen")
    a, b, _task = _merged_pair(platform, wang, chen)
    got = pull_everything(wang)
    assert [i["record_id"] for i in got["task_items"]] == [a]
    assert b not in {r["id"] for r in got["records"] if not r["deleted"]}
