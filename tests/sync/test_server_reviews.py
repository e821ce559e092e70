"""Fuzzy-duplicate review (same / not the same, with audit rows) and reference rewriting."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.pool import NullPool

from app.core.forms import FormSet
from app.core.ids import uuid7
from sync.server import auth, db, reviews
from sync.server.tx import Tx
from tests.factories import resident
from tests.sync.conftest import GRID_A, GRID_C, Platform


def person(seq: int, name: str) -> dict[str, Any]:
    return {**resident(grid=GRID_A, seq=seq, name=name), "_status": "complete"}


def house(code: str) -> dict[str, Any]:
    return {
        "house_code": code,
        "address_text": f"幸福路{code}号",
        "grid": GRID_A,
        "_status": "draft",
    }


def _hold_decisions(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, threading.Event]:
    """A "same" decision stops inside its transaction (after rewriting references) until
    ``release`` is set; ``entered`` says it got there."""
    entered, release = threading.Event(), threading.Event()
    rewrite = reviews._rewrite_references

    def held(*args: Any, **kwargs: Any) -> None:
        rewrite(*args, **kwargs)
        entered.set()
        assert release.wait(30)

    monkeypatch.setattr(reviews, "_rewrite_references", held)
    return entered, release


def test_possible_duplicates_are_listed_and_decided(platform: Platform) -> None:
    wang, boss = platform.client("wang"), platform.client("chen")
    a, b, c = uuid7(), uuid7(), uuid7()
    wang.push([wang.op(a, "create", person(1, "张三"))])
    wang.push([wang.op(b, "create", {**person(3, "张三"), "occupation": "教师"})])
    wang.push([wang.op(c, "create", person(5, "章三"))])
    url = f"{platform.url}/v1/reviews"
    items = boss.http.get(url, headers=boss.headers, timeout=30).json()["reviews"]
    pairs = {(r["record_id"], r["other_id"]): r for r in items}
    assert set(pairs) == {(b, a), (c, a), (c, b)}
    assert pairs[(b, a)]["reason"] == "same_name_birth"
    assert pairs[(c, a)]["reason"] == "same_pinyin_birth"
    assert pairs[(b, a)]["record_title"] == "张三"

    different = pairs[(c, a)]["id"]
    resp = boss.http.post(
        f"{url}/{different}", json={"decision": "different"}, headers=boss.headers, timeout=30
    )
    assert resp.status_code == 200 and resp.json()["merged_into"] is None
    again = boss.http.post(
        f"{url}/{different}", json={"decision": "same"}, headers=boss.headers, timeout=30
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_decided"

    same = pairs[(b, a)]["id"]
    resp = boss.http.post(
        f"{url}/{same}", json={"decision": "same"}, headers=boss.headers, timeout=30
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["merged_into"] == a and resp.json()["review"]["state"] == "same"
    page = wang.pull()
    by_id = {r["id"]: r for r in page["records"]}
    assert by_id[b]["deleted"] is True
    assert {"old": b, "canonical": a} in page["aliases"]
    merged = by_id[a]
    assert merged["data"]["occupation"] == "教师"  # b's extra value joined a
    assert [x["field"] for x in merged["conflict"]] == ["id_number"]  # both numbers kept
    assert merged["data"]["id_number"] == resident(seq=1)["id_number"]  # a's stays provisional
    # a device still holding b's id lands on a
    (r,) = wang.push([wang.op(b, "update", {"phone": "13911112222"}, base_version=1)])
    assert (r["status"], r["merged_into"]) == ("merged_into", a)
    with platform.engine.connect() as conn:
        audit = (
            conn.execute(select(db.review_audit.c.decision).order_by(db.review_audit.c.id))
            .scalars()
            .all()
        )
        versions_b = conn.execute(
            select(func.count())
            .select_from(db.record_versions)
            .where(db.record_versions.c.record_id == b)
        ).scalar_one()
    assert audit == ["different", "same"]
    assert versions_b == 2  # b's history is kept: its create and its tombstone


def test_references_to_a_merged_house_are_canonical(platform: Platform) -> None:
    one, two = platform.client("wang"), platform.client("wang")
    h1, h2, rid = uuid7(), uuid7(), uuid7()
    one.push([one.op(h1, "create", house("H-1"), form="house")])
    (m,) = two.push([two.op(h2, "create", house("h-1 "), form="house")])  # same key, normalised
    assert (m["status"], m["merged_into"]) == ("merged_into", h1)
    (r,) = two.push([two.op(rid, "create", {**person(7, "王五"), "house_ref": h2})])
    assert r["status"] == "applied"
    assert two.record(rid).json()["data"]["house_ref"] == h1


def test_review_merge_rewrites_references(platform: Platform, formset: FormSet) -> None:
    c = platform.client("wang")
    h1, h2, rid = uuid7(), uuid7(), uuid7()
    c.push(
        [
            c.op(h1, "create", house("H-7"), form="house"),
            c.op(h2, "create", house("H-8"), form="house"),
        ]
    )
    c.push([c.op(rid, "create", {**person(9, "赵六"), "house_ref": h2})])
    boss = auth.User("chen", "supervisor", None, None)
    with db.write(platform.engine) as conn:
        tx = Tx(conn)
        dup, canon = tx.load(h2), tx.load(h1)
        assert dup is not None and canon is not None
        reviews._merge_pair(
            tx, formset, formset.form("house"), dup, canon, boss, auth.iso(auth.now())
        )
        tx.finish()
    record = c.record(rid).json()
    assert record["data"]["house_ref"] == h1 and record["version"] == 2
    assert c.record(h2).json()["id"] == h1  # the old id follows its alias
    assert [x["field"] for x in c.record(h1).json()["conflict"]] == ["address_text", "house_code"]


def _decide_same(platform: Platform, newer: str, older: str) -> None:
    boss = platform.client("chen")
    url = f"{platform.url}/v1/reviews"
    items = boss.http.get(url, headers=boss.headers, timeout=30).json()["reviews"]
    (item,) = [r for r in items if {r["record_id"], r["other_id"]} == {newer, older}]
    resp = boss.http.post(
        f"{url}/{item['id']}", json={"decision": "same"}, headers=boss.headers, timeout=30
    )
    assert resp.status_code == 200 and resp.json()["merged_into"] == older, resp.text


def test_an_edit_made_on_the_merged_away_record_is_merged_from_its_own_base(
    platform: Platform,
) -> None:
    """A device edited the newer duplicate (its base: that record's version) before it heard
    of the supervisor's "same"; its push lands on the older record. The base is the newer
    record's snapshot, not the older record's version of the same number: with the latter,
    the edit to 教师 equal to the older record's first occupation was taken for "unchanged"
    and dropped without a conflict."""
    wang, other = platform.client("wang"), platform.client("wang")
    a, b = uuid7(), uuid7()
    other.push([other.op(a, "create", {**person(1, "张三"), "occupation": "教师"})])
    other.push([other.op(a, "update", {"occupation": "医生"}, base_version=1)])
    wang.push([wang.op(b, "create", person(3, "张三"))])  # wang holds b at version 1
    _decide_same(platform, b, a)
    (r,) = wang.push([wang.op(b, "update", {"occupation": "教师"}, base_version=1)])
    assert (r["status"], r["merged_into"]) == ("merged_into", a)
    held = other.record(a).json()
    kept = held["data"].get("occupation") == "教师" or any(
        c["field"] == "occupation" and c["incoming"] == "教师" for c in held["conflict"] or []
    )
    assert kept, held


def test_an_edit_on_a_merged_away_record_of_many_versions_is_not_refused(
    platform: Platform,
) -> None:
    """The newer duplicate had more versions than the older one has after the merge: the
    device's base version (the newer record's) is not "ahead of the platform"."""
    wang, other = platform.client("wang"), platform.client("wang")
    a, b = uuid7(), uuid7()
    other.push([other.op(a, "create", person(1, "张三"))])
    wang.push([wang.op(b, "create", person(3, "张三"))])
    for v, job in enumerate(("教师", "医生", "工人"), start=1):
        (r,) = wang.push([wang.op(b, "update", {"occupation": job}, base_version=v)])
        assert r["status"] == "applied" and r["version"] == v + 1
    _decide_same(platform, b, a)  # a: version 2
    (r,) = wang.push([wang.op(b, "update", {"phone": "13911112222"}, base_version=4)])
    assert (r["status"], r.get("merged_into")) == ("merged_into", a), r
    assert other.record(a).json()["data"]["phone"] == "13911112222"


def test_an_edit_pushed_while_the_record_is_merged_away_lands_on_the_held_record(
    platform: Platform, monkeypatch: Any
) -> None:
    """PostgreSQL: a push of an edit to the newer duplicate reads its aliases (none yet), then
    waits for the record's row lock, held by the supervisor's "same" in progress. Once that
    commits, the record is a tombstone with an alias: the edit must land on the older record
    (answered ``merged_into``), not on the tombstone nobody sees."""
    if platform.engine.dialect.name != "postgresql":
        pytest.skip("SQLite writers start one at a time (BEGIN IMMEDIATE): no such window")
    wang, other = platform.client("wang"), platform.client("wang")
    a, b = uuid7(), uuid7()
    other.push([other.op(a, "create", person(1, "张三"))])
    wang.push([wang.op(b, "create", person(3, "张三"))])
    entered, release = _hold_decisions(monkeypatch)
    with ThreadPoolExecutor(2) as pool:
        decided = pool.submit(_decide_same, platform, b, a)
        try:
            assert entered.wait(30)
            edit = wang.op(b, "update", {"phone": "13911112222"}, base_version=1)
            pushed = pool.submit(wang.push, [edit])
            _wait_for_a_lock_wait(platform, pushed)
        finally:
            release.set()
        decided.result(timeout=30)
        (r,) = pushed.result(timeout=30)
    assert (r["status"], r.get("merged_into")) == ("merged_into", a), r
    assert other.record(a).json()["data"]["phone"] == "13911112222"


def _watcher(platform: Platform) -> Any:
    """An engine of its own to watch pg_stat_activity (the platform's pool is the push's),
    each statement its own transaction: PostgreSQL keeps one snapshot of the backends'
    activity per transaction, and a loop in one transaction kept seeing the backends as its
    first look found them (the push not yet waiting), 30 s long."""
    return create_engine(platform.engine.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")


def _wait_for_a_lock_wait(
    platform: Platform, pushed: Future[Any], looked: threading.Event | None = None
) -> None:
    """Until a backend of the platform's database waits for a lock (the push, for the
    record's row); through a connection of its own: the platform's pool is the push's.
    ``looked`` is set after the first look.

    Each look is a transaction of its own (autocommit): PostgreSQL reads the list of backends
    once per transaction (only their wait events live), so a backend that connected after the
    first look (the push's, when the pool's one idle connection was taken) stayed unseen."""
    watcher = _watcher(platform)
    waits = select(func.count()).select_from(text("pg_stat_activity"))
    waits = waits.where(text("wait_event_type = 'Lock' AND datname = current_database()"))
    deadline = time.monotonic() + 30
    try:
        with watcher.connect() as conn:
            while not conn.execute(waits).scalar_one():
                if looked is not None:
                    looked.set()
                assert time.monotonic() < deadline, "the push never waited for the lock"
                assert not pushed.done(), pushed.result()
                time.sleep(0.02)
    finally:
        watcher.dispose()


def test_the_lock_watch_sees_a_backend_that_connected_after_its_first_look(
    platform: Platform,
) -> None:
    """The watch above must see the wait of a request that opened its connection after the
    watch first looked. On a loaded machine the second decision did (the pool's one idle
    connection was the held decision's): polled in one transaction, PostgreSQL's list of
    backends stayed the one read at the first look, and the watch timed out after 30 s while
    the decision waited for b's lock all along."""
    if platform.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no pg_stat_activity")
    looked = threading.Event()
    lock = select(db.counters.c.value).where(db.counters.c.name == db.SEQ).with_for_update()
    late = create_engine(platform.engine.url, poolclass=NullPool)  # a backend of its own

    def wait_for_the_row() -> None:
        assert looked.wait(30)
        with late.begin() as conn:
            conn.execute(lock).all()

    try:
        with platform.engine.connect() as holder, ThreadPoolExecutor(1) as pool:
            holder.execute(lock).all()  # holds the row until the rollback
            waiting = pool.submit(wait_for_the_row)
            try:
                _wait_for_a_lock_wait(platform, waiting, looked)
            finally:
                looked.set()
                holder.rollback()
            waiting.result(timeout=30)
    finally:
        late.dispose()


def test_an_open_conflict_of_the_merged_away_record_stays_open_on_the_held_one(
    platform: Platform,
) -> None:
    """Two workers' devices disagreed on the newer duplicate's occupation (a hard conflict,
    教师 provisional, 医生 waiting for a person). The supervisor's "same" must not settle it
    silently: the older record, which had no occupation, takes 教师 and the open question;
    before, the conflict stayed on the tombstone, which no list shows, and 医生 was gone."""
    one, two, other = platform.client("wang"), platform.client("wang"), platform.client("wang")
    a, b = uuid7(), uuid7()
    other.push([other.op(a, "create", person(1, "张三"))])
    one.push([one.op(b, "create", person(3, "张三"))])
    (r,) = one.push([one.op(b, "update", {"occupation": "教师"}, base_version=1)])
    assert r["status"] == "applied"
    (r,) = two.push([two.op(b, "update", {"occupation": "医生"}, base_version=1)])
    assert r["status"] == "conflict", r
    before = {c["field"]: c for c in other.record(b).json()["conflict"]}
    assert {before["occupation"]["server"], before["occupation"]["incoming"]} == {"教师", "医生"}
    _decide_same(platform, b, a)
    held = other.record(a).json()
    assert held["data"]["occupation"] == before["occupation"]["provisional"]
    after = {c["field"]: c for c in held["conflict"] or []}
    assert "occupation" in after, held
    assert {after["occupation"]["server"], after["occupation"]["incoming"]} == {"教师", "医生"}


def test_two_decisions_on_one_record_at_once_both_merge(
    platform: Platform, monkeypatch: Any
) -> None:
    """PostgreSQL: 张三 b "same" as a, and (another supervisor's tab) c "same" as b, decided at
    once. The second waits for b's lock and finds b merged away: it merges c into a (all
    three are one person), not a 500 from a second alias of b."""
    if platform.engine.dialect.name != "postgresql":
        pytest.skip("SQLite writers start one at a time (BEGIN IMMEDIATE): no such window")
    other = platform.client("wang")
    a, b, c = uuid7(), uuid7(), uuid7()
    for n, rid in enumerate((a, b, c)):
        other.push([other.op(rid, "create", person(1 + 2 * n, "张三"))])
    boss = platform.client("chen")
    url = f"{platform.url}/v1/reviews"
    items = boss.http.get(url, headers=boss.headers, timeout=30).json()["reviews"]
    (cb,) = [r["id"] for r in items if {r["record_id"], r["other_id"]} == {b, c}]
    entered, release = _hold_decisions(monkeypatch)
    with ThreadPoolExecutor(2) as pool:
        decided = pool.submit(_decide_same, platform, b, a)
        try:
            assert entered.wait(30)
            second = pool.submit(
                boss.http.post,
                f"{url}/{cb}",
                json={"decision": "same"},
                headers=boss.headers,
                timeout=60,
            )
            _wait_for_a_lock_wait(platform, second)
        finally:
            release.set()
        decided.result(timeout=30)
        resp = second.result(timeout=30)
    assert resp.status_code == 200, resp.text
    assert resp.json()["merged_into"] == a
    assert {other.record(x).json()["id"] for x in (a, b, c)} == {a}


def test_a_supervisor_sees_their_reviews_behind_thousands_of_another_community(
    platform: Platform,
) -> None:
    """The review list is cut to the caller's scope; the cut must not come after a fixed
    number of rows of everyone's: 250 look-alikes registered in 和平社区 first open more
    than 4 000 reviews, and 幸福社区's supervisor still sees the one pair of their own."""
    import datetime as dt

    zhao, wang = platform.client("zhao"), platform.client("wang")
    crowd = [
        zhao.op(
            uuid7(),
            "create",
            {
                **resident(grid=GRID_C, seq=n, birth=dt.date(1990, 1, 1)),
                "_status": "complete",
            },
        )
        for n in range(250)
    ]
    zhao.push(crowd)
    a, b = uuid7(), uuid7()
    wang.push([wang.op(a, "create", person(1, "李四"))])
    wang.push([wang.op(b, "create", person(3, "李四"))])
    with platform.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(db.reviews)).scalar_one() > 4000
    boss = platform.client("chen")
    items = boss.http.get(f"{platform.url}/v1/reviews", headers=boss.headers, timeout=60)
    assert [(r["record_id"], r["other_id"]) for r in items.json()["reviews"]] == [(b, a)]


