"""Edits a device holds for a record the platform merged away (a supervisor's review "same",
an accepted transfer) while they wait to be pushed: the pull (or an earlier answer of the same
push) moves them to the surviving record, but their base version is one of the merged-away
record's versions. They must still merge from that record's snapshot (PROTOCOL.md §5.4), not
from the surviving record's version of the same number. Real server over loopback, real
device stores (SQLite: the subject is the device)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.core.ids import uuid7
from sync import replica
from tests.factories import id_number, resident
from tests.sync import devicekit
from tests.sync.conftest import GRID_A, GRID_B, Platform
from tests.sync.devicekit import Device, db_url  # noqa: F401 - fixture: SQLite only

devices = devicekit.devices  # fixture


def _person(seq: int, **extra: Any) -> dict[str, Any]:
    return {**resident(grid=GRID_A, seq=seq, name="张三"), **extra}


def _decide_same(platform: Platform, record_id: str) -> str:
    """The supervisor answers "same" on the open review naming ``record_id``; returns the
    record it was merged into."""
    boss = platform.client("chen")
    url = f"{platform.url}/v1/reviews"
    items = boss.http.get(url, headers=boss.headers, timeout=30).json()["reviews"]
    (item,) = [r for r in items if record_id in (r["record_id"], r["other_id"])]
    resp = boss.http.post(
        f"{url}/{item['id']}", json={"decision": "same"}, headers=boss.headers, timeout=30
    )
    assert resp.status_code == 200, resp.text
    return str(resp.json()["merged_into"])


def _once_while_pulling(act: Callable[[], None]) -> Callable[[str, int, int], None]:
    """A progress hook: a person saves ``act`` once, after the push, before the pull."""
    done: list[bool] = []

    def hook(phase: str, pulled: int, _total: int) -> None:
        if phase == "pull" and pulled == 0 and not done:
            done.append(True)
            act()

    return hook


def _kept(record: dict[str, Any], field: str, value: Any) -> bool:
    """The value is the record's, or waits in one of its conflicts (nothing dropped)."""
    return record["data"].get(field) == value or any(
        c["field"] == field and value in (c["incoming"], c["server"])
        for c in record["conflict"] or []
    )


def test_an_edit_made_before_the_pull_folds_a_duplicate_keeps_its_own_base(
    platform: Platform, devices: Any
) -> None:
    """The device held both 张三 (a, occupation 教师 then 医生) and the newer b (no
    occupation). The supervisor decided "same"; the worker typed 教师 on b while the sync
    ran, and the pull folded b into a. The op was sent for a with b's version 1: the
    platform took a's version 1 (教师) for its base, saw no change and dropped it."""
    other = platform.client("wang")
    (dev,) = devices(1)
    a = uuid7()
    other.push([other.op(a, "create", {**_person(1, occupation="教师"), "_status": "complete"})])
    other.push([other.op(a, "update", {"occupation": "医生"}, base_version=1)])
    b = dev.save("resident", _person(3), status="complete").id
    dev.sync()
    assert _decide_same(platform, b) == a
    dev.sync(progress=_once_while_pulling(lambda: dev.edit(b, occupation="教师")))
    assert dev.store.get(b) is None and dev.get(a).data["occupation"] == "教师"
    summary = dev.sync()
    assert summary.rejected == 0 and replica.rejected_ops(dev.store) == []
    held = other.record(a).json()
    assert _kept(held, "occupation", "教师"), held
    assert _kept(held, "occupation", "医生"), held
    (entry,) = [c for c in dev.get(a).conflict or [] if c["field"] == "occupation"]
    assert {entry["mine"], entry["theirs"]} == {"教师", "医生"}  # the worker sees both


def test_an_edit_of_a_merged_away_record_of_many_versions_is_not_refused_after_the_pull(
    platform: Platform, devices: Any
) -> None:
    """The newer duplicate b reached version 4, the older a is at 2 after the merge. The
    worker's phone edit, moved to a by the pull with b's version 4, was refused for the whole
    push (409 base_ahead) and set aside on the device."""
    other = platform.client("wang")
    (dev,) = devices(1)
    a = uuid7()
    other.push([other.op(a, "create", {**_person(1), "_status": "complete"})])
    b = dev.save("resident", _person(3), status="complete").id
    dev.sync()
    for job in ("教师", "医生", "工人"):
        dev.edit(b, occupation=job)
        dev.sync()
    assert dev.get(b).server_version == 4
    assert _decide_same(platform, b) == a
    dev.sync(progress=_once_while_pulling(lambda: dev.edit(b, phone="13911112222")))
    summary = dev.sync()
    assert summary.rejected == 0 and replica.rejected_ops(dev.store) == []
    assert other.record(a).json()["data"]["phone"] == "13911112222"
    assert replica.pending_count(dev.store) == 0


def test_a_later_op_renamed_by_an_earlier_answer_of_the_push_keeps_its_own_base(
    platform: Platform, devices: Any
) -> None:
    """A transfer: li's record h (occupation 教师, then 医生) in grid B; wang's device
    registers the same person in grid A (a claim, c). The supervisor accepts: c merges into
    h. The device, not pulled since, has two edits of c; pushed one a request, the first
    answer renames c to h on the device (it had no copy of h) and the second edit went out
    for h with c's version 1, merged from h's version 1 (教师): dropped."""
    li = platform.client("li")
    (dev,) = devices(1)
    h = uuid7()
    number = id_number(seq=5)
    made = {**resident(grid=GRID_B, seq=5), "occupation": "教师", "_status": "complete"}
    li.push([li.op(h, "create", made)])
    li.push([li.op(h, "update", {"occupation": "医生"}, base_version=1)])
    c = dev.save("resident", resident(grid=GRID_A, seq=5, id_number=number), status="complete")
    dev.sync()
    assert _decide_same(platform, c.id) == h
    dev.edit(c.id, phone="13911112222")
    dev.edit(c.id, occupation="教师")
    summary = dev.sync(batch=1)
    assert summary.rejected == 0 and dev.store.get(c.id) is None
    held = platform.client("chen").record(h).json()
    assert held["data"]["phone"] == "13911112222"
    assert _kept(held, "occupation", "教师"), held
