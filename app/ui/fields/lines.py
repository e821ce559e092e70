"""Line-edit field widgets: text, phone, postcode, numbers, dates, identifiers and photos.

They keep whatever was typed and only normalise it (dates, identifiers, phone numbers)
when the field is left, so the editor's rules see the raw value.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import (
    QDate,
    QRegularExpression,
    Qt,
)
from PySide6.QtGui import (
    QRegularExpressionValidator,
)
from PySide6.QtWidgets import (
    QCalendarWidget,
    QFileDialog,
    QLineEdit,
    QToolButton,
    QWidget,
)

from app.core import rules
from app.core.forms import Field, FormSet
from app.core.phone import PhoneError, PostcodeError, parse_phone, parse_postcode
from app.core.records import is_empty
from app.core.textnorm import normalize_key
from app.ui.fields.base import FieldWidget, _icon
from app.ui.i18n import tr

# --------------------------------------------------------------------------- line edits


def _max_length(field: Field) -> int | None:
    limit = field.checks.get("max_length")
    if limit is not None:
        return int(limit)  # type: ignore[call-overload]
    if field.type == "text":
        return rules.DEFAULT_TEXT_MAX
    return None


class LineField(FieldWidget):
    """text, phone, postcode (and the base of the other one-line types)."""

    placeholder_key: str | None = None

    def __init__(
        self, field: Field, formset: FormSet, lang: str = "zh", parent: QWidget | None = None
    ) -> None:
        super().__init__(field, formset, lang, parent)
        self.edit = QLineEdit(self)
        limit = _max_length(field)
        if limit:
            self.edit.setMaxLength(limit)
        self._add(self.edit, 1)
        self._watch(self.edit)
        self.edit.textChanged.connect(self.changed)
        self._retranslate()

    def value(self) -> object:
        text = self.edit.text()
        return text if text.strip() else None

    def set_value(self, value: object) -> None:
        text = "" if is_empty(value) else str(value)
        if len(text) > self.edit.maxLength():  # never cut a stored value; validation flags it
            self.edit.setMaxLength(len(text))
        self.edit.setText(text)

    def focus_target(self) -> QWidget:
        return self.edit

    def _retranslate(self) -> None:
        help_text = self._help_text()
        self.edit.setToolTip(help_text)
        hint = tr(self.placeholder_key, self.lang) if self.placeholder_key else help_text
        self.edit.setPlaceholderText(hint)

    def _normalised(self, text: str) -> str | None:
        """The tidy form of ``text`` to show after leaving the field (None: leave it)."""
        if self.field.type == "phone":
            return _or_none(parse_phone, text, PhoneError)
        if self.field.type == "postcode":
            return _or_none(parse_postcode, text, PostcodeError)
        return None

    def _commit(self) -> None:
        text = self.edit.text()
        if not text.strip():
            return
        tidy = self._normalised(text)
        if tidy is not None and tidy != text:
            self.edit.setText(tidy)


def _or_none(parse: Callable[[str], str], text: str, error: type[Exception]) -> str | None:
    try:
        return parse(text)
    except error:
        return None


class NumberField(LineField):
    """integer / decimal: a line edit with a validator (spin boxes eat typing and wheel)."""

    def __init__(
        self, field: Field, formset: FormSet, lang: str = "zh", parent: QWidget | None = None
    ) -> None:
        super().__init__(field, formset, lang, parent)
        digits = "[0-9０-９,，]*"
        pattern = (
            f"[-+]?{digits}" if field.type == "integer" else f"[-+]?{digits}([.．][0-9０-９]*)?"
        )
        self.edit.setValidator(QRegularExpressionValidator(QRegularExpression(pattern), self.edit))
        self.edit.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def _normalised(self, text: str) -> str | None:
        return unicodedata.normalize("NFKC", text).replace(" ", "")


class IdNumberField(LineField):
    """id_number: checked as you type once 18 (or 15) characters are in."""

    def __init__(
        self, field: Field, formset: FormSet, lang: str = "zh", parent: QWidget | None = None
    ) -> None:
        super().__init__(field, formset, lang, parent)
        if "max_length" not in field.checks:
            self.edit.setMaxLength(24)  # room for pasted spaces

    def live_check_ready(self) -> bool:
        key = normalize_key(self.edit.text())
        return len(key) >= 18 or (len(key) == 15 and key.isdigit())

    def _normalised(self, text: str) -> str | None:
        return normalize_key(text)


class CreditCodeField(IdNumberField):
    """credit_code: checked as you type once 18 characters are in."""

    def live_check_ready(self) -> bool:
        return len(normalize_key(self.edit.text())) >= 18


class DateField(LineField):
    """date: typed as 1985-06-15, 19850615, 1985/6/15 or 1985年6月15日; a calendar button inside
    the box (an action of the line edit: no extra layout, not a Tab stop)."""

    placeholder_key = "date_placeholder"

    def __init__(
        self, field: Field, formset: FormSet, lang: str = "zh", parent: QWidget | None = None
    ) -> None:
        super().__init__(field, formset, lang, parent)
        self.edit.setMaxLength(20)
        self.calendar_action = self.edit.addAction(
            _icon("calendar"), QLineEdit.ActionPosition.TrailingPosition
        )
        self.calendar_action.triggered.connect(lambda _checked=False: self.show_calendar())
        self.calendar_action.setToolTip(tr("date_calendar", lang))
        self._calendar: QCalendarWidget | None = None

    def _normalised(self, text: str) -> str | None:
        return rules.parse_date(text)

    def show_calendar(self) -> QCalendarWidget:
        """Open the calendar popup under the field (built on first use)."""
        if self._calendar is None:
            self._calendar = QCalendarWidget(self)
            self._calendar.setWindowFlags(Qt.WindowType.Popup)
            self._calendar.setMinimumDate(QDate(1880, 1, 1))
            self._calendar.clicked.connect(self._picked)
            self._calendar.activated.connect(self._picked)
        iso = rules.parse_date(self.edit.text())
        if iso:
            self._calendar.setSelectedDate(QDate.fromString(iso, Qt.DateFormat.ISODate))
        self._calendar.move(self.edit.mapToGlobal(self.edit.rect().bottomLeft()))
        self._calendar.show()
        return self._calendar

    def _picked(self, date: QDate) -> None:
        self.edit.setText(date.toString(Qt.DateFormat.ISODate))
        if self._calendar is not None:
            self._calendar.hide()
        self.edit.setFocus(Qt.FocusReason.OtherFocusReason)
        self._emit_committed()

    def _retranslate(self) -> None:
        super()._retranslate()
        if hasattr(self, "calendar_action"):
            self.calendar_action.setToolTip(tr("date_calendar", self.lang))


class PhotoField(LineField):
    """photo: a file chooser storing the chosen file's name."""

    compound = True

    def __init__(
        self, field: Field, formset: FormSet, lang: str = "zh", parent: QWidget | None = None
    ) -> None:
        super().__init__(field, formset, lang, parent)
        self.chooser: Callable[[QWidget], str] = _choose_photo
        self.choose_button = QToolButton(self)
        self.choose_button.setText(tr("photo_choose", lang))
        self.choose_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.choose_button.clicked.connect(self.choose)
        self._add(self.choose_button)

    def choose(self) -> None:
        """Ask for a file (``chooser`` is replaceable, e.g. by tests) and keep its name."""
        path = self.chooser(self)
        if path:
            self.edit.setText(path)
            self._emit_committed()

    def _retranslate(self) -> None:
        super()._retranslate()
        if hasattr(self, "choose_button"):
            self.choose_button.setText(tr("photo_choose", self.lang))


def _choose_photo(parent: QWidget) -> str:
    lang = getattr(parent, "lang", "zh")
    path, _ = QFileDialog.getOpenFileName(
        parent, tr("photo_choose", lang), str(Path.home()), tr("photo_filter", lang)
    )
    return path
