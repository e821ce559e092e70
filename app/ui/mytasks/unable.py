""" "Unable" in two taps: the first shows the reasons, the second picks one.

Why a panel inside the view and not a menu or dialog: on a tablet at the door a popup menu is
easy to dismiss by mistake, and a panel keeps the reasons where the thumb already is. The four
preset reasons (``app.core.store.UNABLE_REASONS``) are one tap; "other" opens a line to type.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLineEdit, QPushButton, QVBoxLayout, QWidget

from app.core.store import UNABLE_REASONS
from app.core.store.tasks import MAX_REASON_CHARS
from app.ui.i18n import tr
from app.ui.mytasks import strings  # noqa: F401  (registers the words)


class UnablePanel(QWidget):
    """Reason buttons (``reason_0`` … ``reason_3``, ``reason_other``); ``chosen(reason)``."""

    chosen = Signal(str)

    def __init__(self, lang: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("unablePanel")
        self.lang = lang
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.buttons: list[QPushButton] = []
        for index, (zh, _en) in enumerate(UNABLE_REASONS):
            button = QPushButton(tr(f"tasks.reason.{zh}", lang), self)
            button.setObjectName(f"reason_{index}")
            button.clicked.connect(lambda _c=False, r=zh: self._pick(r))
            row.addWidget(button)
            self.buttons.append(button)
        self.other_button = QPushButton(tr("tasks.other", lang), self)
        self.other_button.setObjectName("reason_other")
        self.other_button.clicked.connect(self._show_other)
        row.addWidget(self.other_button)
        column.addLayout(row)
        other = QHBoxLayout()
        self.other_text = QLineEdit(self)
        self.other_text.setObjectName("reasonText")
        self.other_text.setMaxLength(MAX_REASON_CHARS)
        self.other_text.setPlaceholderText(tr("tasks.other_hint", lang))
        self.other_text.returnPressed.connect(self._other_done)
        self.other_ok = QPushButton(tr("tasks.other_ok", lang), self)
        self.other_ok.setObjectName("reasonOk")
        self.other_ok.clicked.connect(self._other_done)
        other.addWidget(self.other_text, 1)
        other.addWidget(self.other_ok)
        column.addLayout(other)
        self._other_shown(False)
        self.setVisible(False)

    def set_lang(self, lang: str) -> None:
        self.lang = lang
        for button, (zh, _en) in zip(self.buttons, UNABLE_REASONS, strict=True):
            button.setText(tr(f"tasks.reason.{zh}", lang))
        self.other_button.setText(tr("tasks.other", lang))
        self.other_ok.setText(tr("tasks.other_ok", lang))
        self.other_text.setPlaceholderText(tr("tasks.other_hint", lang))

    def open(self) -> None:
        """Tap one: show the reasons."""
        self._other_shown(False)
        self.setVisible(True)
        self.buttons[0].setFocus()

    def _show_other(self) -> None:
        self._other_shown(True)
        self.other_text.setFocus()

    def _other_shown(self, on: bool) -> None:
        self.other_text.setVisible(on)
        self.other_ok.setVisible(on)

    def _other_done(self) -> None:
        self._pick(self.other_text.text())

    def _pick(self, reason: str) -> None:
        """Tap two: a preset, or the typed text (the store checks it and says what to fix)."""
        self.chosen.emit(reason)
