"""Fault injection with the real server: answers lost after the server committed, requests
duplicated and reordered, a link that drops, a client cancelled or killed between chunks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from app.core.forms import FormSet
from sync import replica
from sync.client import NetworkError
from tests.factories import resident
from tests.sync import devicekit
from tests.sync.devicekit import (
    PASSWORD,
    FaultAdapter,
    faulty_session,
    is_pull,
    is_push,
    nth,
    server_rows,
)
from tests.sync.located import LOCATED_FORMS, located, location

db_url = devicekit.db_url  # fixture
devices = devicekit.devices  # fixture


def _versions(platform: Any) -> list[tuple[str, int]]:
    return sorted((r.record_id, r.version) for r in server_rows(platform, "record_versions"))


def _outbox(dev: Any) -> list[tuple[str, str]]:
    rows = dev.store.conn.execute("SELECT state, result FROM outbox ORDER BY seq").fetchall()
    return [(state, json.loads(result)["status"] if result else "") for state, result in rows]


def test_lost_answer_after_commit_is_retried_as_duplicate_op(devices: Any, platform: Any) -> None:
    adapter = FaultAdapter(after=nth(is_push, 1))
    (a,) = devices(1, session=faulty_session(adapter))
    record = a.save("resident", resident(seq=71))
    a.edit(record.id, phone="13600000000")
    summary = a.sync()
    assert adapter.lost == [("POST", "/v1/push")]
    assert adapter.sent.count(("POST", "/v1/push")) == 2
    assert summary.applied == 2 and summary.rejected == 0
    assert _outbox(a) == [("applied", "duplicate_op"), ("applied", "duplicate_op")]
    assert _versions(platform) == [(record.id, 1), (record.id, 2)]  # nothing applied twice
    got = a.get(record.id)
    assert got.server_version == 2 and not got.dirty and got.data["phone"] == "13600000000"


def test_duplicated_requests_change_nothing(devices: Any, platform: Any) -> None:
    adapter = FaultAdapter(duplicate=lambda r: is_push(r) or is_pull(r))
    (a,) = devices(1, session=faulty_session(adapter))
    records = [a.save("resident", resident(seq=i)) for i in (81, 83, 85)]
    a.edit(records[0].id, phone="13500000000")
    a.store.delete(records[1].id, author="wang")
    summary = a.sync(batch=2)
    assert summary.applied == 5 and summary.rejected == 0
    assert adapter.sent.count(("POST", "/v1/push")) == 6  # three batches, each sent twice
    assert {s for s, _ in _outbox(a)} == {"applied"}
    assert len(_versions(platform)) == 5
    assert a.get(records[1].id).deleted and a.store.count(dirty=True) == 0


def test_reordered_batches_end_in_the_device_state(
    devices: Any, platform: Any, tmp_path: Path, formset: FormSet
) -> None:
    (a,) = devices(1)
    record = a.save("resident", resident(seq=91, phone="13000000001"))
    a.edit(record.id, phone="13000000002")
    a.edit(record.id, name="王小二")
    ops = replica.next_batch(a.store, 0, 10)
    # an earlier run's requests reached the server out of order and their answers were lost
    early = [a.client.push([op.wire]).results[0] for op in reversed(ops)]
    # updates before their create: refused as retryable (not remembered), the create applied
    assert [(r.status, r.reason.retryable if r.reason else None) for r in early] == [
        ("rejected", True),
        ("rejected", True),
        ("applied", None),
    ]
    summary = a.sync()
    assert summary.applied == 3 and summary.conflicts == 0
    assert _outbox(a) == [
        ("applied", "duplicate_op"),
        ("applied", "applied"),
        ("applied", "applied"),
    ]
    assert _versions(platform) == [(record.id, 1), (record.id, 2), (record.id, 3)]
    got = a.get(record.id)
    assert got.data["phone"] == "13000000002" and got.data["name"] == "王小二"
    assert got.conflict is None and not got.dirty
    (b,) = devices(1)
    b.sync()
    assert b.get(record.id).data == got.data


def test_link_dropping_mid_push_resumes_without_double_apply(devices: Any, platform: Any) -> None:
    calls = {"n": 0}

    def drop_second_batch_for_good(request: Any) -> bool:
        if is_push(request):
            calls["n"] += 1
            return calls["n"] >= 2  # the first batch arrives, the link dies for the second
        return False

    adapter = FaultAdapter(before=drop_second_batch_for_good)
    (a,) = devices(1, session=faulty_session(adapter))
    for i in range(101, 107):
        a.save("resident", resident(seq=i))
    with pytest.raises(NetworkError):
        a.sync(batch=3)
    states = [s for s, _ in _outbox(a)]
    assert states == ["applied"] * 3 + ["pending"] * 3  # each answered batch was persisted
    adapter.before = lambda _r: False
    summary = a.sync(batch=3)
    assert summary.pushed == 3 and summary.applied == 3 and summary.pulled == 6
    assert len(_versions(platform)) == 6


def test_cancelled_between_pull_chunks_resumes_from_the_cursor(devices: Any) -> None:
    (a,) = devices(1)
    a.store.insert_many("resident", [(None, resident(seq=i), "draft") for i in range(120, 130)])
    a.sync()
    (b,) = devices(1)
    chunks = {"n": 0}

    def after_first_chunk(phase: str, done: int, _total: int) -> None:
        if phase == "pull" and done:
            chunks["n"] += 1

    summary = b.sync(chunk=4, progress=after_first_chunk, cancel=lambda: chunks["n"] >= 1)
    assert summary.cancelled and summary.pulled == 4
    assert b.store.count() == 4
    cursor = int(b.store.meta(replica.CURSOR_KEY))
    assert cursor > 0
    summary = b.sync(chunk=4)
    assert summary.pulled == 6 and not summary.cancelled  # only what was missing
    assert b.store.count() == 10


def test_link_dropping_between_chunks_keeps_the_applied_chunk(devices: Any) -> None:
    (a,) = devices(1)
    a.store.insert_many("resident", [(None, resident(seq=i), "draft") for i in range(140, 150)])
    a.sync()
    adapter = FaultAdapter(before=nth(is_pull, *range(2, 50)))
    (b,) = devices(1, session=faulty_session(adapter))
    with pytest.raises(NetworkError):
        b.sync(chunk=3)
    assert b.store.count() == 3 and int(b.store.meta(replica.CURSOR_KEY)) > 0
    adapter.before = lambda _r: False
    assert b.sync(chunk=3).pulled == 7
    assert b.store.count() == 10


@pytest.mark.parametrize("commit_every", [1, 5000])
def test_process_killed_between_chunks_resumes(
    devices: Any, platform: Any, tmp_path: Path, formset: FormSet, commit_every: int
) -> None:
    """Killed after two chunks of four: committed per chunk, both are kept; committed per
    group (the default), the group is lost as a whole. Either way the next run completes."""
    (a,) = devices(1)
    a.store.insert_many("resident", [(None, resident(seq=i), "draft") for i in range(160, 171)])
    a.sync()
    store_path = tmp_path / "killed.sqlite"
    script = textwrap.dedent(
        f"""
        import os
        from app.core.store import Store
        from sync.client import Client
        from sync.session import SyncSession
        store = Store({str(store_path)!r})
        store.save("resident", {json.dumps(resident(seq=171), ensure_ascii=False)})
        client = Client({platform.url!r}, store.device_id)
        client.login("wang", {PASSWORD!r})
        def progress(phase, done, total):
            if phase == "pull" and done >= 8:
                os._exit(9)  # killed: no cleanup, no commit beyond what is done
        SyncSession(store, client, chunk=4, commit_every={commit_every}, progress=progress).run()
        """
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=120)
    assert proc.returncode == 9, proc.stderr.decode()[-2000:]
    from app.core.store import Store

    store = Store(store_path, formset)
    try:
        kept = 8 if commit_every == 1 else 0  # two chunks, or nothing of the open group
        assert store.count() == kept + 1  # + its own record
        cursor_then = int(store.meta(replica.CURSOR_KEY, "0") or 0)
        assert (cursor_then > 0) == (kept > 0)
        from sync.client import Client
        from sync.session import SyncSession
        from tests.sync.devicekit import no_wait

        client = Client(platform.url, store.device_id, retry=no_wait())
        client.login("wang", PASSWORD)
        summary = SyncSession(store, client, chunk=4).run()
        client.close()
        assert summary.pushed == 0  # its op was acknowledged before the kill
        assert int(store.meta(replica.CURSOR_KEY)) > cursor_then
        assert store.count() == 12 and store.count(dirty=True) == 0
    finally:
        store.close()


def test_a_cursor_ahead_of_a_replaced_platform_pulls_from_the_start(devices: Any) -> None:
    (a,) = devices(1)
    a.save("resident", resident(seq=181))
    a.sync()
    a.store.set_meta(replica.CURSOR_KEY, "999999")  # the platform was restored from a backup
    summary = a.sync()
    assert summary.pulled == 1 and int(a.store.meta(replica.CURSOR_KEY)) < 999999


# -- houses, units and addresses with a location ------------------------------------------------


def _located_work(dev: Any, formset: FormSet) -> list[str]:
    """One located house, unit and address (as the editor stores them), each moved once."""
    ids = []
    for i, form in enumerate(LOCATED_FORMS, 1):
        record = dev.save(form, located(formset, form, i), status="complete")
        dev.edit(record.id, location=location(formset, 10 + i))
        ids.append(record.id)
    return ids


def _same_on_the_platform(dev: Any, devices: Any, ids: list[str]) -> None:
    (other,) = devices(1)
    other.sync()
    for record_id in ids:
        mine, theirs = dev.get(record_id), other.get(record_id)
        assert theirs.data == mine.data and "gk3" in theirs.data["location"]
        assert (theirs.server_version, mine.server_version, mine.dirty) == (2, 2, False)


def test_lost_answer_with_located_records_is_retried_as_duplicate_op(
    devices: Any, platform: Any, formset: FormSet
) -> None:
    adapter = FaultAdapter(after=nth(is_push, 1))
    (a,) = devices(1, session=faulty_session(adapter))
    ids = _located_work(a, formset)
    summary = a.sync()
    assert adapter.lost == [("POST", "/v1/push")]
    assert summary.applied == 6 and summary.rejected == 0
    assert _outbox(a) == [("applied", "duplicate_op")] * 6
    assert _versions(platform) == sorted((rid, v) for rid in ids for v in (1, 2))
    _same_on_the_platform(a, devices, ids)


def test_duplicated_requests_with_located_records_change_nothing(
    devices: Any, platform: Any, formset: FormSet
) -> None:
    adapter = FaultAdapter(duplicate=lambda r: is_push(r) or is_pull(r))
    (a,) = devices(1, session=faulty_session(adapter))
    ids = _located_work(a, formset)
    summary = a.sync(batch=4)
    assert summary.applied == 6 and summary.rejected == 0
    assert adapter.sent.count(("POST", "/v1/push")) == 4  # two batches, each sent twice
    assert len(_versions(platform)) == 6
    _same_on_the_platform(a, devices, ids)


def test_link_dropping_mid_push_of_located_records_resumes(
    devices: Any, platform: Any, formset: FormSet
) -> None:
    calls = {"n": 0}

    def drop_after_first_batch(request: Any) -> bool:
        if is_push(request):
            calls["n"] += 1
            return calls["n"] >= 2
        return False

    adapter = FaultAdapter(before=drop_after_first_batch)
    (a,) = devices(1, session=faulty_session(adapter))
    ids = _located_work(a, formset)
    with pytest.raises(NetworkError):
        a.sync(batch=3)
    assert [s for s, _ in _outbox(a)] == ["applied"] * 3 + ["pending"] * 3
    adapter.before = lambda _r: False
    summary = a.sync(batch=3)
    assert (summary.pushed, summary.applied, summary.rejected) == (3, 3, 0)
    assert len(_versions(platform)) == 6
    _same_on_the_platform(a, devices, ids)