def test_a_resolve_of_a_record_merged_away_since_the_page_was_shown_is_refused(
    platform: Platform,
) -> None:
    """The supervisor looks at b's phone conflict and picks 13911110001, the number waiting
    (13911110002 is provisional); meanwhile b is merged into a, whose own phone differs (a
    new conflict on phone: 13800000000 against b's provisional). The resolve names b and the
    version shown, a number a has reached too. It must be refused as stale, not applied to
    a's conflict, whose same side holds 13800000000: a number the supervisor never saw."""
    one, two, other = platform.client("wang"), platform.client("wang"), platform.client("wang")
    a, b = uuid7(), uuid7()
    other.push([other.op(a, "create", {**person(1, "张三"), "phone": "13800000000"})])
    other.push([other.op(a, "update", {"occupation": "教师"}, base_version=1)])  # a: v2
    one.push([one.op(b, "create", person(3, "张三"))])
    one.push([one.op(b, "update", {"phone": "13911110001"}, base_version=1)])
    (r,) = two.push([two.op(b, "update", {"phone": "13911110002"}, base_version=1)])
    assert r["status"] == "conflict" and r["version"] == 3
    shown = {c["field"]: c for c in other.record(b).json()["conflict"]}["phone"]
    picked = "incoming" if shown["incoming"] == "13911110001" else "server"
    assert shown[picked] == "13911110001" != shown["provisional"]
    _decide_same(platform, b, a)
    assert other.record(a).json()["version"] == 3
    boss = platform.client("chen")
    resp = boss.http.post(
        f"{platform.url}/v1/console/conflicts/{b}",
        json={"version": 3, "choices": {"phone": {"side": picked}}},
        headers=boss.headers,
        timeout=30,
    )
    held = other.record(a).json()
    assert resp.status_code == 409, (resp.text, held["data"]["phone"])
    assert held["version"] == 3 and held["data"]["phone"] == "13800000000"


