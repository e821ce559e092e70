"""A supervisor overrules a grid worker's "different person" in the desktop app's 重复审核 view
(PROTOCOL.md §9, §9.2): the view's toggle lists the pairs workers told apart, with who and when;
"same" merges, "different" confirms. Real devices on SQLite stores, the real platform server
over loopback, the real view."""

from __future__ import annotations

import datetime as dt
import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from app.core.forms import FormSet
from app.ui.reviews import BY_WORKER, OPEN, ReviewView
from tests.factories import resident
from tests.sync.conftest import platform  # noqa: F401 - fixture
from tests.sync.devicekit import GRID_A, Device, db_url, make_device  # noqa: F401

_seqs = itertools.count(751, 2)


@pytest.fixture
def shanghai(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A supervisor's laptop in China: this process's local zone, and back after."""
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def _told_apart(wang: Device) -> tuple[str, str]:
    """Two people of one name and birth date; the worker answers "different" and syncs."""
    a = wang.save("resident", resident(grid=GRID_A, seq=next(_seqs), name="孙八")).id
    b = wang.save("resident", resident(grid=GRID_A, seq=next(_seqs), name="孙八")).id
    wang.sync()
    wang.store.decide_duplicate(b, a, "different", author="王五")
    wang.sync()
    return a, b


def _live(device: Device) -> list[str]:
    rows = device.store.conn.execute(
        "SELECT id FROM records WHERE form = 'resident' AND deleted = 0"
    ).fetchall()
    return [r[0] for r in rows]


def test_a_supervisor_lists_a_pair_a_worker_told_apart_and_merges_it(
    qtbot: Any,
    platform: Any,  # noqa: F811
    tmp_path: Path,
    formset: FormSet,
    shanghai: None,
) -> None:
    wang = make_device(platform.url, tmp_path, formset, "wang")
    boss = make_device(platform.url, tmp_path, formset, "chen")
    try:
        a, b = _told_apart(wang)
        boss.sync()
        assert sorted(_live(boss)) == sorted([a, b])
        board = ReviewView(boss.client, "zh")
        qtbot.addWidget(board)
        assert board.reload() and board.table.rowCount() == 0  # closed: not open any more
        assert board.table.isColumnHidden(4)

        board.buttons["by_worker"].click()  # the toggle, as a click or Space would
        assert board.state == BY_WORKER and board.table.rowCount() == 1
        assert not board.table.isColumnHidden(4)
        # when, in this machine's zone (it showed the platform's UTC, 8 hours off in China)
        decided = dt.datetime.fromisoformat(board.items[0].decided_at.replace("Z", "+00:00"))
        local = decided.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")
        assert board.table.item(0, 4).text() == f"wang · {local}"
        assert board.status.text() == "网格员判为不是同一人 1 条"
        assert board.buttons["same"].text() == "是同一人（合并）"

        board.set_lang("en")
        assert board.table.horizontalHeaderItem(4).text() == "Worker's answer"
        assert board.buttons["same"].text() == "Same (merge)"
        assert board.buttons["different"].text() == "Confirm not the same"
        assert board.status.text() == "1 told apart by workers"
        board.set_lang("zh")

        outcome = board.decide(0, "same")
        assert outcome is not None and outcome.merged_into in (a, b)
        assert board.state == BY_WORKER and board.table.rowCount() == 0  # reloaded: gone

        board.buttons["by_worker"].click()
        assert board.state == OPEN and board.buttons["same"].text() == "是同一人/同一处"
        assert board.table.isColumnHidden(4)

        for device in (wang, boss):
            device.sync()
            assert _live(device) == [outcome.merged_into]
    finally:
        for device in (wang, boss):
            device.close()


def test_a_supervisor_confirms_a_workers_different(
    qtbot: Any,
    platform: Any,  # noqa: F811
    tmp_path: Path,
    formset: FormSet,
) -> None:
    wang = make_device(platform.url, tmp_path, formset, "wang")
    boss = make_device(platform.url, tmp_path, formset, "chen")
    try:
        a, b = _told_apart(wang)
        board = ReviewView(boss.client, "en")
        qtbot.addWidget(board)
        assert board.show_state(BY_WORKER) and board.table.rowCount() == 1
        assert board.buttons["by_worker"].isChecked()
        outcome = board.decide(0, "different")
        assert outcome is not None and outcome.merged_into is None
        assert outcome.review.decided_role == "supervisor"  # final now: off the list
        assert board.table.rowCount() == 0
        for device in (wang, boss):
            device.sync()
            assert sorted(_live(device)) == sorted([a, b])
    finally:
        for device in (wang, boss):
            device.close()


def test_the_review_view_opened_in_touch_mode_has_rows_a_finger_hits(
    qtbot: Any,
    platform: Any,  # noqa: F811
    tmp_path: Path,
    formset: FormSet,
) -> None:
    """A supervisor on a tablet picks a row, then 是同一人（合并）: the rows of the view opened
    from the menu in touch mode are as tall as the window's other lists'."""
    from app.ui.syncui import Credentials
    from app.ui.window.main_window import TOUCH_ROW_HEIGHT, MainWindow
    from tests.sync.devicekit import PASSWORD

    wang = make_device(platform.url, tmp_path, formset, "wang")
    boss = make_device(platform.url, tmp_path, formset, "chen")
    window = MainWindow(boss.store, lang="zh", restore_autosaves=False)
    qtbot.addWidget(window)
    view = None
    try:
        _told_apart(wang)
        window.set_touch_mode(True)
        action = window.reviews_action
        action.ask = lambda: Credentials(platform.url, "chen", PASSWORD)
        view = action.open_view()
        assert isinstance(view, ReviewView) and view.show_state(BY_WORKER)
        assert view.table.rowCount() == 1
        assert view.table.rowHeight(0) >= TOUCH_ROW_HEIGHT
    finally:
        window.set_touch_mode(False)
        if view is not None:
            view.client.close()
        window.close()
        for device in (wang, boss):
            device.close()


def test_a_merge_is_confirmed_first_and_a_decision_made_elsewhere_reloads_the_list(
    qtbot: Any,
    platform: Any,  # noqa: F811
    tmp_path: Path,
    formset: FormSet,
) -> None:
    """是同一人 merged at one click, with no way back; and a decision another reviewer made
    first left the row listed with only "failed" to read. Now the button asks first, naming
    both records, and a refused decision reloads the list."""
    from PySide6.QtCore import Qt

    wang = make_device(platform.url, tmp_path, formset, "wang")
    boss = make_device(platform.url, tmp_path, formset, "chen")
    root = make_device(platform.url, tmp_path, formset, "root")
    try:
        a, b = _told_apart(wang)
        board = ReviewView(boss.client, "zh")
        other = ReviewView(root.client, "zh")  # an admin looking at the same list
        for view in (board, other):
            qtbot.addWidget(view)
            assert view.show_state(BY_WORKER) and view.table.rowCount() == 1
        asked: list[str] = []
        board.confirm_same = lambda question: bool(asked.append(question))  # "No"
        board.table.selectRow(0)
        qtbot.mouseClick(board.buttons["same"], Qt.MouseButton.LeftButton)
        assert len(asked) == 1 and asked[0].count("孙八") == 2 and "不能撤销" in asked[0]
        assert board.table.rowCount() == 1  # nothing sent
        wang.sync()
        assert sorted(_live(wang)) == sorted([a, b])

        assert other.decide(0, "different") is not None  # the admin confirms first
        board.confirm_same = lambda question: True
        qtbot.mouseClick(board.buttons["same"], Qt.MouseButton.LeftButton)
        assert board.table.rowCount() == 0  # reloaded: nothing left to decide
        assert board.status.text().startswith("操作失败")
        wang.sync()
        assert sorted(_live(wang)) == sorted([a, b])
    finally:
        for device in (wang, boss, root):
            device.close()
