"""The banner at the top of an editor opened from 被拒的修改 Refused edits: why the platform
refused the record's edit, in the words the view's row uses (``refusals.reason_text``), with a
button that puts the cursor back in the field the platform named.

Non-modal: the worker corrects the record with the reason in sight. It goes once the record
is saved (the save is what the next sync sends); whether the correction is enough is for the
platform to say then, and a new refusal lists the record again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app.core.display import field_label
from app.core.messages import Catalog
from app.ui.editor.duplicate_banner import BannerButton
from app.ui.refusals import reason_text

__all__ = ["RefusalBanner"]

_T = Catalog(
    {
        "head": ("平台拒绝了这条记录的修改：", "The platform refused this record's edit:"),
        "go": ("转到“{field}”", "Go to {field}"),
        "go_tip": ("把光标移到该字段", "Put the cursor in this field"),
    }
)
_STYLE = (
    "QFrame#refusalBanner { background: #fdecea; border: 2px solid #c62828; border-radius: 4px; }"
)


class RefusalBanner(QFrame):
    """``show_refusal(refused, form, lang)`` shows it; ``clear()`` hides it; ``set_lang``
    says it again in the other language. ``focus_field(field_id)`` is how its button moves
    the cursor (the editor's own). Made only for an editor opened from the view: the others
    open without it."""

    def __init__(self, parent: QWidget, focus_field: Callable[[str], None]) -> None:
        super().__init__(parent)
        self.setObjectName("refusalBanner")
        self.setStyleSheet(_STYLE)
        self.setVisible(False)
        self.refused: Any = None
        self._form: Any = None
        self._focus_field = focus_field
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        self.label = QLabel(self)
        self.label.setObjectName("refusalReason")
        self.label.setWordWrap(True)
        # selectable by keyboard: a Tab stop even when no field is named, and it can be copied
        self.label.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
            | Qt.TextInteractionFlag.TextSelectableByKeyboard
        )
        row.addWidget(self.label, 1)
        self.go_button = BannerButton(self)
        self.go_button.setObjectName("refusalGoToField")
        self.go_button.setAutoDefault(False)
        self.go_button.clicked.connect(lambda _c=False: self.go_to_field())
        row.addWidget(self.go_button)
        layout.addLayout(row)

    def follow(self, before: QWidget) -> None:
        """Tab stops right after ``before``, where the banner stands: made when first needed,
        its widgets would join the chain at the window's end, after every field. (Qt ignores
        a widget that takes no focus, as the editor's header, hence the moment's policy.)"""
        policy = before.focusPolicy()
        before.setFocusPolicy(Qt.FocusPolicy.TabFocus)
        QWidget.setTabOrder(before, self.label)
        QWidget.setTabOrder(self.label, self.go_button)
        before.setFocusPolicy(policy)

    @property
    def fields(self) -> list[str]:
        """The fields of the form the shown refusal named (none when hidden)."""
        if self.refused is None or self._form is None:
            return []
        return [f for f in self.refused.fields if f in self._form.fields]

    def show_refusal(self, refused: Any, form: Any, lang: str) -> None:
        """Show why the platform refused the record (a ``replica.Refused``)."""
        self.refused, self._form = refused, form
        self.set_lang(lang)
        self.setVisible(True)

    def set_lang(self, lang: str) -> None:
        if self.refused is None:
            return
        reason = reason_text(self.refused, self._form, lang)
        self.label.setText(f"{_T.text('head', lang)}\n{reason}")
        fields = self.fields
        if fields:
            name = field_label(self._form.fields.get(fields[0]), fields[0], lang)
            self.go_button.setText(_T.text("go", lang, field=name))
            self.go_button.setToolTip(_T.text("go_tip", lang))
        self.go_button.setVisible(bool(fields))

    def go_to_field(self) -> None:
        """The cursor into the first field the platform named."""
        fields = self.fields
        if fields:
            self._focus_field(fields[0])

    def clear(self, _record_id: str = "") -> None:
        """Gone: the record was saved (corrected, for the next sync to send)."""
        self.refused = self._form = None
        self.setVisible(False)
