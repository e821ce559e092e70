""" "Different person" answers travel both ways (PROTOCOL.md §9.2): a worker's answer on the
device closes the platform's open duplicate review item; a supervisor's ``different`` lands in
the devices' ``dedup_decisions``. Real server over loopback (SQLite and PostgreSQL), devices
on real SQLite stores."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from app.core.ids import uuid7
from sync.server import db
from tests.factories import resident
from tests.sync import devicekit
from tests.sync.conftest import GRID_A, GRID_B, Platform
from tests.sync.devicekit import (
    Device,
    FaultAdapter,
    faulty_session,
    is_push,
    make_device,
    nth,
)

devices = devicekit.devices  # fixture

_seqs = itertools.count(11, 2)
_days = itertools.count()


def _pair(device: Device, grid: str = GRID_A) -> tuple[str, str]:
    """Two people of one name and birth date (two ID numbers): the platform opens a review."""
    a = device.save("resident", resident(grid=grid, seq=next(_seqs), name="张三")).id
    b = device.save("resident", resident(grid=grid, seq=next(_seqs), name="张三")).id
    return a, b


def _reviews(platform: Platform, a: str, b: str) -> list[Any]:
    rv = db.reviews.c
    with platform.engine.connect() as conn:
        return list(
            conn.execute(
                select(db.reviews).where(
                    ((rv.record_id == a) & (rv.other_id == b))
                    | ((rv.record_id == b) & (rv.other_id == a))
                )
            ).all()
        )


def _audit(platform: Platform, review_id: int) -> list[Any]:
    c = db.review_audit.c
    with platform.engine.connect() as conn:
        return list(conn.execute(select(db.review_audit).where(c.review_id == review_id)).all())


def _sup_decide(platform: Platform, review_id: int, decision: str) -> requests.Response:
    return _sup_decide_as(platform.client("chen"), platform, review_id, decision)


def _sup_decide_as(
    chen: Any, platform: Platform, review_id: int, decision: str
) -> requests.Response:
    return chen.http.post(
        f"{platform.url}/v1/reviews/{review_id}",
        json={"decision": decision},
        headers=chen.headers,
        timeout=30,
    )


def _open_ids(platform: Platform) -> list[int]:
    chen = platform.client("chen")
    resp = chen.http.get(f"{platform.url}/v1/reviews", headers=chen.headers, timeout=30)
    assert resp.status_code == 200, resp.text
    return [r["id"] for r in resp.json()["reviews"]]


def test_worker_different_closes_the_review_once(platform: Platform, devices: Any) -> None:
    [dev] = devices(1)
    a, b = _pair(dev)
    dev.sync()
    [review] = _reviews(platform, a, b)
    assert review.state == "open" and review.id in _open_ids(platform)
    dev.store.decide_duplicate(b, a, "different", author="王五")
    dev.sync()
    [review] = _reviews(platform, a, b)
    assert (review.state, review.decided_by) == ("different", "wang")
    assert review.id not in _open_ids(platform)
    [row] = _audit(platform, review.id)
    assert (row.decision, row.username) == ("different", "wang")
    assert dev.store.replica.pending_decisions(10) == []
    dev.store.decide_duplicate(a, b, "different", author="王五")  # asked again, other editor
    dev.sync()
    assert len(_audit(platform, review.id)) == 1
    # its own decision comes back with the pull: no second row on the device
    assert [d for _o, d in dev.store.pair_decisions(a)] == ["different", "different"]


def test_lost_answer_resends_without_a_second_audit_row(
    platform: Platform, devices: Any, tmp_path: Any, formset: Any
) -> None:
    [first] = devices(1)
    a, b = _pair(first)
    first.sync()
    adapter = FaultAdapter(after=nth(is_push, 1))
    dev = make_device(
        platform.url, tmp_path, formset, session=faulty_session(adapter), name="lossy"
    )
    try:
        dev.sync()
        dev.store.decide_duplicate(a, b, "different", author="王五")
        dev.sync()
        assert adapter.lost == [("POST", "/v1/push")]
        [review] = _reviews(platform, a, b)
        assert review.state == "different"
        assert len(_audit(platform, review.id)) == 1
        assert dev.store.replica.pending_decisions(10) == []
    finally:
        dev.close()


def test_supervisor_different_reaches_devices_in_scope(platform: Platform, devices: Any) -> None:
    [wang, wang2] = devices(2)
    [li] = devices(1, user="li")
    a, b = _pair(wang)
    wang.sync()
    wang2.sync()
    li.sync()
    [review] = _reviews(platform, a, b)
    assert _sup_decide(platform, review.id, "different").status_code == 200
    for dev in (wang, wang2):
        dev.sync()
        assert dict(dev.store.pair_decisions(review.record_id)) == {review.other_id: "different"}
        [(_o, _d, author, _at)] = dev.store.decisions(review.record_id)
        assert author == "chen"
        assert dev.store.replica.pending_decisions(10) == []  # not sent back
    li.sync()
    assert li.store.pair_decisions(a) == [] and li.store.pair_decisions(b) == []


def test_pull_names_pairs_only_when_both_records_are_in_scope(platform: Platform) -> None:
    wang, li, chen = platform.client("wang"), platform.client("li"), platform.client("chen")
    a, b = uuid7(), uuid7()
    wang.push([wang.op(a, "create", {**resident(grid=GRID_A, seq=301, name="李四")})])
    li.push([li.op(b, "create", {**resident(grid=GRID_B, seq=303, name="李四")})])
    [review] = _reviews(platform, a, b)
    assert _sup_decide(platform, review.id, "different").status_code == 200
    for worker in (wang, li):
        assert "not_duplicates" not in worker.pull(0, 5000)
    pairs = chen.pull(0, 5000)["not_duplicates"]
    assert [(p["record_id"], p["other_id"], p["decided_by"]) for p in pairs] == [
        (review.record_id, review.other_id, "chen")
    ]


def _send(client: Any, a: str, b: str) -> requests.Response:
    decision = {"record_id": a, "other_id": b, "decision": "different", "decided_at": "x#0000"}
    return client.push_raw([], dedup_decisions=[decision])


def test_out_of_scope_pair_answers_as_an_unknown_one(platform: Platform) -> None:
    wang, li = platform.client("wang"), platform.client("li")
    a, b = uuid7(), uuid7()
    wang.push([wang.op(a, "create", {**resident(grid=GRID_A, seq=401, name="王二")})])
    li.push([li.op(b, "create", {**resident(grid=GRID_B, seq=403, name="王二")})])
    [review] = _reviews(platform, a, b)
    real = _send(wang, a, b)
    unknown = _send(wang, a, uuid7())
    assert real.status_code == unknown.status_code == 200
    strip = [
        {k: v for k, v in d.items() if k != "other_id"} for d in real.json()["dedup_decisions"]
    ]
    strip2 = [
        {k: v for k, v in d.items() if k != "other_id"} for d in unknown.json()["dedup_decisions"]
    ]
    assert strip == strip2 == [{"record_id": a, "status": "no_review"}]
    [after] = _reviews(platform, a, b)
    assert after.state == "open" and _audit(platform, review.id) == []


def test_a_worker_cannot_say_same(platform: Platform) -> None:
    wang = platform.client("wang")
    bad = {"record_id": uuid7(), "other_id": uuid7(), "decision": "same", "decided_at": "x"}
    resp = wang.push_raw([], dedup_decisions=[bad])
    assert resp.status_code == 422
    resp = _send(wang, "not-a-uuid", uuid7())
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "bad_record_id"


_EVENTS = st.lists(st.sampled_from(["worker", "same", "different"]), min_size=1, max_size=5)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(events=_EVENTS)
def test_decisions_in_any_order_decide_once(platform: Platform, events: list[str]) -> None:
    """The worker's answer sent any number of times, around a supervisor's "same" or
    "different": a worker's answer closes an open item only, a supervisor's decision is final
    but may follow a worker's (§9: the worker's answer is input), one audit row per decision
    taken, and a worker never merges."""
    wang = platform.client("wang")
    birth = dt.date(1960, 1, 1) + dt.timedelta(days=next(_days))
    a, b = uuid7(), uuid7()
    for rid, seq in ((a, 501), (b, 503)):
        data = resident(grid=GRID_A, seq=seq, name="赵六", birth=birth)
        wang.push([wang.op(rid, "create", data)])
    [review] = _reviews(platform, a, b)
    state, final, taken = "open", False, []
    for event in events:
        if event == "worker":
            resp = _send(wang, b, a)
            assert resp.status_code == 200
            [answer] = resp.json()["dedup_decisions"]
            assert answer["status"] == ("closed" if state == "open" else "already_decided")
            if state == "open":
                state = "different"
                taken.append(("different", "wang"))
        else:
            resp = _sup_decide(platform, review.id, event)
            assert resp.status_code == (409 if final else 200), resp.text
            if not final:
                state, final = event, True
                taken.append((event, "chen"))
    [after] = _reviews(platform, a, b)
    assert after.state == state
    assert [(r.decision, r.username) for r in _audit(platform, review.id)] == taken
    merged = platform.client("root").pull(0, 5000)
    aliases = {x["old"] for x in merged["aliases"]}
    assert (state == "same") == bool({a, b} & aliases)


def test_a_grid_given_later_brings_its_decided_pairs(platform: Platform, devices: Any) -> None:
    """A pair decided before the worker had the grid arrives with the grid's fetch (§8.1),
    not only pairs numbered after the device's cursor."""
    from sync.server import admin

    [li] = devices(1, user="li")
    [wang] = devices(1)
    a, b = _pair(li, GRID_B)
    li.sync()
    [review] = _reviews(platform, a, b)
    assert _sup_decide(platform, review.id, "different").status_code == 200
    wang.sync()
    assert wang.store.pair_decisions(a) == []
    admin.set_user_grids(platform.engine, "wang", [GRID_A, GRID_B])
    wang.sync()
    assert dict(wang.store.pair_decisions(review.record_id)) == {review.other_id: "different"}