def test_a_device_resolve_of_a_record_merged_away_since_is_stale(platform: Platform) -> None:
    """As in the console: a worker resolved b's phone conflict (version 3) on a device that
    had not heard b was merged into a; a is at version 3 too. The resolve must be refused
    stale (its version is b's), not clear a's own phone conflict with the worker's pick."""
    one, two, other = platform.client("wang"), platform.client("wang"), platform.client("wang")
    a, b = uuid7(), uuid7()
    other.push([other.op(a, "create", {**person(1, "张三"), "phone": "13800000000"})])
    other.push([other.op(a, "update", {"occupation": "教师"}, base_version=1)])  # a: v2
    one.push([one.op(b, "create", person(3, "张三"))])
    one.push([one.op(b, "update", {"phone": "13911110001"}, base_version=1)])
    (r,) = two.push([two.op(b, "update", {"phone": "13911110002"}, base_version=1)])
    assert r["status"] == "conflict" and r["version"] == 3
    _decide_same(platform, b, a)
    assert other.record(a).json()["version"] == 3
    (r,) = one.push([one.op(b, "resolve", {"phone": "13911110001"}, base_version=3)])
    held = other.record(a).json()
    assert r["status"] == "rejected" and r["reason"]["code"] == "stale", (r, held["data"])
    assert held["version"] == 3 and "phone" in {c["field"] for c in held["conflict"]}


