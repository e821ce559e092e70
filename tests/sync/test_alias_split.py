"""A pull page that renames a record (its alias, PROTOCOL.md §7) while the surviving record's
own row would come on a later page: the device must never hold the survivor's id with the
merged-away record's data and version, or an edit saved in between goes out as an op for the
survivor based on a version of another record (dropped as unchanged, or ``base_ahead``).

Transfers (§9.1) are the case where a worker's device holds the claim but not the holder it
is merged into. Real server over loopback on SQLite and PostgreSQL, real device stores."""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from app.core.forms import FormSet
from app.core.ids import uuid7
from sync import replica
from sync.server import admin
from tests.factories import id_number, resident
from tests.sync import devicekit
from tests.sync.conftest import GRID_A, GRID_B, Client, Platform
from tests.sync.devicekit import PASSWORD, Device, make_device

devices = devicekit.devices  # fixture


class _Drop(requests.ConnectionError):
    """The link dropped (injected)."""


def _decide_same(platform: Platform, record_id: str) -> str:
    """The supervisor accepts the open review naming ``record_id``; returns the survivor."""
    boss = platform.client("chen")
    url = f"{platform.url}/v1/reviews"
    items = boss.http.get(url, headers=boss.headers, timeout=30).json()["reviews"]
    (item,) = [r for r in items if record_id in (r["record_id"], r["other_id"])]
    resp = boss.http.post(
        f"{url}/{item['id']}", json={"decision": "same"}, headers=boss.headers, timeout=30
    )
    assert resp.status_code == 200, resp.text
    return str(resp.json()["merged_into"])


def _kept(record: dict[str, Any], field: str, value: Any) -> bool:
    """The value is the record's, or waits in one of its conflicts (nothing dropped)."""
    return record["data"].get(field) == value or any(
        c["field"] == field and value in (c["incoming"], c["server"])
        for c in record["conflict"] or []
    )


def _transfer_then_survivor_changes(
    platform: Platform, dev: Device, claim_edits: tuple[str, ...] = ()
) -> tuple[str, str]:
    """li's holder h (occupation 教师, then 医生) in grid B; ``dev`` (wang) registers the same
    person in grid A (a claim c, edited ``claim_edits``), synced; the supervisor accepts the
    transfer (c merges into h, h moves to grid A). Then another record of grid A changes, and
    h itself: h's row is numbered after the alias and after that other record, so pages of
    two put the alias on one page and h on the next. Returns (c, h)."""
    li, other = platform.client("li"), platform.client("wang")
    h = uuid7()
    made = {**resident(grid=GRID_B, seq=5), "occupation": "教师", "_status": "complete"}
    li.push([li.op(h, "create", made)])
    li.push([li.op(h, "update", {"occupation": "医生"}, base_version=1)])
    number = id_number(seq=5)
    c = dev.save("resident", resident(grid=GRID_A, seq=5, id_number=number), status="complete")
    dev.sync()
    for job in claim_edits:
        dev.edit(c.id, hukou_address=f"浙江省杭州市西湖区{job}")
        dev.sync()
    assert _decide_same(platform, c.id) == h
    version = int(other.record(h).json()["version"])
    other.push([other.op(uuid7(), "create", {**resident(grid=GRID_A, seq=7), "_status": "draft"})])
    other.push([other.op(h, "update", {"residence_address": "幸福路1号"}, base_version=version)])
    return c.id, h


def _cut_after_first_page(dev: Device) -> Callable[[], None]:
    """The device's second pull request of the next sync fails (the link drops between pages);
    returns how to mend the link."""
    real = dev.client.pull
    calls: list[int] = []

    def cut(since: int, limit: int, **kw: Any) -> Any:
        calls.append(since)
        if len(calls) >= 2:
            raise _Drop("link dropped between pages")
        return real(since, limit, **kw)

    dev.client.pull = cut  # type: ignore[method-assign]

    def mend() -> None:
        dev.client.pull = real  # type: ignore[method-assign]

    return mend


def test_an_edit_saved_after_a_sync_cut_between_the_alias_and_the_survivor_is_not_dropped(
    platform: Platform, devices: Any
) -> None:
    """The sync dropped after the page with the alias: the device renamed its claim c to h,
    keeping c's data and c's version 1. The worker typed occupation 教师 (c had none): the op
    for h with base 1 was merged from h's version 1 (li's 教师), seen as no change, dropped;
    h kept 医生 and nobody was told."""
    (dev,) = devices(1)
    c, h = _transfer_then_survivor_changes(platform, dev)
    mend = _cut_after_first_page(dev)
    with pytest.raises(_Drop):
        dev.sync(chunk=2)
    mend()
    assert dev.store.get(c) is None
    dev.edit(h, occupation="教师")
    summary = dev.sync()
    assert summary.rejected == 0 and replica.rejected_ops(dev.store) == []
    held = platform.client("chen").record(h).json()
    assert _kept(held, "occupation", "教师"), held
    assert held["data"]["residence_address"] == "幸福路1号"  # the later edit of h stays
    assert dev.get(h).data["occupation"] == "教师"
    assert replica.pending_count(dev.store) == 0


