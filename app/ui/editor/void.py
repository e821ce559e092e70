"""作废 (void) a record: a wrong or duplicate record leaves the lists, keeps its history, and
syncs as a delete the platform keeps as a tombstone (``Store.delete`` with a reason).

Why a reason: a record that simply vanished could not be told apart from one lost by
mistake; the history entry says who voided it, when and why (a code from ``VOID_REASONS``,
never free text, so no personal data is written into it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.ui.editor.dialogs import CloseChoice
from app.ui.i18n import tr

VOID_REASONS = ("duplicate", "mistake", "not_found", "test", "other")


class VoidDialog(QDialog):
    """Pick a reason; OK without one says what is missing and stays open."""

    def __init__(self, title: str, lang: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.lang = lang
        self.setWindowTitle(tr("void_title", lang))
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(tr("void_prompt", lang, title=title), self))
        self.reason = QComboBox(self)
        self.reason.addItem("", None)
        for code in VOID_REASONS:
            self.reason.addItem(tr(f"void.{code}", lang), code)
        layout.addWidget(self.reason)
        self.message = QLabel(self)
        layout.addWidget(self.message)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)

    def accept(self) -> None:
        if self.reason.currentData() is None:
            self.message.setText(tr("void_need_reason", self.lang))
            return
        super().accept()


def ask_void_reason(editor: Any) -> str | None:
    dialog = VoidDialog(editor.form.title_of(editor.values()) or "", editor.lang, editor)
    return dialog.reason.currentData() if dialog.exec() == QDialog.DialogCode.Accepted else None


def install_void(editor: Any, on_voided: Callable[[str], None]) -> QPushButton:
    """A 作废… button on a saved record's editor. ``editor.ask_void_reason`` asks (tests
    replace it); ``on_voided(record_id)`` lets the window refresh its lists."""
    button = QPushButton(tr("void", editor.lang), editor)
    button.setObjectName("voidButton")
    button.setToolTip(tr("void_tip", editor.lang))
    button.setAutoDefault(False)
    editor.ask_void_reason = lambda: ask_void_reason(editor)

    def void() -> None:
        record_id = editor.record_id
        if record_id is None:
            return
        reason = editor.ask_void_reason()
        if reason is None:
            return
        editor.store.delete(record_id, editor.author, reason)
        editor.confirm_close = lambda _e: CloseChoice.DISCARD  # voided: nothing to save
        editor.request_close()
        on_voided(record_id)

    root = editor._root  # the editor's column; its button bar holds 关闭
    for index in range(root.count()):
        bar = root.itemAt(index).layout()
        if bar is not None and bar.indexOf(editor.close_button) >= 0:
            bar.insertWidget(bar.indexOf(editor.close_button), button)
            break
    button.clicked.connect(lambda _checked=False: void())
    button.setVisible(editor.record_id is not None)
    editor.saved.connect(lambda _rid: button.setVisible(True))
    editor.completed.connect(lambda _rid: button.setVisible(True))
    editor.void_button = button
    editor.void = void
    return button


__all__ = ["VOID_REASONS", "VoidDialog", "ask_void_reason", "install_void"]