def _merge_houses_held(
    platform: Platform, formset: FormSet, dup: str, canon: str
) -> tuple[Future[None], threading.Event, threading.Event]:
    """A supervisor's merge of house ``dup`` into ``canon`` (as "same" does), stopped inside
    its transaction after rewriting the references it found, until ``release`` is set;
    ``entered`` says it got there. Runs in a thread of its own."""
    entered, release = threading.Event(), threading.Event()
    boss = auth.User("chen", "supervisor", None, None)

    def merge() -> None:
        with db.write(platform.engine) as conn:
            tx = Tx(conn)
            tx.load_many(sorted([dup, canon]))  # locked, as reviews.decide does
            old, held = tx.load(dup), tx.load(canon)
            assert old is not None and held is not None
            form = formset.form("house")
            reviews._merge_pair(tx, formset, form, old, held, boss, auth.iso(auth.now()))
            entered.set()
            assert release.wait(30)
            tx.finish()

    return ThreadPoolExecutor(1).submit(merge), entered, release


def _until_done_or_waiting(platform: Platform, work: Future[Any]) -> None:
    """Until ``work`` is done or a PostgreSQL backend waits for a lock."""
    watcher = _watcher(platform)
    waits = select(func.count()).select_from(text("pg_stat_activity"))
    waits = waits.where(text("wait_event_type = 'Lock'"))
    deadline = time.monotonic() + 30
    try:
        with watcher.connect() as conn:
            while not work.done() and not conn.execute(waits).scalar_one():
                assert time.monotonic() < deadline, "neither done nor waiting"
                time.sleep(0.02)
    finally:
        watcher.dispose()


