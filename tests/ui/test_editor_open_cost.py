"""What opening an editor does not pay for (issue 17: resident form open <= 1.5x a bare form),
and that the behaviour those savings replaced still holds."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QShortcut
from PySide6.QtWidgets import QApplication, QComboBox

from app.core.store import Store
from app.ui.editor import RecordEditor


@pytest.fixture
def open_editor(qtbot, store: Store) -> Iterator[Callable[..., RecordEditor]]:
    def make(form: str = "resident") -> RecordEditor:
        editor = RecordEditor(store, form, author="网格员甲")
        editor.confirm_close = lambda _e: "discard"
        qtbot.addWidget(editor)
        editor.resize(900, 800)
        editor.show()
        qtbot.waitExposed(editor)
        editor.activateWindow()
        qtbot.waitUntil(lambda: editor.isAncestorOf(QApplication.focusWidget()))
        return editor

    yield make


def test_editor_keys_need_no_shortcut_objects(qtbot, open_editor) -> None:
    """Ctrl+S, Ctrl+Enter and Escape reach the editor from a drop-down, a line edit and a
    button, with no QShortcut made per open."""
    editor = open_editor()
    assert editor.findChildren(QShortcut) == []
    combo = editor.widget("population_type").focus_target()
    assert isinstance(combo, QComboBox) and QApplication.focusWidget() is combo
    with qtbot.waitSignal(editor.saved):
        qtbot.keyClick(combo, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    editor.set_value("name", "李四")
    edit = editor.widget("name").focus_target()
    edit.setFocus()
    qtbot.keyClick(edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert "需要改正" in editor.status_label.text()  # Complete ran, and errors blocked it
    assert not editor.is_closed()
    editor.save_button.setFocus()
    with qtbot.waitSignal(editor.closed):
        qtbot.keyClick(editor.save_button, Qt.Key.Key_Escape)
    assert editor.is_closed()
