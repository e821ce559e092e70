"""Long work runs in a pool thread; progress, results and cancel come back to the GUI thread."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QThread
from PySide6.QtWidgets import QApplication, QPushButton

from app.core.store import Store
from app.ui import tasks
from tests.factories import resident


@pytest.fixture
def runner(store: Store, qapp):  # noqa: ANN001, ANN201
    r = tasks.TaskRunner(store.path, store.formset)
    yield r
    r.cancel_all()
    assert r.wait(10)


def _in_gui_thread() -> bool:
    return QThread.currentThread() is QApplication.instance().thread()


def test_result_and_progress_arrive_in_the_gui_thread(runner, store, qtbot) -> None:  # noqa: ANN001
    store.save("resident", resident(), status="complete")
    seen: dict[str, object] = {"progress": [], "slot_threads": set()}

    def work(ctx: tasks.TaskContext) -> dict[str, object]:
        for i in range(1, 6):
            ctx.progress(i, 5)
            time.sleep(0.06)  # longer than the throttle, so each step is reported
        own = ctx.store()
        return {
            "thread": threading.get_ident(),
            "count": own.count("resident"),
            "conn": id(own.conn),
        }

    def on_progress(done: int, total: int) -> None:
        seen["progress"].append((done, total))  # type: ignore[union-attr]
        seen["slot_threads"].add(_in_gui_thread())  # type: ignore[union-attr]

    def on_finished(value: dict[str, object]) -> None:
        seen["result"] = value
        seen["slot_threads"].add(_in_gui_thread())  # type: ignore[union-attr]

    handle = runner.start(work, "work")
    handle.progress.connect(on_progress)
    handle.finished.connect(on_finished)
    with qtbot.waitSignal(handle.done, timeout=10_000):
        pass
    result = seen["result"]
    assert isinstance(result, dict)
    assert result["thread"] != threading.get_ident()  # the work ran elsewhere
    assert result["conn"] != id(store.conn)  # on its own connection
    assert result["count"] == 1  # that sees the GUI store's committed data
    assert seen["slot_threads"] == {True}  # every slot ran in the GUI thread
    assert seen["progress"][-1] == (5, 5)  # type: ignore[index]
    assert len(seen["progress"]) >= 3  # type: ignore[arg-type]
    assert handle.outcome == "finished"


def test_a_long_task_stops_when_cancelled(runner, qtbot) -> None:  # noqa: ANN001
    steps: list[int] = []
    total = 2000

    def slow(ctx: tasks.TaskContext) -> int:
        for i in range(total):
            ctx.check()
            steps.append(i)
            ctx.progress(i + 1, total)
            time.sleep(0.005)
        return total

    handle = runner.start(slow, "slow")
    finished: list[object] = []
    handle.finished.connect(finished.append)
    handle.progress.connect(lambda done, _total: handle.cancel())  # cancel at the first report
    with qtbot.waitSignal(handle.cancelled, timeout=10_000):
        pass
    assert handle.outcome == "cancelled"
    assert not finished
    assert 0 < len(steps) < total
    assert runner.wait(5)


def test_a_failing_task_reports_without_crashing(runner, qtbot) -> None:  # noqa: ANN001
    def broken(ctx: tasks.TaskContext) -> None:
        raise ValueError("文件损坏 / broken file")

    handle = runner.start(broken, "broken")
    with qtbot.waitSignal(handle.failed, timeout=10_000) as blocker:
        pass
    assert "broken file" in blocker.args[0]
    assert handle.outcome == "failed"


def test_cancel_button_of_the_progress_dialog_stops_the_task(runner, qtbot) -> None:  # noqa: ANN001
    def slow(ctx: tasks.TaskContext) -> None:
        for i in range(4000):
            ctx.check()
            ctx.progress(i, 4000)
            time.sleep(0.005)

    handle = tasks.run_with_progress(None, runner, slow, "正在处理…", "取消", "slow")
    dialog = handle.dialog  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: dialog.maximum() == 4000, timeout=5_000)  # progress reached the bar
    button = next(b for b in dialog.findChildren(QPushButton) if b.text() == "取消")
    with qtbot.waitSignal(handle.cancelled, timeout=10_000):
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert handle.outcome == "cancelled"


def test_export_task_writes_the_file_and_cancel_leaves_none(
    runner,
    store,
    qtbot,
    tmp_path: Path,  # noqa: ANN001
) -> None:
    for seq in range(1, 40, 2):
        store.save("resident", resident(seq=seq, name=f"张{seq}"), status="complete")
    out = tmp_path / "residents.csv"
    handle = runner.start(tasks.export_task(out, "resident"), "export")
    with qtbot.waitSignal(handle.finished, timeout=10_000) as blocker:
        pass
    assert blocker.args[0] == 20
    assert len(out.read_text(encoding="utf-8-sig").splitlines()) == 21

    cancelled_out = tmp_path / "cancelled.csv"

    def cancelled_export(ctx: tasks.TaskContext) -> int:
        ctx.cancel()  # as if Cancel was pressed before the first row was written
        return tasks.export_task(cancelled_out, "resident")(ctx)

    handle = runner.start(cancelled_export, "export")
    with qtbot.waitSignal(handle.cancelled, timeout=10_000):
        pass
    assert not cancelled_out.exists()
    assert not list(tmp_path.glob(".cancelled.csv*"))


def test_demo_task_writes_through_its_own_store(runner, store, qtbot) -> None:  # noqa: ANN001
    handle = runner.start(tasks.demo_task(300, seed=3), "demo")
    progress: list[tuple[int, int]] = []
    handle.progress.connect(lambda d, t: progress.append((d, t)))
    with qtbot.waitSignal(handle.finished, timeout=60_000) as blocker:
        pass
    summary = blocker.args[0]
    assert not summary.cancelled
    assert store.count("resident") == summary.counts["resident"] > 0  # visible to the GUI store
    assert progress and progress[-1][0] == progress[-1][1]


def _residents_csv(path: Path, count: int) -> Path:
    from tests.bench.common import resident_rows, write_csv

    return write_csv(path, resident_rows(count, seed=5))


def test_import_task_imports_and_a_cancel_rolls_everything_back(
    runner,
    store,
    qtbot,
    tmp_path: Path,  # noqa: ANN001
) -> None:
    csv_file = _residents_csv(tmp_path / "residents.csv", 30)

    def cancelled_import(ctx: tasks.TaskContext) -> object:
        ctx.cancel()  # Cancel pressed while the rows were being read
        return tasks.import_task(csv_file, "resident", author="W1")(ctx)

    handle = runner.start(cancelled_import, "import")
    with qtbot.waitSignal(handle.cancelled, timeout=20_000):
        pass
    assert store.count("resident") == 0  # one transaction: nothing stays

    handle = runner.start(tasks.import_task(csv_file, "resident", author="W1"), "import")
    with qtbot.waitSignal(handle.finished, timeout=20_000) as blocker:
        pass
    report = blocker.args[0]
    assert report.imported and report.created == 30
    assert store.count("resident") == 30


def test_an_import_task_checks_a_big_file_in_a_second_process_with_progress(
    runner,
    store,
    qtbot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
) -> None:
    """From the pool thread too, a big file is checked by a child process (``import_worker``)
    while the task writes; the dialog's progress ends at the file's row count."""
    from app.core import import_worker, transfer

    monkeypatch.setattr(import_worker, "MIN_BYTES", 1)
    monkeypatch.setattr(import_worker, "spare_core", lambda: True)
    monkeypatch.setattr(transfer, "BATCH", 10)  # the child checks in batches of 10 too
    monkeypatch.setattr(transfer, "_checked_batches", None)  # checking here would fail
    csv_file = _residents_csv(tmp_path / "residents.csv", 45)
    handle = runner.start(tasks.import_task(csv_file, "resident", author="W1"), "import")
    progress: list[tuple[int, int]] = []
    handle.progress.connect(lambda d, t: progress.append((d, t)))
    with qtbot.waitSignal(handle.finished, timeout=60_000) as blocker:
        pass
    report = blocker.args[0]
    assert report.imported and report.created == 45 and store.count("resident") == 45
    assert progress and progress[-1] == (45, 45)