def test_an_edit_saved_during_a_sync_between_the_alias_and_the_survivor_is_not_refused(
    platform: Platform, devices: Any
) -> None:
    """The claim c reached version 5 on the device (four edits), the holder h only version 4
    (create, edit, the merge, the later edit). The worker saves a phone while the sync runs,
    between the alias's page and h's page: the op went out for h with c's version 5, and the
    platform refused it (409 ``base_ahead``): set aside, the phone never arrived."""
    (dev,) = devices(1)
    c, h = _transfer_then_survivor_changes(platform, dev, claim_edits=("一", "二", "三", "四"))
    assert int(platform.client("chen").record(h).json()["version"]) < 5
    done: list[bool] = []

    def hook(phase: str, pulled: int, _total: int) -> None:
        if phase == "pull" and pulled >= 2 and not done:
            done.append(True)
            assert dev.store.get(c) is None
            dev.edit(h, phone="13911112222")

    dev.sync(chunk=2, commit_every=1, progress=hook)
    assert done
    dev.sync()
    assert replica.rejected_ops(dev.store) == []
    held = platform.client("chen").record(h).json()
    assert held["data"]["phone"] == "13911112222", held
    assert held["data"]["residence_address"] == "幸福路1号"
    assert dev.get(h).data["phone"] == "13911112222"
    assert replica.pending_count(dev.store) == 0


# -- the property ---------------------------------------------------------------------------

_births = itertools.count(1)


def _birth() -> dt.date:
    """A birth date of its own per person made: people of different examples on one platform
    never look like duplicates of each other (same name and birth date, §5.4 step 7)."""
    return dt.date(1940, 1, 1) + dt.timedelta(days=next(_births))


class _Cut(Exception):
    """The sync stopped between two pages (after the first one was committed)."""


def _layout(root: Client, holder_edit: bool, between: int, h: str) -> None:
    """After the merge: ``between`` other records of grid A change, then (``holder_edit``) the
    holder itself, so its row may be numbered well after the alias."""
    for _ in range(between):
        made = {**resident(grid=GRID_A, seq=7, birth=_birth()), "_status": "draft"}
        root.push([root.op(uuid7(), "create", made)])
    if holder_edit:
        version = int(root.record(h).json()["version"])
        root.push([root.op(h, "update", {"residence_address": "幸福路1号"}, base_version=version)])


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    claim_edits=st.integers(0, 3),
    holder_edit=st.booleans(),
    between=st.integers(0, 4),
    chunk=st.integers(1, 4),
    after_pages=st.integers(1, 3),
    cut=st.booleans(),
    typed=st.sampled_from([("occupation", "教师"), ("phone", "13911112222")]),
)
@example(
    claim_edits=0,
    holder_edit=True,
    between=1,
    chunk=2,
    after_pages=1,
    cut=True,
    typed=("occupation", "教师"),
)
def test_page_limits_and_edits_between_pages_lose_nothing_of_a_transfer(
    platform: Platform,
    tmp_path: Path,
    formset: FormSet,
    claim_edits: int,
    holder_edit: bool,
    between: int,
    chunk: int,
    after_pages: int,
    cut: bool,
    typed: tuple[str, str],
) -> None:
    """A transfer accepted while a worker's device holds the claim, the holder changed or not
    after it, other changes in between; the device pulls in pages of ``chunk`` and the worker
    saves ``typed`` on the person after ``after_pages`` pages (the sync goes on, or was cut
    there). Whatever the pages split: the platform keeps the typed value (as the record's or
    in a conflict), the claim's and the holder's own values, nothing is refused or left
    pending, the person is never shown deleted, and the device ends with the platform's
    record. Each example is a new worker
    with one device (examples on one platform do not meet)."""
    user = f"w{uuid.uuid4().hex[:10]}"
    admin.put_user(platform.engine, user, PASSWORD, "worker", grids=[GRID_A])
    root = platform.client("root")
    dev = make_device(platform.url, tmp_path, formset, user, name=user)
    try:
        birth = _birth()
        h = uuid7()
        made = {**resident(grid=GRID_B, seq=5, birth=birth), "occupation": "医生"}
        root.push([root.op(h, "create", {**made, "_status": "complete"})])
        person = resident(grid=GRID_A, seq=5, birth=birth)
        c = dev.save("resident", person, status="complete").id
        dev.sync()
        for n in range(claim_edits):
            dev.edit(c, hukou_address=f"浙江省杭州市西湖区文{n}路")
            dev.sync()
        assert _decide_same(platform, c) == h
        _layout(root, holder_edit, between, h)
        field, value = typed
        calls: list[int] = []

        def hook(phase: str, _done: int, _total: int) -> None:
            if phase != "pull":
                return
            calls.append(1)
            assert not _shown(dev, c, h).deleted  # never shown deleted between pages
            if len(calls) == after_pages + 1:  # the first call comes before any page
                if cut:
                    raise _Cut
                dev.edit(h if dev.store.get(h) else c, **{field: value})

        with contextlib.suppress(_Cut):
            dev.sync(chunk=chunk, commit_every=1, progress=hook)
        assert not _shown(dev, c, h).deleted
        if cut or len(calls) <= after_pages:  # cut there, or the pull had fewer pages
            dev.edit(h if dev.store.get(h) else c, **{field: value})
        dev.sync(chunk=chunk)
        summary = dev.sync()
        assert summary.pushed == 0 and replica.rejected_ops(dev.store) == []
        assert replica.pending_count(dev.store) == 0 and dev.store.get(c) is None
        held = root.record(h).json()
        assert _kept(held, field, value), held
        if claim_edits:
            assert _kept(held, "hukou_address", f"浙江省杭州市西湖区文{claim_edits - 1}路"), held
        if holder_edit:
            assert held["data"]["residence_address"] == "幸福路1号", held
        if field != "occupation":
            assert _kept(held, "occupation", "医生"), held
        mine = dev.get(h)
        assert (mine.server_version, mine.data) == (held["version"], held["data"])
    finally:
        dev.close()