def test_a_later_same_answer_takes_an_unsent_different_back(store: Any) -> None:
    """Only the pair's latest answer counts: "different" then "open the existing one" sends
    nothing; an answer about another pair stays queued."""
    a, b, c = uuid7(), uuid7(), uuid7()
    store.decide_duplicate(a, b, "different", author="王五")
    store.decide_duplicate(a, c, "different", author="王五")
    store.decide_duplicate(b, a, "open_existing", author="王五")
    assert [(x, y) for _s, x, y, _at in store.replica.pending_decisions(10)] == [(a, c)]


def test_answers_given_before_the_upgrade_are_queued_by_it(tmp_path: Any, formset: Any) -> None:
    """The device step that adds the outbox queues the "different" answers already given, so
    the platform hears those too (sending one twice changes nothing there)."""
    from app.core.store import Store
    from app.core.store.schema import DEDUP_OUTBOX, MIGRATIONS

    old = Store(tmp_path / "old.sqlite", formset)
    a, b, c = uuid7(), uuid7(), uuid7()
    old.decide_duplicate(a, b, "different", author="王五")
    old.decide_duplicate(a, c, "same", author="王五")
    old.conn.execute("DROP TABLE dedup_outbox")
    old.conn.execute(f"PRAGMA user_version = {MIGRATIONS.index(DEDUP_OUTBOX)}")
    old.close()
    again = Store(tmp_path / "old.sqlite", formset)
    try:
        assert [(x, y) for _s, x, y, _at in again.replica.pending_decisions(10)] == [(a, b)]
    finally:
        again.close()


