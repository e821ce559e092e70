"""Long work off the UI thread: a runner with progress, cancel and results by signal.

A task is a plain function ``fn(ctx) -> result`` that runs in a pool thread. It never sees a
widget: it reports through ``ctx.progress(done, total)``, checks ``ctx.cancelled`` (or calls
``ctx.check()``), and reads or writes through ``ctx.store()``, its OWN ``Store`` on the same
file (a sqlite connection belongs to one thread at a time). The worker emits signals of a
bridge object that lives in the GUI thread, so every public signal of ``TaskHandle`` is
emitted, and every slot connected to it runs, in the GUI thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal, Slot
from PySide6.QtWidgets import QProgressDialog, QWidget

from app.core.forms import FormSet
from app.core.store import Store, driver

log = logging.getLogger(__name__)

PROGRESS_INTERVAL = 0.05  # seconds between progress signals: a busy worker must not flood the UI


class Cancelled(Exception):
    """Raised inside a task (by ``ctx.check()``) when the person pressed Cancel."""


class TaskContext:
    """What a running task may use: progress, cancel state and its own store."""

    def __init__(self, db_path: Path, formset: FormSet, report: Callable[[int, int], None]) -> None:
        self._db_path, self._formset, self._report = db_path, formset, report
        self._cancel = threading.Event()
        self._store: Store | None = None
        self._store_lock = threading.Lock()  # interrupt (GUI thread) vs close (worker)
        self._last = 0.0

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def cancel(self) -> None:
        """Ask the task to stop (thread-safe): a running query is interrupted at once, other
        work stops at its next ``check()``."""
        self._cancel.set()
        with self._store_lock:
            if self._store is not None:
                self._store.interrupt()

    def check(self) -> None:
        """Raise ``Cancelled`` if the person asked to stop."""
        if self._cancel.is_set():
            raise Cancelled

    def progress(self, done: int, total: int) -> None:
        """Report progress (throttled); safe to call as often as you like."""
        now = time.monotonic()
        if done >= total or now - self._last >= PROGRESS_INTERVAL:
            self._last = now
            self._report(int(done), int(total))

    def store(self) -> Store:
        """This task's own Store on the same file, opened on first use, closed at the end."""
        with self._store_lock:
            if self._store is None:
                self._store = Store(self._db_path, self._formset)
            return self._store

    def close(self) -> None:
        with self._store_lock:
            if self._store is not None:
                self._store.close()
                self._store = None


class _Bridge(QObject):
    """One per runner, in the GUI thread: workers emit these (tagged with the task number)
    and Qt queues them to the GUI thread."""

    progress = Signal(int, int, int)  # task, done, total
    result = Signal(int, object)
    error = Signal(int, str)
    stopped = Signal(int)


class TaskHandle(QObject):
    """One running task as the GUI sees it. All signals are emitted in the GUI thread.

    Handles have no Qt parent: the runner holds them until their outcome is delivered, the
    caller may hold them longer. (Deleting per-task QObjects with ``deleteLater`` while a
    runner goes away crashes PySide; plain Python ownership does not.)
    """

    progress = Signal(int, int)  # done, total
    finished = Signal(object)  # the task's return value
    failed = Signal(str)  # a message for the person (never logged: it may hold data)
    cancelled = Signal()
    done = Signal()  # after finished, failed or cancelled

    def __init__(self, name: str, ctx: TaskContext) -> None:
        super().__init__()
        self.name, self._ctx = name, ctx
        self.running = True
        self.outcome: str | None = None  # "finished" | "failed" | "cancelled"

    def cancel(self) -> None:
        """Ask the task to stop; ``cancelled`` follows when it has."""
        self._ctx.cancel()

    @property
    def cancel_requested(self) -> bool:
        return self._ctx.cancelled

    def _deliver(self, outcome: str, *args: object) -> None:
        self.running, self.outcome = False, outcome
        {"finished": self.finished, "failed": self.failed, "cancelled": self.cancelled}[
            outcome
        ].emit(*args)
        self.done.emit()


