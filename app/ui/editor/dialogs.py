"""The editor's dialogs: the "unsaved changes" question, and the window around a nested editor
(a new record created from a reference field)."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QDialog, QMessageBox, QVBoxLayout, QWidget

from app.core.forms import Form
from app.ui.i18n import tr

if TYPE_CHECKING:
    from app.ui.editor.record_editor import RecordEditor

__all__ = ["CloseChoice", "EditorDialog", "ask_close", "open_nested"]


class CloseChoice(StrEnum):
    """The answer to "unsaved changes": 保存草稿 / 放弃 / 取消 (tests may answer with the word)."""

    SAVE = "save"
    DISCARD = "discard"
    CANCEL = "cancel"


def ask_close(editor: RecordEditor) -> CloseChoice:
    """The default "unsaved changes" question: 保存草稿 / 放弃 / 取消."""
    lang = editor.lang
    box = QMessageBox(editor)
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle(tr("confirm_close_title", lang))
    box.setText(tr("confirm_close_text", lang))
    save = box.addButton(tr("save_draft", lang), QMessageBox.ButtonRole.AcceptRole)
    discard = box.addButton(tr("discard", lang), QMessageBox.ButtonRole.DestructiveRole)
    cancel = box.addButton(tr("cancel", lang), QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(save)
    box.setEscapeButton(cancel)
    box.exec()
    clicked = box.clickedButton()
    if clicked is save:
        return CloseChoice.SAVE
    return CloseChoice.DISCARD if clicked is discard else CloseChoice.CANCEL


class EditorDialog(QDialog):
    """A dialog around a nested editor: closing the window goes through the editor's question."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.editor: RecordEditor | None = None

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt API)
        if (
            self.editor is not None
            and not self.editor.is_closed()
            and not self.editor.request_close()
        ):
            event.ignore()
            return
        super().closeEvent(event)

    def reject(self) -> None:
        if self.editor is not None and not self.editor.is_closed():
            self.editor.request_close()  # its closed() signal accepts the dialog
            return
        super().reject()


def open_nested(
    editor: RecordEditor,
    target: Form,
    prefill: dict[str, Any],
    on_saved: Callable[[str], object],
) -> tuple[EditorDialog, RecordEditor]:
    """Open a non-blocking dialog with an editor for a new ``target`` record; ``on_saved``
    gets its id at each save. The nested editor asks about closing as ``editor`` does."""
    from app.ui.editor.record_editor import RecordEditor  # the editor module imports this one

    dialog = EditorDialog(editor)
    dialog.setWindowTitle(tr("create_title", editor.lang, form=target.title.get(editor.lang)))
    nested = RecordEditor(
        editor.store,
        target.id,
        lang=editor.lang,
        author=editor.author,
        prefill=prefill,
        parent=dialog,
    )
    nested.confirm_close = editor.confirm_close
    dialog.editor = nested
    QVBoxLayout(dialog).addWidget(nested)
    nested.saved.connect(on_saved)
    nested.closed.connect(dialog.accept)
    dialog.resize(720, 640)
    editor.nested_editor = nested
    dialog.open()
    return dialog, nested