def test_a_worker_racing_a_supervisors_same_decides_once(platform: Platform) -> None:
    """The worker's answer and a supervisor's "same" sent at the same moment: whichever
    takes the item first goes first. The supervisor's "same" stands either way (a worker's
    "different" is input a supervisor may overrule, §9); the worker's answer closes the item
    only when it came first (then both decisions are in the audit)."""
    wang, chen = platform.client("wang"), platform.client("chen")
    for _round in range(4):
        _race(platform, wang, chen)


def _race(platform: Platform, wang: Any, chen: Any) -> None:
    birth = dt.date(1950, 1, 1) + dt.timedelta(days=next(_days))
    a, b = uuid7(), uuid7()
    for rid, seq in ((a, 601), (b, 603)):
        data = resident(grid=GRID_A, seq=seq, name="钱七", birth=birth)
        wang.push([wang.op(rid, "create", data)])
    [review] = _reviews(platform, a, b)
    start = threading.Barrier(2)
    answers: dict[str, Any] = {}

    def worker() -> None:
        start.wait()
        answers["worker"] = _send(wang, a, b).json()["dedup_decisions"][0]["status"]

    def supervisor() -> None:
        start.wait()
        answers["supervisor"] = _sup_decide_as(chen, platform, review.id, "same").status_code

    threads = [threading.Thread(target=worker), threading.Thread(target=supervisor)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    [after] = _reviews(platform, a, b)
    assert (after.state, after.decided_by, answers["supervisor"]) == ("same", "chen", 200)
    audit = [(r.decision, r.username) for r in _audit(platform, review.id)]
    if answers["worker"] == "closed":
        assert audit == [("different", "wang"), ("same", "chen")]
    else:
        assert answers["worker"] == "already_decided"
        assert audit == [("same", "chen")]


def test_an_answer_given_before_the_first_sync_closes_the_item_the_same_sync_opens(
    platform: Platform, devices: Any
) -> None:
    """Both people typed offline and told apart at once: the creates go first and open the
    review item, then the answer closes it, in one sync."""
    [dev] = devices(1)
    a, b = _pair(dev)
    dev.store.decide_duplicate(b, a, "different", author="王五")
    dev.sync()
    [review] = _reviews(platform, a, b)
    assert (review.state, review.decided_by) == ("different", "wang")
    assert review.id not in _open_ids(platform)


def test_an_answer_about_a_record_the_platform_refused_waits_for_it(
    platform: Platform, devices: Any
) -> None:
    """b's create is refused (typed into a grid that is not wang's); the worker told a and b
    apart meanwhile. The answer is not spent on a platform that does not know b (it would
    answer ``no_review``, final): it waits, and closes the item once b is accepted."""
    [wang] = devices(1)
    a = wang.save("resident", resident(grid=GRID_A, seq=next(_seqs), name="赵六")).id
    b = wang.save("resident", resident(grid=GRID_B, seq=next(_seqs), name="赵六")).id
    wang.store.decide_duplicate(b, a, "different", author="王五")
    assert wang.sync().rejected == 1
    assert _reviews(platform, a, b) == []
    assert wang.store.replica.pending_decisions(10) == []  # not sent: it waits for b
    assert wang.store.conn.execute("SELECT count(*) FROM dedup_outbox").fetchone()[0] == 1

    wang.edit(b, grid=GRID_A)  # the worker corrects the grid: b is accepted
    wang.sync()
    [review] = _reviews(platform, a, b)
    assert (review.state, review.decided_by) == ("different", "wang")
    assert wang.store.replica.pending_decisions(10) == []


def test_a_later_answer_stands_when_the_pull_that_would_echo_the_first_was_cut(
    platform: Platform, tmp_path: Any, formset: Any
) -> None:
    """The worker's "different" reaches the platform, then the link drops before the pull
    that echoes it; the worker answers the pair again ("open the existing record"). The echo
    that arrives with the next sync is the worker's first answer, not news: it must not stand
    over the later one, as it would not have had the pull not been cut."""
    from sync.client import SyncError

    link = {"armed": False, "down": False}

    def cut_after_push(request: Any) -> bool:
        if link["armed"] and is_push(request):
            link["down"] = True
        return False

    adapter = FaultAdapter(
        before=lambda r: link["down"] and devicekit.is_pull(r), after=cut_after_push
    )
    dev = make_device(platform.url, tmp_path, formset, session=faulty_session(adapter), name="cut")
    try:
        a, b = _pair(dev)
        dev.sync()
        dev.store.decide_duplicate(b, a, "different", author="王五")
        link["armed"] = True
        with pytest.raises(SyncError):
            dev.sync()
        assert link["down"] and dev.store.replica.pending_decisions(10) == []  # it was sent
        [review] = _reviews(platform, a, b)
        assert review.state == "different"
        link["armed"] = link["down"] = False

        dev.store.decide_duplicate(b, a, "open_existing", author="王五")
        dev.sync()
        assert dev.store.pair_decisions(a)[-1] == (b, "open_existing")
    finally:
        dev.close()


def test_an_answer_about_a_record_sent_when_its_grid_came_back_goes_in_the_same_sync(
    platform: Platform, devices: Any
) -> None:
    """b was refused while its grid was away, and the answer about it waited for it; the sync
    in which the grid comes back sends b again (PROTOCOL.md §11 rule 3a) and the answer with
    it: the supervisor is not asked about a pair the worker has answered."""
    from sync.server import admin

    admin.set_user_grids(platform.engine, "wang", [GRID_A, GRID_B])
    [wang] = devices(1)
    wang.sync()
    a = wang.save("resident", resident(grid=GRID_A, seq=next(_seqs), name="钱七")).id
    b = wang.save("resident", resident(grid=GRID_B, seq=next(_seqs), name="钱七")).id
    wang.store.decide_duplicate(b, a, "different", author="王五")
    admin.set_user_grids(platform.engine, "wang", [GRID_A])  # grid B taken away
    assert wang.sync().rejected == 1
    admin.set_user_grids(platform.engine, "wang", [GRID_A, GRID_B])  # and given back

    assert wang.sync().requeued == 1
    [review] = _reviews(platform, a, b)
    assert (review.state, review.decided_by) == ("different", "wang")
