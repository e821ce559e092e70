"""The push overlaps the server (issue 17): while batch k is in flight the device reads the
next batch; once k is answered 2xx, the next one is sent and k's answers are recorded
meanwhile. Still one request at a time and in order; a refusal sends nothing more before it is
handled; and the overlapped push sends and records exactly what the batch-after-batch one does
(property test with a scripted server answering every kind of result and refusal)."""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from app.core.forms import FormSet
from app.core.store import Store
from sync import replica
from sync.client import ProtocolError
from sync.protocol import OpResult, PushResponse, Reason
from sync.session import SyncSession
from tests.sync import devicekit
from tests.sync.test_push_bulk_property import ANSWERS, HELD, POOL, _device, _rows
from tests.sync.test_push_window import _fill

db_url = devicekit.db_url  # fixture: SQLite only, the subject is the client
devices = devicekit.devices  # fixture

WAIT = 5.0  # seconds a blocked push waits for what it expects before giving up


class _Watch:
    """Wraps ``client.push`` and ``replica.record_results``/``set_aside``: which request is in
    flight when each batch's answers are recorded, and the order of requests and set-asides."""

    def __init__(self, dev: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.lock = threading.Condition()
        self.expect_flights = 0  # the first n recordings wait (up to WAIT) for a request
        self.flying = 0
        self.most_flying = 0
        self.events: list[str] = []
        self.recorded_in_flight: list[bool] = []
        self.overlapped = threading.Event()
        self.real_push = dev.client.push
        self.real_record = replica.record_results
        self.real_set_aside = replica.set_aside
        monkeypatch.setattr(replica, "record_results", self.record)
        monkeypatch.setattr(replica, "set_aside", self.set_aside)

    def record(self, store: Store, ops: Any, results: Any, **kw: Any) -> Any:
        with self.lock:
            if len(self.recorded_in_flight) < self.expect_flights:  # give its thread time
                self.lock.wait_for(lambda: self.flying > 0, WAIT)
            in_flight = self.flying > 0
            self.recorded_in_flight.append(in_flight)
            self.events.append(f"record {len(ops)}")
        if in_flight:
            self.overlapped.set()
        return self.real_record(store, ops, results, **kw)

    def set_aside(self, store: Store, op: Any, *args: Any) -> None:
        self.events.append(f"set_aside {op.seq}")
        self.real_set_aside(store, op, *args)

    def enter(self, ops: Any) -> None:
        with self.lock:
            self.flying += 1
            self.lock.notify_all()
            self.most_flying = max(self.most_flying, self.flying)
            self.events.append(f"push {len(ops)}")

    def leave(self) -> None:
        with self.lock:
            self.flying -= 1


def test_the_next_batch_is_sent_while_the_last_answers_are_recorded(
    devices: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each request after the first is held (up to ``WAIT``) until the device records the last
    batch's answers while it is in flight, and each recording but the last waits (up to
    ``WAIT``) for a request to be in flight: batch after batch, the next request was only sent
    once the answers were recorded, so both waited in vain."""
    (dev,) = devices(1)
    _fill(dev, 30)
    watch = _Watch(dev, monkeypatch)
    watch.expect_flights = 2  # batches 1 and 2: the next one is in flight
    sent: list[int] = []

    def push(ops: Any, *rest: Any) -> Any:
        watch.enter(ops)
        try:
            if sent:  # not the first request: hold it until the last answers are recorded
                watch.overlapped.wait(WAIT)
                watch.overlapped.clear()
            sent.append(len(ops))
            return watch.real_push(ops, *rest)
        finally:
            watch.leave()

    dev.client.push = push
    summary = dev.sync(batch=10)
    assert summary.applied == 30 and summary.pushed == 30
    assert sent == [10, 10, 10]
    assert watch.recorded_in_flight == [True, True, False]  # the last: nothing after it
    assert watch.most_flying == 1  # one request at a time
    assert dev.store.outbox.pending_count() == 0


def test_a_refused_batch_sends_nothing_of_the_next_before_its_culprit_is_set_aside(
    devices: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second batch is refused naming its 4th op: the next request goes only after that op
    is set aside, and carries the 3 ops before it (not the batch read ahead during the flight)."""
    (dev,) = devices(1)
    _fill(dev, 30)
    watch = _Watch(dev, monkeypatch)
    requests: list[list[str]] = []

    def push(ops: Any, *rest: Any) -> Any:
        watch.enter(ops)
        try:
            requests.append([op["op_id"] for op in ops])
            if len(requests) == 2:
                raise ProtocolError("invalid_op", "错", "bad", status=422, op_id=ops[3]["op_id"])
            return watch.real_push(ops, *rest)
        finally:
            watch.leave()

    dev.client.push = push
    summary = dev.sync(batch=10)
    assert summary.rejected == 1 and summary.applied == 29
    culprit = requests[1][3]
    (seq,) = dev.store.conn.execute("SELECT seq FROM outbox WHERE op_id = ?", (culprit,)).fetchone()
    # batch 2 went while batch 1's answers were recorded; then its culprit, then the rest
    assert sorted(watch.events[:3]) == ["push 10", "push 10", "record 10"]
    assert watch.events[3:5] == [f"set_aside {seq}", "push 3"]
    assert requests[2] == requests[1][:3]  # the ops before the culprit, alone
    assert all(culprit not in r for r in requests[2:])
    flat = [op_id for r in requests[2:] for op_id in r]
    assert flat == sorted(set(flat), key=flat.index)  # each sent once after the refusal
    assert watch.most_flying == 1
    rejected = dev.store.conn.execute("SELECT op_id FROM outbox WHERE state = 'rejected'")
    assert [r[0] for r in rejected] == [culprit]


# -- the overlapped push against the batch-after-batch one ------------------------------------


class _Scripted:
    """A server that answers each op by its place in the outbox (``answers``), refuses the
    first request carrying an op of ``refuse`` naming it, and any request of more than
    ``most`` ops as too large. Keeps every request sent."""

    def __init__(
        self, order: list[str], answers: list[tuple[str, int]], refuse: set[int], most: int
    ) -> None:
        self.place = {op_id: n for n, op_id in enumerate(order)}
        self.answers, self.refuse, self.most = answers, set(refuse), most
        self.requests: list[str] = []
        self.protocol, self.server_info = 1, None

    def has_feature(self, name: str) -> bool:
        return False

    def push(self, ops: Any, *rest: Any) -> PushResponse:
        self.requests.append(json.dumps(ops, sort_keys=True))
        if len(ops) > self.most:
            raise ProtocolError("too_large", "太大", "too large", status=413)
        for n, op in enumerate(ops):
            if self.place[op["op_id"]] in self.refuse:
                self.refuse.discard(self.place[op["op_id"]])
                raise ProtocolError("invalid_op", "错", "bad", status=422, index=n)
        return PushResponse(results=[self._answer(op) for op in ops])

    def _answer(self, op: dict[str, Any]) -> OpResult:
        n = self.place[op["op_id"]]
        kind, pick = self.answers[n % len(self.answers)]
        status: Any
        into = POOL[pick] if kind == "merged_new" else HELD[pick] if kind == "merged_held" else None
        reason = None
        status = "merged_into" if into else kind
        if kind in ("retry", "rejected"):
            status = "rejected"
            reason = Reason(code="x", message_zh="错", message_en="bad", retryable=kind == "retry")
        return OpResult(
            op_id=op["op_id"],
            status=status,
            record_id=into or op["record_id"],
            merged_into=into,
            version=None if reason else 100 - n,
            reason=reason,
        )


def _note(calls: list[tuple[str, int, int]]) -> Any:
    return lambda *c: calls.append(c)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    records=st.integers(1, 6),
    edits=st.lists(st.integers(0, 5), max_size=6),
    answers=st.lists(ANSWERS, min_size=1, max_size=8),
    refuse=st.sets(st.integers(0, 11), max_size=3),
    batch=st.integers(1, 4),
    most=st.integers(1, 8),
)
@example(records=4, edits=[], answers=[("applied", 0)], refuse=set(), batch=2, most=8)
@example(  # a rejection, then an op of the same record in the batch read ahead
    records=2,
    edits=[0, 1, 0],
    answers=[("rejected", 0), ("applied", 0)],
    refuse=set(),
    batch=1,
    most=8,
)
def test_the_overlapped_push_sends_and_records_what_the_plain_one_does(
    formset: FormSet,
    records: int,
    edits: list[int],
    answers: list[tuple[str, int]],
    refuse: set[int],
    batch: int,
    most: int,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        plain_path, overlap_path = Path(tmp) / "plain.sqlite", Path(tmp) / "overlap.sqlite"
        _device(plain_path, formset, records, edits)
        shutil.copy(plain_path, overlap_path)
        outcome = []
        for path, overlap in ((plain_path, False), (overlap_path, True)):
            store = Store(path, formset)
            try:
                sql = "SELECT op_id FROM outbox ORDER BY seq"
                server = _Scripted([r[0] for r in store.conn.execute(sql)], answers, refuse, most)
                client: Any = server
                calls: list[tuple[str, int, int]] = []
                session = SyncSession(
                    store, client, batch=batch, overlap=overlap, progress=_note(calls)
                )
                assert session._push()
                summary = session.summary.as_dict()
                outcome.append((server.requests, calls, summary, _rows(store)))
            finally:
                store.close()
        assert outcome[0] == outcome[1]


def test_a_push_the_platform_renames_reads_no_batch_ahead_it_would_drop(
    devices: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second device pushes the 30 residents the first one did: every answer merges into the
    platform's record (a new id), which rewrites later ops, so a batch read ahead is dropped
    and read again. After such an answer the next batch is not read ahead: one read ahead
    (during the first request) instead of one per request."""
    first, second = devices(2)
    _fill(first, 30)
    assert first.sync(batch=10).applied == 30
    _fill(second, 30)
    reads: list[int] = []
    real = replica.read_ahead

    def read_ahead(store: Store, after: int, limit: int) -> Any:
        reads.append(after)
        return real(store, after, limit)

    monkeypatch.setattr(replica, "read_ahead", read_ahead)
    summary = second.sync(batch=10)
    assert summary.merged == 30 and summary.pushed == 30
    assert len(reads) == 1
    assert second.store.outbox.pending_count() == 0