def _message(exc: Exception) -> str:
    """What to tell the person: the core's bilingual message when it has one."""
    message = getattr(exc, "message", None)
    if callable(message):
        try:
            return f"{message('zh')}\n{message('en')}"
        except TypeError:
            pass
    return str(exc) or type(exc).__name__


def _is_cancel(exc: Exception, ctx: TaskContext) -> bool:
    """A core module's own "cancelled" (transfer) or the interrupted query of a cancelled task."""
    from app.core.transfer import Cancelled as TransferCancelled  # imported late: startup

    if isinstance(exc, TransferCancelled):
        return True
    return ctx.cancelled and isinstance(exc, driver.OperationalError)


class _Job(QRunnable):
    """Runs one task function in a pool thread; reports through the bridge only."""

    def __init__(
        self,
        number: int,
        name: str,
        fn: Callable[[TaskContext], Any],
        ctx: TaskContext,
        bridge: _Bridge,
        finished: threading.Event,
    ) -> None:
        super().__init__()
        self.number, self.name, self.fn, self.ctx = number, name, fn, ctx
        self.bridge, self.finished_event = bridge, finished
        self.setAutoDelete(True)

    def run(self) -> None:  # runs in a pool thread: signals only, never a widget
        n, bridge = self.number, self.bridge
        try:
            value = self.fn(self.ctx)
            if self.ctx.cancelled:
                bridge.stopped.emit(n)
            else:
                bridge.result.emit(n, value)
        except Cancelled:
            bridge.stopped.emit(n)
        except Exception as exc:  # noqa: BLE001 - reported to the person, not swallowed
            if _is_cancel(exc, self.ctx):
                bridge.stopped.emit(n)
            else:
                log.warning("task %s failed: %s", self.name, type(exc).__name__)  # no data
                bridge.error.emit(n, _message(exc))
        finally:
            self.ctx.close()
            self.finished_event.set()


class TaskRunner(QObject):
    """Starts tasks in a thread pool; routes their reports to their handles.

    Call ``cancel_all()`` and ``wait()`` before dropping a runner (the main window does on
    close): a pool cannot be torn down under a running task.
    """

    def __init__(
        self,
        db_path: str | Path,
        formset: FormSet,
        parent: QObject | None = None,
        max_threads: int = 2,
    ) -> None:
        super().__init__(parent)
        self.db_path, self.formset = Path(db_path), formset
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max_threads)
        self._bridge = _Bridge(self)
        queued = Qt.ConnectionType.QueuedConnection
        self._bridge.progress.connect(self._on_progress, queued)
        self._bridge.result.connect(self._on_result, queued)
        self._bridge.error.connect(self._on_error, queued)
        self._bridge.stopped.connect(self._on_stopped, queued)
        self._handles: dict[int, TaskHandle] = {}
        self._events: list[threading.Event] = []
        self._next = 0

    def start(self, fn: Callable[[TaskContext], Any], name: str = "task") -> TaskHandle:
        """Run ``fn(ctx)`` in a pool thread; connect to the handle's signals for the outcome."""
        self._next += 1
        number, bridge = self._next, self._bridge
        ctx = TaskContext(
            self.db_path,
            self.formset,
            lambda done, total: bridge.progress.emit(number, done, total),
        )
        handle = TaskHandle(name, ctx)
        self._handles[number] = handle
        event = threading.Event()
        self._events = [e for e in self._events if not e.is_set()] + [event]
        self.pool.start(_Job(number, name, fn, ctx, bridge, event))
        return handle

    @Slot(int, int, int)
    def _on_progress(self, number: int, done: int, total: int) -> None:
        handle = self._handles.get(number)
        if handle is not None and handle.running:
            handle.progress.emit(done, total)

    def _finish(self, number: int, outcome: str, *args: object) -> None:
        handle = self._handles.pop(number, None)  # this frame keeps it alive while it emits
        if handle is not None:
            handle._deliver(outcome, *args)

    @Slot(int, object)
    def _on_result(self, number: int, value: object) -> None:
        self._finish(number, "finished", value)

    @Slot(int, str)
    def _on_error(self, number: int, message: str) -> None:
        self._finish(number, "failed", message)

    @Slot(int)
    def _on_stopped(self, number: int) -> None:
        self._finish(number, "cancelled")

    @property
    def active(self) -> int:
        """Tasks started whose outcome has not reached the GUI yet."""
        return len(self._handles)

    def cancel_all(self) -> None:
        for handle in list(self._handles.values()):
            handle.cancel()

    def wait(self, timeout: float = 30.0) -> bool:
        """Block until every worker thread has returned (shutdown, tests)."""
        deadline = time.monotonic() + timeout
        return all(e.wait(max(0.0, deadline - time.monotonic())) for e in list(self._events))


