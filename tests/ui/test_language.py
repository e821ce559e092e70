"""Language: every menu from the catalog with an Alt key, Qt's own buttons in Chinese, grids by
name (never the raw code) in the editor's banners."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QDialogButtonBox, QLabel, QMenu, QMessageBox, QPushButton

from app.core.store import Grid, Store
from app.ui.i18n import install_qt_translations, language, tr
from app.ui.window import MainWindow
from tests.factories import resident


@pytest.fixture
def window(store: Store, qtbot):  # noqa: ANN001, ANN201
    w = MainWindow(store, lang="zh", restore_autosaves=False)
    qtbot.addWidget(w)
    yield w
    language().set_lang("zh")
    w.close()


def _menus(window: MainWindow) -> list[QMenu]:
    found = []

    def walk(menu: QMenu) -> None:
        found.append(menu)
        for action in menu.actions():
            if action.menu() is not None:
                walk(action.menu())

    for action in window.menuBar().actions():
        walk(action.menu())
    return found


def _entries(window: MainWindow) -> list[str]:
    """The title of every menu and the text of every entry in it."""
    texts = []
    for menu in _menus(window):
        texts.append(menu.title())
        texts += [a.text() for a in menu.actions() if not a.isSeparator() and a.menu() is None]
    return texts


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_menu_and_entry_comes_from_the_catalog_with_an_alt_key(
    window: MainWindow, lang: str
) -> None:
    """The 同步 Sync and 打印 Print menus were "同步 Sync" in both languages, with no Alt key."""
    window.set_language(lang)
    catalog = {tr(key, lang) for _, key in window.menu_texts()}

    entries = _entries(window)

    assert len(entries) >= 20
    for text in entries:
        assert text in catalog, text
        assert not QKeySequence.mnemonic(text).isEmpty(), f"{text!r} has no Alt key"
    bar = [a.text() for a in window.menuBar().actions()]
    keys = [QKeySequence.mnemonic(t).toString() for t in bar]
    assert len(set(keys)) == len(keys), bar  # Alt+F, Alt+V, … each opens one menu
    for menu in _menus(window):
        inner = [
            QKeySequence.mnemonic(a.text()).toString()
            for a in menu.actions()
            if not a.isSeparator()
        ]
        assert len(set(inner)) == len(inner), [a.text() for a in menu.actions()]


def test_qt_standard_buttons_speak_chinese(qtbot) -> None:  # noqa: ANN001
    """OK / Cancel / Show Details… were English in a Chinese app."""
    install_qt_translations("zh")
    box = QMessageBox(QMessageBox.Icon.Information, "标题", "正文")
    box.setStandardButtons(QMessageBox.StandardButton.Ok | QMessageBox.StandardButton.Cancel)
    box.setDetailedText("细节")
    qtbot.addWidget(box)
    texts = {b.text().replace("&", "") for b in box.findChildren(QPushButton)}
    assert {"确定", "取消"} <= texts, texts
    assert any(t.startswith("显示详") for t in texts), texts  # Show Details…
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save)
    qtbot.addWidget(buttons)
    assert buttons.button(QDialogButtonBox.StandardButton.Save).text().replace("&", "") == "保存"

    install_qt_translations("en")
    again = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
    qtbot.addWidget(again)
    assert again.button(QDialogButtonBox.StandardButton.Cancel).text().replace("&", "") == "Cancel"
    install_qt_translations("zh")


def test_the_main_window_installs_qt_chinese(window: MainWindow, qtbot) -> None:  # noqa: ANN001
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok)
    qtbot.addWidget(buttons)
    assert buttons.button(QDialogButtonBox.StandardButton.Ok).text().replace("&", "") == "确定"


def test_the_duplicate_banner_names_the_grid(window: MainWindow, store: Store, qtbot) -> None:  # noqa: ANN001
    grid = "330106001001-01"
    store.put_grid(Grid(grid, "第一网格", "330106001001", "幸福社区"))
    known = store.save("resident", resident(seq=41, grid=grid), status="complete")
    editor = window.new_record("resident")
    editor.confirm_close = lambda e: "discard"  # no modal question when the test ends
    editor.set_value("id_number", known.data["id_number"])
    editor.run_duplicate_check()

    text = " ".join(label.text() for label in editor.findChildren(QLabel))
    assert "已登记" in text
    assert "第一网格" in text and grid not in text
    editor.request_close()


def test_the_editor_shows_the_grid_by_name_and_stores_its_code(
    window: MainWindow, store: Store, qtbot
) -> None:  # noqa: ANN001
    grid = "330106001001-01"
    store.put_grid(Grid(grid, "第一网格", "330106001001", "幸福社区"))
    rid = store.save("resident", resident(seq=43, grid=grid), status="complete").id
    window.open_record(rid)
    editor = window.doc_tabs.currentWidget()
    editor.confirm_close = lambda e: "discard"
    widget = editor.widget("grid")
    combo = widget.focus_target()

    assert combo.currentText() == "第一网格（幸福社区）" and widget.value() == grid
    texts = [combo.itemText(i) for i in range(combo.count())]
    assert all(grid not in t for t in texts)
    widget.set_value("999999999999-09")  # a grid this device has no name for is kept
    assert widget.value() == "999999999999-09"
    widget.set_value(grid)
    editor.request_close()


def test_history_shows_grid_changes_by_name(window: MainWindow, store: Store, qtbot) -> None:  # noqa: ANN001
    store.put_grid(Grid("330106001001-01", "第一网格", "330106001001", "幸福社区"))
    store.put_grid(Grid("330106001001-02", "第二网格", "330106001001", "幸福社区"))
    rid = store.save("resident", resident(seq=45, grid="330106001001-01"), status="draft").id
    store.save("resident", {**store.get(rid).data, "grid": "330106001001-02"}, record_id=rid)
    editor = window.open_record(rid)
    editor.show_history(True)
    panel = editor.history_panel
    rows = [panel.topLevelItem(i) for i in range(panel.topLevelItemCount())]
    grid_rows = [r for r in rows if r.text(2) == "所属网格"]
    assert any(r.text(3) == "第一网格" and r.text(4) == "第二网格" for r in grid_rows)
    assert not any("330106001001-0" in r.text(c) for r in rows for c in range(5))
    editor.request_close()
