"""One sync run: push the outbox, then pull until the server has nothing more (no Qt).

Why a session apart from client and replica: it only sequences steps that are each one local
transaction (``replica``) around one HTTP request (``client``), so a run killed at any point —
a dropped link, a closed laptop, a killed process — is resumed by simply running again:
unanswered ops are still ``pending`` and are sent again (the server answers ``duplicate_op``
for those it already applied), and the pull cursor only moves together with the rows it
covers. ``progress(phase, done, total)`` and ``cancel()`` are called between batches;
``total`` is 0 when unknown (pull).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from app.core import ids
from app.core.messages import pick
from app.core.store import Store
from sync import replica
from sync.client import Client, PreparedOps, ProtocolError
from sync.protocol import FEATURE_DEDUP, FEATURE_TASKS, PullResponse, PushResponse
from sync.replica import backfill
from sync.replica import identity as replica_identity

log = logging.getLogger("gridcollect.sync.session")

Progress = Callable[[str, int, int], None]
Cancel = Callable[[], bool]

SIZE_CODES = frozenset({"too_large", "too_many_ops"})
REUSED = "op_id_reused"  # 409: this device id sent other content under an op id (a copy)
DECISIONS = "dedup_decisions"  # the ``field`` of a 4xx naming a duplicate decision (§9.2)
DECISION_BATCH = 500
TASK_RESULTS = "task_results"  # the ``field`` of a 4xx naming a task result (PROTOCOL.md §13.3)
COMMIT_EVERY = 5000  # pulled records per local commit (see _pull_from)
PUSH_BATCH = 1000  # ops per push request when the server takes that many (one transaction)
OLD_PUSH_BATCH = 500  # ... when it did not say (the batch before limits were read)


@dataclass
class SyncSummary:
    """What a run did. ``open_conflicts``: records waiting for a person after the run."""

    pushed: int = 0
    applied: int = 0
    conflicts: int = 0
    merged: int = 0
    rejected: int = 0
    pulled: int = 0
    open_conflicts: int = 0
    # records whose edits the platform refused and has not had since, after the run (not only
    # this run's refusals: they wait until a person corrects the record); of those, the ones
    # refused because their grid was taken away, sent again when it comes back
    open_refused: int = 0
    open_refused_out_of_scope: int = 0
    duration_s: float = 0.0
    deferred: int = 0
    aliases: int = 0
    removed: int = 0
    grids: int = 0  # grids (names, boundaries) the platform sent
    task_results: int = 0  # task results the platform answered
    dedup_decisions: int = 0  # "different" answers the platform answered (PROTOCOL.md §9.2)
    tasks: int = 0  # tasks and task items the platform sent
    new_grids: int = 0  # grids that entered the user's scope, fetched whole in this run
    new_grid_records: int = 0  # records those grids brought (not counted in ``pulled``)
    requeued: int = 0  # set-aside ops and task results queued again: their grid came back
    requests: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    cancelled: bool = False
    new_device: bool = False  # this data dir was found to be a copy and got a new device id

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def text(self, lang: str = "zh") -> str:
        """The run's summary as the CLI prints it and the app shows it; after it, on its own
        line, the notice when the data dir turned out to be a copy and was registered as a new
        device."""
        line = pick(
            lang,
            f"同步完成：推送 {self.pushed} 条（已应用 {self.applied}，冲突 {self.conflicts}，"
            f"合并 {self.merged}，被拒 {self.rejected}），拉取 {self.pulled} 条，"
            f"{self._new_grids_text('zh')}"
            f"待处理冲突 {self.open_conflicts}，{self._refused_text('zh')}"
            f"用时 {self.duration_s:.1f} 秒",
            f"sync done: pushed {self.pushed} (applied {self.applied}, conflicts "
            f"{self.conflicts}, merged {self.merged}, rejected {self.rejected}), pulled "
            f"{self.pulled}, {self._new_grids_text('en')}"
            f"open conflicts {self.open_conflicts}, {self._refused_text('en')}"
            f"{self.duration_s:.1f}s",
        )
        if self.new_device:
            line += "\n" + pick(lang, *replica_identity.NOTICE)
        return line

    def _refused_text(self, lang: str) -> str:
        """Only when refused edits wait: most runs say nothing of it."""
        if not self.open_refused:
            return ""
        if lang == "zh":
            return f"被拒待处理 {self.open_refused}，"
        return f"refused {self.open_refused} waiting, "

    def _new_grids_text(self, lang: str) -> str:
        """Only when grids entered the scope: most runs say nothing of it."""
        if not self.new_grids and not self.new_grid_records:
            return ""
        if lang == "zh":
            return f"新增网格 {self.new_grids} 个（{self.new_grid_records} 条），"
        return f"new grids {self.new_grids} ({self.new_grid_records} records), "


class SyncSession:
    """``SyncSession(store, client).run()``; the client must be logged in."""

    def __init__(
        self,
        store: Store,
        client: Client,
        *,
        batch: int | None = None,
        chunk: int = 1000,
        commit_every: int = COMMIT_EVERY,
        progress: Progress | None = None,
        cancel: Cancel | None = None,
        overlap: bool = True,
    ) -> None:
        self.store = store
        self.client = client
        self.batch = None if batch is None else max(1, batch)  # None: negotiated (_push_window)
        self.chunk = max(1, chunk)
        self.commit_every = max(1, commit_every)
        self.progress = progress or (lambda phase, done, total: None)
        self.cancel = cancel or (lambda: False)
        self.summary = SyncSummary()
        self._reregistered = False
        self.overlap = overlap  # False: each batch read after the last one is recorded

    def run(self) -> SyncSummary:
        """Push, then pull; returns early (``cancelled``) when ``cancel()`` says so. When a
        grid that came back queued set-aside ops again (``SyncSummary.requeued``), push once
        more: the platform gets them (and the "different" answers about them) in this run."""
        started = time.perf_counter()
        before = self.client.stats.requests, self.client.stats.bytes_sent
        received = self.client.stats.bytes_received
        s = self.summary
        try:
            if self.client.protocol is None:
                self.client.info()
            self._adopt_device()
            pushed = self._push() and self._push_decisions()
            if pushed and self._pull() and (not s.requeued or self._push_again()):
                self.store.set_meta(replica.LAST_SYNC_KEY, ids.now_iso())
            else:
                s.cancelled = True
        finally:
            s.open_conflicts = replica.open_conflicts(self.store)
            refused = replica.open_refusals(self.store)
            s.open_refused, s.open_refused_out_of_scope = refused.total, refused.out_of_scope
            s.duration_s = round(time.perf_counter() - started, 3)
            s.requests = self.client.stats.requests - before[0]
            s.bytes_sent = self.client.stats.bytes_sent - before[1]
            s.bytes_received = self.client.stats.bytes_received - received
        log.info(
            "sync %s: pushed=%d applied=%d conflicts=%d merged=%d rejected=%d deferred=%d "
            "pulled=%d new_grids=%d new_grid_records=%d open_conflicts=%d open_refused=%d "
            "(out_of_scope %d) requests=%d %.1fs",
            "cancelled" if s.cancelled else "done",
            s.pushed,
            s.applied,
            s.conflicts,
            s.merged,
            s.rejected,
            s.deferred,
            s.pulled,
            s.new_grids,
            s.new_grid_records,
            s.open_conflicts,
            s.open_refused,
            s.open_refused_out_of_scope,
            s.requests,
            s.duration_s,
        )
        return s

    # -- push ------------------------------------------------------------------------------

    def _push(self) -> bool:
        """Send pending ops oldest first; False if cancelled.

        A whole-request 4xx names one op (PROTOCOL.md §2): it is set aside, answered once. The
        server checks a batch in order and answers the first failure, so the ops before the
        culprit passed every check: they go next, alone, and are applied. The ops after it were
        not checked: the window shrinks until batches pass again and then grows back. Resending
        the whole batch after each bad op made the traffic grow with the square of the bad ops.

        The device's work overlaps the server's: while batch k is in flight (HTTP only, in the
        push thread) the batch after it is read; once k is answered 2xx, that batch is sent
        and k's answers are recorded meanwhile. Still one request at a time, strictly in
        order, each batch's answers in one local transaction, so a stop anywhere loses
        nothing (the server answers a resent op as the first time). Any refusal, or an answer
        that changes what the batch read ahead carries (a rejection, or a new id for a record
        one of its ops names: ``replica.leaves_later_ops``), drops that batch, and the next
        one is not read ahead; a push of records the platform knows (every answer a new id,
        for records the batch read ahead does not name) keeps overlapping. ``cancel()`` is
        asked before each request, so one asked during a batch's ``progress`` stops after the
        next batch.

        Under ``replica.bulk_writes``, as a pull: a push of records the platform knows renames
        every one, and each batch's renames land in the id, key and outbox indexes all over;
        checkpointing after every batch rewrote the same index pages again and again.
        """
        w = _Window(size=self._push_window(), cap=self._push_window())
        w.total = replica.pending_count(self.store)
        tasks_on = self.client.has_feature(FEATURE_TASKS)
        self.progress("push", 0, w.total)
        with (
            replica.bulk_writes(self.store),  # as a pull: a batch's rows land all over indexes
            ThreadPoolExecutor(1, thread_name_prefix="sync-push") as http,  # waits on exit
        ):
            flight: tuple[_Batch, Future[PushResponse]] | None = None
            while True:
                if flight is None:
                    if self.cancel():
                        return False
                    batch = self._read(w.after, w.results_after, w.size, tasks_on, ahead=False)
                    if batch is None or batch.empty:
                        return True
                    flight = batch, http.submit(self._send, batch)
                batch, request = flight
                flight = None
                ahead = self._read_ahead(batch, w, tasks_on)
                try:
                    answer = request.result()
                except ProtocolError as exc:
                    self._refused(exc, batch, w)
                    continue
                stop = False
                w.ahead = self._keeps(batch, answer, ahead)
                if ahead is not None and w.ahead:
                    stop = self.cancel()
                    if not stop:
                        flight = ahead, http.submit(self._send, ahead)
                self._record(batch, answer, w)
                if stop:
                    return False

    def _push_again(self) -> bool:
        """The ops a returning grid queued again, then the answers that waited for their
        records (``pending_decisions``); False if cancelled."""
        return self._push() and self._push_decisions()

    def _push_decisions(self) -> bool:
        """The worker's "different" answers (PROTOCOL.md §9.2), after the ops that create their
        records; False if cancelled. Each answer the platform gives is final, so every
        decision sent leaves the outbox with it; a platform without the feature (older than
        schema 0021) gets none and they wait. A 4xx naming one decision drops that one."""
        if not self.client.has_feature(FEATURE_DEDUP):
            return True
        while True:
            rows = self.store.replica.pending_decisions(DECISION_BATCH)
            if not rows:
                return True  # nothing to send: cancel is asked between batches of work only
            if self.cancel():
                return False
            sent = [r for r in rows if ids.is_uuid(r[1]) and ids.is_uuid(r[2])]
            wires = [
                {"record_id": a, "other_id": b, "decision": "different", "decided_at": at}
                for _seq, a, b, at in sent
            ]
            done = [r[0] for r in rows]
            try:
                if wires:
                    self.client.push_decisions(wires)
            except ProtocolError as exc:
                if exc.field != DECISIONS or exc.index is None or not 0 <= exc.index < len(sent):
                    raise
                log.warning("duplicate decision set aside: %s", exc.code)
                done = [r[0] for r in rows if r not in sent] + [sent[exc.index][0]]
            with self.store.transaction():
                self.store.replica.decisions_answered(done)
            self.summary.dedup_decisions += len(done)

    def _read(
        self, after: int, results_after: int, size: int, tasks_on: bool, *, ahead: bool
    ) -> _Batch | None:
        """The ops and task results for the next request; None when read ahead and an op
        would need completing (``replica.read_ahead``)."""
        if ahead:
            ops = replica.read_ahead(self.store, after, size)
            if ops is None:
                return None
        else:
            ops = replica.next_batch(self.store, after, size)
        results = replica.next_results(self.store, results_after, size) if tasks_on else []
        result_wires = [r.wire for r in results]
        wires = self.client.prepare_push([op.wire for op in ops], result_wires)
        named = replica.names_of(self.store.formset, ops) if ahead else frozenset()
        return _Batch(ops, results, wires, result_wires, named)

    def _read_ahead(self, batch: _Batch, w: _Window, tasks_on: bool) -> _Batch | None:
        """The batch that follows ``batch`` if it is answered 2xx (read while it is in
        flight, with the window it would then have); None when not to be sent ahead."""
        if not self.overlap or not w.ahead:
            return None
        after = batch.ops[-1].seq if batch.ops else w.after
        results_after = batch.results[-1].seq if batch.results else w.results_after
        ahead = self._read(after, results_after, min(w.cap, w.size * 2), tasks_on, ahead=True)
        return None if ahead is None or ahead.empty else ahead

    def _keeps(self, batch: _Batch, answer: PushResponse, ahead: _Batch | None) -> bool:
        """Whether recording ``answer`` leaves ``ahead`` (None: any batch after it) as the
        next read would find it (``replica.leaves_later_ops``)."""
        later, named = (ahead.ops, ahead.named) if ahead is not None else ((), frozenset())
        return replica.leaves_later_ops(
            self.store.formset, batch.ops, answer.results, later, named=named
        )

    def _send(self, batch: _Batch) -> PushResponse:
        """One push request: runs in the push thread, so HTTP only, never the store. Its body
        was encoded when the batch was read (``Client.prepare_push``)."""
        if batch.results:
            return self.client.push(batch.wires, batch.result_wires)
        return self.client.push(batch.wires)  # the call as before tasks (wrappers: ops only)

    def _refused(self, exc: ProtocolError, batch: _Batch, w: _Window) -> None:
        """A whole-request refusal of ``batch``: a copy re-registers, too big halves, a named
        op or result is set aside and the window shrinks; raises what names nothing."""
        ops, results = batch.ops, batch.results
        if exc.code == REUSED and self._reregister():
            return  # the same ops again, as the new device
        if exc.code in SIZE_CODES and len(ops) + len(results) > 1:
            w.cap = w.size = max(1, max(len(ops), len(results)) // 2)  # too big: halve
            return
        bad = _result_culprit(exc, results)
        if bad is not None:
            replica.set_aside_result(self.store, bad, exc.code, exc.message_zh, exc.message_en)
            log.warning("task result %s set aside: %s", bad.op_id, exc.code)
            return
        culprit = _culprit(exc, ops)
        if culprit is None and exc.code in SIZE_CODES and ops:
            culprit = ops[0]  # one op alone is too big: it can never be sent
        if culprit is None:
            raise exc
        replica.set_aside(
            self.store, culprit, exc.code, exc.message_zh, exc.message_en, field=exc.field
        )
        log.warning("op %s set aside: %s", culprit.op_id, exc.code)
        s = self.summary
        s.rejected += 1
        s.pushed += 1
        w.done += 1
        self.progress("push", w.done, w.total)
        checked = ops.index(culprit)  # the ops before it passed the server's checks
        w.size = checked if checked else max(1, len(ops) // 2)

    def _record(self, batch: _Batch, answer: PushResponse, w: _Window) -> None:
        """A 2xx answer: its answers, ops and results, in one local transaction; the window
        moves past the batch and grows back."""
        s = self.summary
        ops, results = batch.ops, batch.results
        with self.store.transaction():
            tally = replica.record_results(self.store, ops, answer.results)
            s.task_results += replica.record_task_answers(self.store, results, answer.task_results)
        if results:
            w.results_after = results[-1].seq
        s.pushed += len(ops)
        s.applied += tally.applied
        s.conflicts += tally.conflicts
        s.merged += tally.merged
        s.rejected += tally.rejected
        s.deferred += tally.deferred
        if ops:
            w.after = ops[-1].seq
        w.done += len(ops)
        w.size = min(w.cap, w.size * 2)
        self.progress("push", min(w.done, max(w.total, w.done)), max(w.total, w.done))

    def _push_window(self) -> int:
        """Ops per push request: the batch asked for, else the most the server takes
        (``limits.max_ops`` in ``GET /v1/info``, PROTOCOL.md §5.1), at most ``PUSH_BATCH``; a
        server that did not say gets ``OLD_PUSH_BATCH``. A request too big in bytes is
        answered 413 and halved, so the size stays bounded by ``max_request_bytes``."""
        info = self.client.server_info
        most = info.limits.max_ops if info is not None else OLD_PUSH_BATCH
        wanted = self.batch if self.batch is not None else PUSH_BATCH
        return max(1, min(wanted, most))

    # -- device identity (PROTOCOL.md §4) ---------------------------------------------------

    def _adopt_device(self) -> None:
        """The login found this data dir is a copy: number new ops under the id it gave."""
        if self.client.device_status == "copied":
            if replica_identity.adopt_device(self.store, self.client.device_id):
                log.warning("this data dir is a copy: registered as a new device")
            self.summary.new_device = True

    def _reregister(self) -> bool:
        """The server has other content under one of our op ids: this data dir is a copy the
        login did not reveal (e.g. a backup restored over the same file). Take a new
        installation nonce, log in again (the server gives a new device id) and go on; False
        when that was tried already in this run."""
        if self._reregistered:
            return False
        self._reregistered = True
        self.client.installation = replica_identity.renew_installation(self.store)
        self.client.relogin()
        self._adopt_device()
        return self.client.device_status == "copied"

    # -- pull ------------------------------------------------------------------------------

    def _pull(self) -> bool:
        """Pull chunks until ``more`` is false; False if cancelled.

        The next chunk is fetched in a background thread while this one is applied (only
        HTTP there; the store is touched by this thread alone), so server time, network delay
        and local writes overlap. Chunks are still applied strictly in order, each with its
        cursor, so stopping anywhere loses nothing.
        """
        user = self.client.user.username if self.client.user else ""
        scope = replica.scope_of(self.client.base_url, user)
        self.progress("pull", 0, 0)
        with replica.bulk_writes(self.store):
            cursor = replica.read_cursor(self.store, scope)
            if cursor == 0:
                backfill.clear(self.store)  # a pull from the start brings every grid whole
            return self._pull_from(scope, cursor) and self._new_grids(scope)

    def _new_grids(self, scope: str) -> bool:
        """Fetch the grids that entered the scope (PROTOCOL.md §8 ``entered``), page by page,
        each page with its own cursor; False if cancelled. After the main pull, so one run at
        quiescence leaves the device with its whole scope."""
        s = self.summary
        for grid in backfill.pending(self.store, scope):
            after = grid.after
            while True:
                if self.cancel():
                    return False
                page = self.client.pull(after, self.chunk, grid=grid.grid, upto=grid.upto)
                tally = backfill.apply_page(self.store, scope, grid.grid, page)
                s.new_grid_records += tally.records
                s.aliases += tally.aliases
                s.grids += tally.grids
                s.tasks += tally.tasks
                s.requeued += tally.requeued
                self.progress("grids", s.new_grid_records, 0)
                if not page.more:
                    break
                after = _advanced(page, after)
            s.new_grids += 1
        return True

    def _pages(self, since: int) -> _Prefetch:
        return _Prefetch(lambda cursor: self.client.pull(cursor, self.chunk), since)

    def _pull_from(self, scope: str, cursor: int) -> bool:
        s = self.summary
        pages = self._pages(cursor)
        seen = replica.Delivered()  # what the run's pages bring twice by design: counted once
        try:
            while True:
                # Pages are applied in groups of ``commit_every`` records per local commit:
                # every commit rewrites the index pages it touched (titles, names, full
                # text), so committing each page wrote the same pages again and again. Each
                # page is applied whole with its cursor; when fetching the next one fails, the
                # pages already applied are committed before the error is raised.
                failed: Exception | None = None
                finished = False
                with self.store.transaction():
                    applied = 0
                    while applied < self.commit_every:
                        if self.cancel():
                            return False
                        try:
                            page = pages.next()
                        except ProtocolError as exc:
                            if exc.code == "cursor_ahead" and cursor != 0:
                                log.warning("the server is behind the stored cursor; pulling again")
                                pages.stop()  # the platform was restored from a backup
                                cursor = 0
                                backfill.clear(self.store)
                                pages = self._pages(cursor)
                                continue
                            failed = exc
                            break
                        except Exception as exc:  # a dropped link: keep what was applied
                            failed = exc
                            break
                        tally = replica.apply_pull(self.store, page, scope, seen=seen)
                        backfill.note(self.store, scope, page.entered)  # same transaction
                        applied += max(1, tally.records)
                        s.pulled += tally.records - tally.again
                        s.aliases += tally.aliases
                        s.removed += tally.removed
                        s.grids += tally.grids
                        s.tasks += tally.tasks
                        cursor = page.cursor
                        finished = not page.more
                        if finished or applied >= self.commit_every:
                            break
                        self.progress("pull", s.pulled, 0)
                self.progress("pull", s.pulled, 0)  # after the commit: what it says is kept
                if failed is not None:
                    raise failed
                if finished:
                    return True
        finally:
            pages.stop()


@dataclass
class _Batch:
    """The ops and task results of one push request."""

    ops: list[replica.OutOp]
    results: list[replica.PendingResult]
    wires: PreparedOps  # the ops as sent, their request encoded when the batch was read
    result_wires: list[dict[str, Any]]
    # read ahead: the records its ops are of or name (``replica.names_of``), worked out then
    named: frozenset[str] = frozenset()

    @property
    def empty(self) -> bool:
        return not self.ops and not self.results


@dataclass
class _Window:
    """Where the push is: the last op and result answered, the ops per request (``size``,
    at most ``cap``), the ops done of ``total``, and whether to read the next batch ahead:
    not after an answer with a rejection, nor after one that made the batch read ahead stale
    (the next is likely the same: each batch read ahead would be dropped and read again)."""

    size: int
    cap: int
    after: int = 0
    results_after: int = 0
    done: int = 0
    total: int = 0
    ahead: bool = True


class _Prefetch:
    """Fetches pull pages one ahead of the consumer, in order, in a daemon thread."""

    def __init__(self, fetch: Callable[[int], PullResponse], since: int, depth: int = 2) -> None:
        self._fetch = fetch
        self._queue: queue.Queue[tuple[PullResponse | None, BaseException | None]] = queue.Queue(
            maxsize=depth
        )
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(since,), name="sync-pull", daemon=True
        )
        self._thread.start()

    def _run(self, since: int) -> None:
        try:
            while not self._stopped.is_set():
                page = self._fetch(since)
                self._put((page, None))
                if not page.more:
                    return
                since = _advanced(page, since)
        except BaseException as exc:  # handed to the consumer, raised there
            self._put((None, exc))

    def _put(self, item: tuple[PullResponse | None, BaseException | None]) -> None:
        while not self._stopped.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def next(self) -> PullResponse:
        page, error = self._queue.get()
        if error is not None:
            raise error
        assert page is not None
        return page

    def stop(self) -> None:
        """Stop fetching; a request in flight finishes in the background and is dropped."""
        self._stopped.set()
        self._thread.join(timeout=1.0)


def _advanced(page: PullResponse, since: int) -> int:
    """The cursor to ask from next after a page with ``more``; a page that says "more" from
    where it was asked (a broken server, a cache in front of it) would be asked for ever,
    the sync lock held all the while: refused."""
    if page.cursor <= since:
        raise ProtocolError(
            "cursor_stuck",
            "服务器的下载位置没有前进，已停止；请联系管理员检查服务器（或其前面的代理缓存）。",
            "the server's pull cursor did not advance; stopped. Ask the administrator to "
            "check the server (or a caching proxy in front of it).",
        )
    return page.cursor


def _result_culprit(
    exc: ProtocolError, results: list[replica.PendingResult]
) -> replica.PendingResult | None:
    """The task result a whole-request 4xx names (PROTOCOL.md §13.3: ``field`` is
    ``task_results`` and ``index`` its position; an ``op_id`` naming one is taken too)."""
    if exc.field == TASK_RESULTS and exc.index is not None and 0 <= exc.index < len(results):
        return results[exc.index]
    return next((r for r in results if exc.op_id and r.op_id == exc.op_id), None)


def _culprit(exc: ProtocolError, ops: list[replica.OutOp]) -> replica.OutOp | None:
    """The op a whole-request 4xx names (by op_id, else by index); none when it names a task
    result (whose ``index`` counts results, not ops)."""
    if exc.field == TASK_RESULTS:
        return None
    if exc.op_id:
        for op in ops:
            if op.op_id == exc.op_id:
                return op
    if exc.index is not None and 0 <= exc.index < len(ops):
        return ops[exc.index]
    return None