def run_with_progress(
    parent: QWidget | None,
    runner: TaskRunner,
    fn: Callable[[TaskContext], Any],
    title: str,
    cancel_text: str,
    name: str = "task",
) -> TaskHandle:
    """Start a task behind a modal progress dialog whose Cancel button really stops it."""
    dialog = QProgressDialog(title, cancel_text, 0, 0, parent)
    dialog.setWindowTitle(title)
    dialog.setWindowModality(Qt.WindowModality.WindowModal)
    dialog.setMinimumDuration(0)
    dialog.setAutoClose(False)
    dialog.setAutoReset(False)
    handle = runner.start(fn, name)

    def on_progress(done: int, total: int) -> None:
        if total > 0:
            dialog.setMaximum(total)
            dialog.setValue(min(done, total))

    handle.progress.connect(on_progress)
    dialog.canceled.connect(handle.cancel)  # the task stops at its next check, then `done`
    handle.done.connect(dialog.close)
    handle.done.connect(dialog.deleteLater)
    dialog.show()
    handle.dialog = dialog  # type: ignore[attr-defined]  # tests and callers may reach it
    return handle


# -- the app's long work, as task functions (they run in the pool thread) ------------------


def import_task(
    path: str | Path, form_id: str, *, author: str = "", lang: str = "zh", strict: bool = False
) -> Callable[[TaskContext], Any]:
    """Import a spreadsheet into the store (one transaction; cancel rolls it all back)."""

    def run(ctx: TaskContext) -> Any:
        from app.core.transfer import import_file

        store = ctx.store()
        return import_file(
            path,
            store.formset.form(form_id),
            store,
            author=author,
            strict=strict,
            lang=lang,
            progress=ctx.progress,
            cancel=lambda: ctx.cancelled,
        )

    return run


def export_task(
    path: str | Path, form_id: str, *, lang: str = "zh", unmasked: bool = False
) -> Callable[[TaskContext], int]:
    """Export a form's records (sensitive values masked); cancel leaves no file behind."""

    def run(ctx: TaskContext) -> int:
        from app.core.store.browse import count_forms
        from app.core.tabular import write_table
        from app.core.transfer import export_rows

        store = ctx.store()
        total = count_forms(store, (form_id,))[form_id]  # a scan, not a title-index walk
        headers, rows = export_rows(
            store.formset.form(form_id), store, unmasked=unmasked, lang=lang
        )

        def watched() -> Any:
            for done, row in enumerate(rows, 1):
                ctx.check()  # raising inside write_table drops its temporary file
                ctx.progress(done, total)
                yield row

        return write_table(path, headers, watched())

    return run


def demo_task(size: int, seed: int = 7) -> Callable[[TaskContext], Any]:
    """Generate the demo community; cancel keeps whole batches and reports ``cancelled``."""

    def run(ctx: TaskContext) -> Any:
        from app.core.demo import generate

        return generate(
            ctx.store(), size=size, seed=seed, progress=ctx.progress, cancel=lambda: ctx.cancelled
        )

    return run