def test_a_reference_pushed_while_its_house_is_merged_away_names_the_held_house(
    platform: Platform, formset: FormSet
) -> None:
    """PostgreSQL: a supervisor merges house h2 into h1 and, inside that transaction, has
    rewritten the references it found; a device pushes a new resident living in h2 then. The
    push read no alias (none committed) and took no lock on h2: the resident was stored
    naming the merged-away house, which no later rewrite looks for."""
    if platform.engine.dialect.name != "postgresql":
        pytest.skip("SQLite writers start one at a time (BEGIN IMMEDIATE): no such window")
    c = platform.client("wang")
    h1, h2, rid = uuid7(), uuid7(), uuid7()
    c.push(
        [
            c.op(h1, "create", house("H-7"), form="house"),
            c.op(h2, "create", house("H-8"), form="house"),
        ]
    )
    merging, entered, release = _merge_houses_held(platform, formset, h2, h1)
    with ThreadPoolExecutor(1) as pool:
        try:
            assert entered.wait(30)
            op = c.op(rid, "create", {**person(9, "赵六"), "house_ref": h2})
            pushed = pool.submit(c.push, [op])
            _until_done_or_waiting(platform, pushed)
        finally:
            release.set()
        merging.result(timeout=30)
        (r,) = pushed.result(timeout=30)
    assert r["status"] == "applied", r
    assert c.record(rid).json()["data"]["house_ref"] == h1


