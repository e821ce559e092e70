# ruff: noqa: F811 - the platform fixture is imported, then requested by name
"""The 被拒的修改 Refused edits view over refusals made for real: the worker's window syncs
with the REAL platform server over loopback HTTP, the platform refuses an edit (a value too
long for it, a grid taken away), the view lists the record with the platform's reason, Enter
opens it in the editor, and once a correcting save (or the grid given back) reaches the
platform the row goes away. The sync message says how many records wait and where."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QMessageBox

from app.core.store import Store
from app.ui.editor import RecordEditor
from app.ui.refusals import RefusalView
from app.ui.syncui import Credentials
from app.ui.window import MainWindow
from app.ui.window.main_window import TOUCH_ROW_HEIGHT
from sync import replica
from sync.server import admin
from tests.factories import resident
from tests.sync.conftest import platform  # noqa: F401 - fixture
from tests.sync.devicekit import GRID_A, GRID_B, PASSWORD, db_url  # noqa: F401 - fixture: SQLite only
from tests.ui.test_editor_elsewhere import WAIT_MS, type_into

TOO_LONG = "某" * 10_001  # a draft keeps it; the platform stores at most 10 000 characters


def _window(qtbot: Any, store: Store, lang: str) -> MainWindow:
    win = MainWindow(store, lang=lang, restore_autosaves=False)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    return win


@pytest.fixture
def window(qtbot: Any, store: Store) -> Iterator[MainWindow]:
    win = _window(qtbot, store, "zh")
    yield win
    win.runner.cancel_all()
    win.runner.wait()


def sync_in_window(qtbot: Any, window: MainWindow, url: str) -> tuple[str, Any]:
    """The worker's sync from the window's own 同步 action (wang signs in), to its end; the
    message it ends with (text, icon), read, then closed with its OK as the worker does."""
    ctl = window.sync_ctl
    ctl.ask = lambda: Credentials(url, "wang", PASSWORD)
    handle = ctl.trigger()
    assert handle is not None
    qtbot.waitUntil(lambda: not handle.running, timeout=WAIT_MS)
    assert handle.outcome == "finished"
    box = ctl.message
    shown = box.text(), box.icon()
    qtbot.mouseClick(box.button(QMessageBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    return shown


def _open_view(window: MainWindow) -> RefusalView:
    view = window.refusals_action.open_view()
    assert isinstance(view, RefusalView) and window.doc_tabs.currentWidget() is view
    return view


def _row(view: RefusalView, row: int) -> list[str]:
    return [view.table.item(row, c).text() for c in range(view.table.columnCount())]


def test_a_refused_value_is_listed_with_its_reason_opened_corrected_and_gone_after_sync(
    qtbot: Any, window: MainWindow, store: Store, platform: Any
) -> None:
    data = resident(name="李四", seq=301, grid=GRID_A, workplace=TOO_LONG)
    refused = store.save("resident", data, status="draft").id
    store.save("resident", resident(name="王五", seq=303, grid=GRID_A), status="complete")

    text, icon = sync_in_window(qtbot, window, platform.url)
    assert icon == QMessageBox.Icon.Warning
    assert "1 条记录的修改被平台拒绝" in text and "被拒的修改" in text
    assert replica.open_refusals(store).total == 1

    view = _open_view(window)
    assert view.table.rowCount() == 1 == replica.open_refusals(store).total
    title, detail, form, reason = _row(view, 0)
    assert (title, form) == ("李四", "实有人口")
    assert detail.endswith("****" + data["id_number"][-2:])  # masked as the list masks it
    assert data["id_number"] not in " ".join(_row(view, 0))
    assert "内容太长" in reason and "服务处所" in reason  # the platform's reason, the field named

    view.table.setFocus()
    view.table.setCurrentCell(0, 0)
    qtbot.keyClick(view.table, Qt.Key.Key_Return)
    editor = window.doc_tabs.currentWidget()
    assert isinstance(editor, RecordEditor) and editor.record_id == refused
    editor.confirm_close = lambda _e: "discard"
    type_into(qtbot, editor, "workplace", "幸福小学")
    qtbot.mouseClick(editor.save_button, Qt.MouseButton.LeftButton)
    assert store.get(refused).data["workplace"] == "幸福小学"
    # still not on the platform: listed, saying the correction goes with the next sync
    assert view.table.rowCount() == 1 and "下次同步" in _row(view, 0)[3]

    text, icon = sync_in_window(qtbot, window, platform.url)
    assert view.table.rowCount() == 0 and not view.empty_label.isHidden()
    assert icon == QMessageBox.Icon.Information and "拒绝" not in text
    assert replica.open_refusals(store).total == 0
    assert platform.client("wang").record(refused).json()["data"]["workplace"] == "幸福小学"


def test_an_edit_refused_while_the_grid_was_away_waits_for_it_in_english(
    qtbot: Any, store: Store, platform: Any
) -> None:
    admin.set_user_grids(platform.engine, "wang", [GRID_A, GRID_B])
    window = _window(qtbot, store, "en")
    try:
        sync_in_window(qtbot, window, platform.url)
        away = store.save("resident", resident(name="赵六", seq=305, grid=GRID_B)).id
        admin.set_user_grids(platform.engine, "wang", [GRID_A])  # grid B taken away

        text, icon = sync_in_window(qtbot, window, platform.url)
        assert icon == QMessageBox.Icon.Warning
        assert "refused edits of 1 record" in text and "Refused edits" in text
        assert "given back" in text
        window.set_touch_mode(True)
        view = _open_view(window)
        assert view.table.rowHeight(0) >= TOUCH_ROW_HEIGHT  # a target a finger hits
        assert window.doc_tabs.tabText(window.doc_tabs.indexOf(view)) == "Refused edits"
        title, _detail, form, reason = _row(view, 0)
        assert (title, form) == ("赵六", "Resident")
        assert reason.isascii() and "sent again when the grid is given back" in reason

        cell = view.table.visualItemRect(view.table.item(0, 2)).center()
        # a double-click: the first press and release, then the second press (Qt's order)
        qtbot.mouseClick(view.table.viewport(), Qt.MouseButton.LeftButton, pos=cell)
        qtbot.mouseDClick(view.table.viewport(), Qt.MouseButton.LeftButton, pos=cell)
        editor = window.doc_tabs.currentWidget()
        assert editor.record_id == away
        # the row's words atop the editor, in English, with a way to the field it names
        banner = editor.findChild(QFrame, "refusalBanner")
        assert banner is not None and banner.isVisible() and reason in banner.label.text()
        assert banner.label.text().isascii() and banner.go_button.text() == "Go to Grid"

        admin.set_user_grids(platform.engine, "wang", [GRID_A, GRID_B])  # given back
        text, _icon = sync_in_window(qtbot, window, platform.url)
        assert view.table.rowCount() == 0 and "refused" not in text
    finally:
        window.set_touch_mode(False)
        for editor in window.open_editors():
            editor.confirm_close = lambda _e: "discard"
        window.runner.cancel_all()
        window.runner.wait()


def _visible_texts(view: Any) -> list[str]:
    """What the worker reads in the view: its labels, buttons, headers and cells."""
    from PySide6.QtWidgets import QAbstractButton, QLabel, QTableWidget

    texts = [w.text() for w in view.findChildren(QLabel) if w.isVisible()]
    texts += [w.text() for w in view.findChildren(QAbstractButton) if w.isVisible()]
    for table in view.findChildren(QTableWidget):
        texts += [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
        for row in range(table.rowCount()):
            for column in range(table.columnCount()):
                item, cell = table.item(row, column), table.cellWidget(row, column)
                texts += [item.text()] if item is not None else []
                texts += [
                    w.text()
                    for w in (cell, *(cell.findChildren(QLabel) if cell else ()))
                    if hasattr(w, "text")
                ]
    return [t for t in texts if t]


def switch_language(window: MainWindow, lang: str) -> None:
    """The worker's 视图 View → 语言 Language → English / 中文."""
    window.lang_actions[lang].trigger()
    assert window.lang == lang


