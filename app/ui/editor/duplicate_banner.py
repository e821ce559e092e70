"""The duplicate guard's banner at the top of an editor: "already registered" or "may be the
same person", with a button for each answer the worker can give."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.core.dedup import Candidate
from app.ui.editor.field_label import REQUIRED_COLOR
from app.ui.i18n import tr

__all__ = ["MAX_FUZZY_SHOWN", "BannerButton", "DuplicateBanner"]

MAX_FUZZY_SHOWN = 3
_STYLES = {
    "exact": "QFrame#dupBanner { background: #fdecea; border: 2px solid #c62828; border-radius: 4px; }",
    "fuzzy": "QFrame#dupBanner { background: #fff8e1; border: 2px solid #f9a825; border-radius: 4px; }",
}


class BannerButton(QPushButton):
    """A banner answer that Enter chooses when it has the cursor (Complete puts it there).

    Not ``autoDefault``: in a nested editor's dialog that would make a banner button the
    dialog's default, pressed by an Enter typed in any field."""

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt API)
        plain = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not plain:
            event.accept()
            self.click()
            return
        super().keyPressEvent(event)


class DuplicateBanner(QFrame):
    """Shows the candidates the worker has not answered yet.

    ``actionChosen(action, other_id)``: 'open' (open the existing record), 'same' (the same
    person) or 'different' (create anyway / ignore / a different person)."""

    actionChosen = Signal(str, str)

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("dupBanner")
        self.setVisible(False)
        self._layout = QVBoxLayout(self)
        self._decide_first = QLabel(self)
        self._decide_first.setVisible(False)
        self._buttons: dict[tuple[str, str], QPushButton] = {}
        self._key: tuple[object, ...] = ((), "", None)

    def show_candidates(
        self,
        candidates: Sequence[Candidate],
        lang: str,
        *,
        is_new: bool,
        key_label: Callable[[], str],
        grid_of: Callable[[Candidate], str],
    ) -> None:
        """Show these (unanswered) candidates; hide when there are none. Nothing is rebuilt
        when the answer is the same as last time, so buttons (and focus) stay put."""
        key = (tuple((c.record_id, c.reason) for c in candidates), lang, is_new)
        if key == self._key:
            return
        self._key = key
        self._clear()
        exact = [c for c in candidates if c.exact]
        fuzzy = [c for c in candidates if not c.exact][:MAX_FUZZY_SHOWN]
        if not exact and not fuzzy:
            self._decide_first.setVisible(False)
            self.setVisible(False)
            return
        self._decide_first.setText(tr("dup_decide_first", lang))
        self._decide_first.setStyleSheet(f"color: {REQUIRED_COLOR}; font-weight: bold;")
        self._layout.addWidget(self._decide_first)
        dismiss = "dup_create_anyway" if is_new else "dup_ignore"
        for cand in exact[:1]:
            text = tr("dup_exact", lang, label=key_label(), title=cand.title, grid=grid_of(cand))
            self._row(text, cand, (("open", "dup_open_existing"), ("different", dismiss)), lang)
        if fuzzy:
            self._layout.addWidget(QLabel(tr("dup_fuzzy_head", lang), self))
            for cand in fuzzy:
                reason = cand.reason_text(lang)
                text = tr("dup_fuzzy_item", lang, title=cand.title, reason=reason)
                self._row(text, cand, (("same", "dup_same"), ("different", "dup_different")), lang)
        self.setStyleSheet(_STYLES["exact" if exact else "fuzzy"])
        self.setVisible(True)

    def button(self, action: str, other_id: str) -> QPushButton:
        """The button of ``action`` for a candidate (KeyError when not shown)."""
        return self._buttons[(action, other_id)]

    def show_decide_first(self) -> None:
        """Say that the candidates must be answered first (a blocked Complete)."""
        self._decide_first.setVisible(True)

    def focus_first_button(self) -> None:
        if self._buttons:
            next(iter(self._buttons.values())).setFocus(Qt.FocusReason.OtherFocusReason)

    def follow(self, field: QWidget, first: QWidget) -> None:
        """Put the buttons in the tab order right after ``field`` (its tab stops start at
        ``first``), the field whose value raised them: made when the banner shows, they would
        join the chain at the window's end, reached by the keyboard after every other field."""
        before = _last_tab_stop(field, first)
        for button in self._buttons.values():
            QWidget.setTabOrder(before, button)
            before = button

    def _clear(self) -> None:
        while self._layout.count():
            item = self._layout.takeAt(0)
            widget = item.widget()
            if widget is not None and widget is not self._decide_first:
                widget.deleteLater()
            elif item.layout() is not None:
                _delete_layout(item.layout())
        self._buttons.clear()

    def _row(
        self, text: str, cand: Candidate, actions: Sequence[tuple[str, str]], lang: str
    ) -> None:
        row = QHBoxLayout()
        label = QLabel(text, self)
        label.setWordWrap(True)
        row.addWidget(label, 1)
        for action, key in actions:
            button = BannerButton(tr(key, lang), self)
            button.setAutoDefault(False)
            button.clicked.connect(functools.partial(self._clicked, action, cand.record_id))
            self._buttons[(action, cand.record_id)] = button
            row.addWidget(button)
        self._layout.addLayout(row)

    def _clicked(self, action: str, other_id: str, _checked: bool = False) -> None:
        self.actionChosen.emit(action, other_id)


def _last_tab_stop(field: QWidget, first: QWidget) -> QWidget:
    """The last widget of ``field``'s run of tab stops from ``first`` on: what Tab leaves the
    field from. (The chain is walked from ``first``: the editor moves a field's stops to where
    its row stands, not the field's own widget.)"""
    stop, widget = first, first.nextInFocusChain()
    while widget is not first and field.isAncestorOf(widget):
        if widget.focusPolicy() & Qt.FocusPolicy.TabFocus:
            stop = widget
        widget = widget.nextInFocusChain()
    return stop


def _delete_layout(layout: Any) -> None:
    while layout.count():
        item = layout.takeAt(0)
        if item.widget() is not None:
            item.widget().deleteLater()
        elif item.layout() is not None:
            _delete_layout(item.layout())