def test_a_merge_waits_for_a_push_naming_the_house_and_rewrites_its_reference(
    platform: Platform, formset: FormSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL, the other order: the push has read its references (h2 live, no alias)
    and is held before it writes; the merge of h2 into h1 starts then. The merge must wait
    for the push (its lock on h2), so that its search for references finds the pushed
    resident; without that lock it searched before the resident was committed."""
    if platform.engine.dialect.name != "postgresql":
        pytest.skip("SQLite writers start one at a time (BEGIN IMMEDIATE): no such window")
    from sync.server.service import Service

    c = platform.client("wang")
    h1, h2, rid = uuid7(), uuid7(), uuid7()
    c.push(
        [
            c.op(h1, "create", house("H-7"), form="house"),
            c.op(h2, "create", house("H-8"), form="house"),
        ]
    )
    read, go = threading.Event(), threading.Event()
    prefetch = Service._prefetch

    def held(self: Service, *args: Any, **kwargs: Any) -> Any:
        out = prefetch(self, *args, **kwargs)
        read.set()
        assert go.wait(30)
        return out

    monkeypatch.setattr(Service, "_prefetch", held)
    with ThreadPoolExecutor(1) as pool:
        op = c.op(rid, "create", {**person(9, "赵六"), "house_ref": h2})
        pushed = pool.submit(c.push, [op])
        try:
            assert read.wait(30)
            merging, entered, release = _merge_houses_held(platform, formset, h2, h1)
            release.set()
            _until_done_or_waiting(platform, merging)
        finally:
            go.set()
        (r,) = pushed.result(timeout=30)
        merging.result(timeout=30)
    assert r["status"] == "applied", r
    assert c.record(rid).json()["data"]["house_ref"] == h1


def test_only_a_push_naming_references_locks_them(platform: Platform) -> None:
    """The lock on referenced records costs a statement only for a chunk whose ops name
    a record in a reference field (PostgreSQL; SQLite has one writer and takes none)."""
    from tests.sync.conftest import statements_run

    c = platform.client("wang")
    h1 = uuid7()
    c.push([c.op(h1, "create", house("H-7"), form="house")])
    with statements_run(platform.engine) as plain:
        c.push([c.op(uuid7(), "create", person(9, "赵六"))])
    with statements_run(platform.engine) as referring:
        c.push([c.op(uuid7(), "create", {**person(11, "钱七"), "house_ref": h1})])
    locks = [s for s in referring if "FOR KEY SHARE" in s]
    assert not [s for s in plain if "FOR KEY SHARE" in s]
    assert len(locks) == (1 if platform.engine.dialect.name == "postgresql" else 0), locks