def test_the_open_view_switches_language_with_the_window(
    qtbot: Any, window: MainWindow, store: Store, platform: Any
) -> None:
    """The open view kept its title, headers, hint and the platform's reason in the language
    it was opened in when the worker switched the app's language."""
    data = resident(name="李四", seq=307, grid=GRID_A, workplace=TOO_LONG)
    store.save("resident", data, status="draft")
    sync_in_window(qtbot, window, platform.url)
    view = _open_view(window)
    tabs = window.doc_tabs
    assert tabs.tabText(tabs.indexOf(view)) == "被拒的修改"
    assert "内容太长" in _row(view, 0)[3]

    try:
        switch_language(window, "en")
        texts = _visible_texts(view)
        assert tabs.tabText(tabs.indexOf(view)) == "Refused edits"
        assert [view.table.horizontalHeaderItem(c).text() for c in range(4)] == [
            "Record",
            "Details",
            "Form",
            "Why the platform refused",
        ]
        assert any(t.startswith("The platform refused edits of these records") for t in texts)
        title, _detail, form, reason = _row(view, 0)
        assert (title, form) == ("李四", "Resident")
        assert reason.isascii() and "field: Workplace" in reason, reason
        assert not any("拒绝" in t or "记录" in t for t in texts), texts

        switch_language(window, "zh")
        assert tabs.tabText(tabs.indexOf(view)) == "被拒的修改"
        assert view.table.horizontalHeaderItem(3).text() == "平台拒绝的原因"
        assert "内容太长" in _row(view, 0)[3] and "服务处所" in _row(view, 0)[3]
    finally:
        switch_language(window, "zh")