# -- the merged-away record's tombstone and its alias ----------------------------------------


def _shown(dev: Device, c: str, h: str) -> Any:
    """The person as the worker's list has them: the holder when the claim was renamed, else
    the claim."""
    return dev.store.get(h) or dev.get(c)


def test_the_claims_tombstone_never_comes_without_its_alias(
    platform: Platform, devices: Any
) -> None:
    """The merge numbers the claim's tombstone before the alias: pages of one put the tombstone
    alone on the first page. The device deleted its copy of the person (gone from the worker's
    list) and, the sync cut there, kept it deleted until the next sync."""
    (dev,) = devices(1)
    c, h = _transfer_then_survivor_changes(platform, dev)
    mend = _cut_after_first_page(dev)
    with pytest.raises(_Drop):
        dev.sync(chunk=1)
    mend()
    shown = _shown(dev, c, h)
    assert not shown.deleted and shown.id == h, (shown.id, shown.deleted)
    summary = dev.sync()
    assert summary.rejected == 0 and dev.store.get(c) is None
    held = platform.client("chen").record(h).json()
    mine = dev.get(h)
    assert (mine.server_version, mine.data) == (held["version"], held["data"])


def test_unsent_typing_on_the_claim_meets_no_delete_conflict_between_pages(
    platform: Platform, devices: Any
) -> None:
    """The worker types a phone on the claim while the sync pulls; the first page (limit 1)
    carried the tombstone alone: the device kept the person live with an "update versus
    delete" conflict, which the worker was asked to settle (choosing "delete" there would
    have gone out as a delete for the holder). With the alias in the same page the claim is
    renamed, the phone waits as an edit of the holder and reaches the platform."""
    (dev,) = devices(1)
    c, h = _transfer_then_survivor_changes(platform, dev)
    mend = _cut_after_first_page(dev)
    typed: list[bool] = []

    def hook(phase: str, _pulled: int, _total: int) -> None:
        if phase == "pull" and not typed:  # the first call comes before any page
            typed.append(True)
            dev.edit(c, phone="13911112222")

    with pytest.raises(_Drop):
        dev.sync(chunk=1, commit_every=1, progress=hook)
    mend()
    assert typed
    shown = _shown(dev, c, h)
    assert not [x for x in shown.conflict or [] if x["field"] == "_deleted"], shown.conflict
    assert not shown.deleted and shown.id == h, (shown.id, shown.deleted)
    dev.sync()
    assert replica.rejected_ops(dev.store) == [] and replica.pending_count(dev.store) == 0
    held = platform.client("chen").record(h).json()
    assert held["data"]["phone"] == "13911112222" and not held["deleted"], held
    assert dev.get(h).data["phone"] == "13911112222"
    assert not dev.get(h).conflict


@pytest.mark.parametrize("chunk", [1, 2])
def test_a_record_delivered_early_is_counted_once_in_the_summary(
    platform: Platform, devices: Any, chunk: int
) -> None:
    """The holder comes with the alias's page (its current state, beyond the page's range)
    and again, at the same version, on the page of its own number; the alias comes with the
    claim's tombstone and again on its own page. The summary counted both twice: ``pulled``
    said more people came than did."""
    (dev,) = devices(1)
    _transfer_then_survivor_changes(platform, dev)
    real = dev.client.pull
    pages: list[Any] = []

    def spy(since: int, limit: int, **kw: Any) -> Any:
        page = real(since, limit, **kw)
        pages.append(page)
        return page

    dev.client.pull = spy  # type: ignore[method-assign]
    summary = dev.sync(chunk=chunk)
    delivered = [(r.id, r.version) for page in pages for r in page.records]
    aliases = [a.old for page in pages for a in page.aliases]
    assert len(delivered) > len(set(delivered))  # the case at hand: one came twice
    assert summary.pulled == len({rid for rid, _v in delivered})
    assert summary.aliases == len(set(aliases)) == 1
    assert dev.sync().pulled == 0