def _banner_texts(editor: RecordEditor) -> list[str]:
    from PySide6.QtWidgets import QLabel

    return [label.text() for label in editor.findChildren(QLabel) if label.isVisible()]


def test_the_editor_opened_from_the_view_says_why_at_the_field_it_names(
    qtbot: Any, window: MainWindow, store: Store, platform: Any
) -> None:
    """A record opened from the view gave no hint of what the platform refused: the worker
    had to remember the row. The editor now shows the row's reason in a banner (in the UI
    language, reachable by keyboard, big in touch mode) with the cursor in the field it
    names, until the record is saved."""
    from PySide6.QtWidgets import QApplication, QPushButton

    from app.ui.style import TOUCH_TARGET_PX

    data = resident(name="李四", seq=309, grid=GRID_A, workplace=TOO_LONG)
    refused = store.save("resident", data, status="draft").id
    sync_in_window(qtbot, window, platform.url)
    view = _open_view(window)
    reason = _row(view, 0)[3]

    view.table.setCurrentCell(0, 0)
    qtbot.keyClick(view.table, Qt.Key.Key_Return)
    editor = window.doc_tabs.currentWidget()
    assert isinstance(editor, RecordEditor) and editor.record_id == refused
    editor.confirm_close = lambda _e: "discard"
    assert any(reason in text for text in _banner_texts(editor)), _banner_texts(editor)
    field = editor.widget("workplace").focus_target()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is field)  # at the field it names
    qtbot.wait(50)  # the editor's own first focus (a timer) does not take it away
    assert QApplication.focusWidget() is field

    banner = editor.findChild(QFrame, "refusalBanner")
    assert banner is not None and banner.isVisible()
    go = banner.findChild(QPushButton)
    assert go is not None and go.isVisible() and "服务处所" in go.text()
    # keyboard: Shift+Tab from the form's first field reaches the banner; its button goes back
    first = editor.widget(editor.body.first_visible()).focus_target()
    first.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is first)
    for _ in range(3):
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Backtab)
        if banner.isAncestorOf(QApplication.focusWidget()):
            break
    assert banner.isAncestorOf(QApplication.focusWidget()), QApplication.focusWidget()
    go.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is go)
    qtbot.keyClick(go, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is field)
    go.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is go)
    # Space as a finger presses it: the window's scanner filter hands a printable key press
    # on after its burst gap, so the release comes once the button is down
    qtbot.keyPress(go, Qt.Key.Key_Space)
    qtbot.waitUntil(go.isDown)
    qtbot.keyRelease(go, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is field)
    try:
        window.set_touch_mode(True)
        qtbot.waitUntil(lambda: go.height() >= TOUCH_TARGET_PX)
    finally:
        window.set_touch_mode(False)

    switch_language(window, "en")
    try:
        english = _row(view, 0)[3]
        assert english.isascii() and any(english in t for t in _banner_texts(editor))
        assert "Workplace" in go.text()
    finally:
        switch_language(window, "zh")
    assert any(reason in text for text in _banner_texts(editor))

    window.doc_tabs.setCurrentWidget(editor)
    type_into(qtbot, editor, "workplace", "幸福小学")
    qtbot.mouseClick(editor.save_button, Qt.MouseButton.LeftButton)
    assert store.get(refused).data["workplace"] == "幸福小学"
    assert banner.isHidden() and not any(reason in t for t in _banner_texts(editor))
