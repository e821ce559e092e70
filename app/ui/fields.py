"""One input widget per field *type*, built from a form file's ``Field``.

Every widget is a ``FieldWidget``: ``value()`` returns the raw value as typed (what
``rules.coerce`` accepts; wrong text is kept, never dropped), ``set_value`` shows a stored or
prefilled value, ``changed`` fires on every edit, ``committed`` when the person leaves the field
(or presses Enter), ``nextRequested`` when Enter should move on. The editor owns validation and
shows its messages through ``set_message``; widgets only normalise what was typed (dates,
identifiers, phone numbers) when the field is left.

Long code tables (民族, 国籍, 行政区划) get a searchable picker whose index (code, both names,
pinyin and initials, the full region path) and Qt model are built on first use and shared by
every editor in the process, so opening a form stays as cheap as a form of line edits.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from pypinyin.pinyin_dict import pinyin_dict
from PySide6.QtCore import (
    QDate,
    QEvent,
    QModelIndex,
    QObject,
    QPointF,
    QRectF,
    QRegularExpression,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import (
    QIcon,
    QPainter,
    QPalette,
    QPen,
    QPixmap,
    QPolygonF,
    QRegularExpressionValidator,
    QResizeEvent,
    QStandardItem,
    QStandardItemModel,
)
from PySide6.QtWidgets import (
    QApplication,
    QCalendarWidget,
    QComboBox,
    QCompleter,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QListWidget,
    QListWidgetItem,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.core import rules
from app.core.formset import CodeTable, Field, FormSet
from app.core.phone import PhoneError, PostcodeError, parse_phone, parse_postcode
from app.core.records import is_empty
from app.core.textnorm import normalize_key
from app.ui.i18n import tr

__all__ = [
    "SHORT_TABLE_MAX",
    "CODE_ROLE",
    "SEARCH_ROLE",
    "CodeIndex",
    "code_index",
    "code_display",
    "FieldWidget",
    "LineField",
    "NumberField",
    "DateField",
    "IdNumberField",
    "CreditCodeField",
    "ChoiceField",
    "CodePickerField",
    "MultiChoiceField",
    "BooleanField",
    "CoordinatesField",
    "ReferenceField",
    "PhotoField",
    "make_field_widget",
]

SHORT_TABLE_MAX = 12  # up to this many codes: a plain drop-down; more: the searchable picker
CODE_ROLE = int(Qt.ItemDataRole.UserRole)  # plain ints: enum conversions cost per call
SEARCH_ROLE = CODE_ROLE + 1
_TITLE_ROLE = CODE_ROLE + 2
_ENTER_KEYS = (Qt.Key.Key_Return, Qt.Key.Key_Enter)
_SEVERITY_COLORS = {"error": "#c62828", "warning": "#e65100", "info": "#455a64"}


# --------------------------------------------------------------------------- code tables


def _code_path(table: CodeTable, code: str, lang: str) -> str:
    """'浙江省/杭州市/西湖区' for a hierarchical table, the plain label otherwise."""
    parts: list[str] = []
    seen: set[str] = set()
    current = table.codes.get(code)
    while current is not None and current.code not in seen:
        seen.add(current.code)
        parts.append(current.label(lang))
        current = table.codes.get(current.parent) if current.parent else None
    return "/".join(reversed(parts))


def code_display(table: CodeTable, code: str, lang: str = "zh") -> str:
    """How a picker shows a code: '330106 浙江省/杭州市/西湖区'; unknown codes as typed."""
    if code not in table.codes:
        return code
    return f"{code} {_code_path(table, code, lang)}"


@lru_cache(maxsize=16384)
def _char_pinyin(char: str) -> str:
    """The usual reading of one character without tones ('绿' -> 'lv'), from pypinyin's
    character table: what ``lazy_pinyin(char)`` returns, at a fraction of the cost (a region
    table has ~1,500 distinct characters and is indexed on first use)."""
    readings = pinyin_dict.get(ord(char))
    if not readings:
        return ""
    first = unicodedata.normalize("NFD", readings.split(",")[0]).replace("u\u0308", "v")
    return "".join(c for c in first if not unicodedata.combining(c))


@lru_cache(maxsize=65536)
def _pinyin(text: str) -> tuple[str, str]:
    """(full pinyin, initials) of the Chinese characters in ``text``, per character (cached)."""
    syllables = [s for s in (_char_pinyin(c) for c in text if not c.isascii()) if s]
    return "".join(syllables), "".join(s[0] for s in syllables)


@dataclass(frozen=True)
class CodeEntry:
    code: str
    display: str
    label: str
    search: str  # lower-case haystack: code, names in both languages, pinyin, initials


class CodeIndex:
    """One code table as a picker sees it in one language: its rows, their search text, and
    a Qt model over them built on first use. Historical codes are not offered (a stored one
    still shows and is still accepted when typed exactly)."""

    def __init__(self, table: CodeTable, lang: str, allowed: tuple[str, ...] | None) -> None:
        self.table, self.lang = table, lang
        other = "en" if lang == "zh" else "zh"
        entries = []
        for code in table.codes.values():
            if code.historical or (allowed is not None and code.code not in allowed):
                continue
            path = _code_path(table, code.code, lang)
            zh_path = path if lang == "zh" else _code_path(table, code.code, "zh")
            full, initials = _pinyin(code.zh)
            path_initials = "".join(_pinyin(part)[1] for part in zh_path.split("/"))
            haystack = " ".join(
                (code.code, path, code.label(other), full, initials, path_initials)
            ).lower()
            entries.append(CodeEntry(code.code, f"{code.code} {path}", path, haystack))
        self.entries: tuple[CodeEntry, ...] = tuple(entries)
        self.row_of = {e.code: i for i, e in enumerate(self.entries)}
        self._by_display = {e.display: e.code for e in self.entries}
        self._model: QStandardItemModel | None = None

    def matches(self, text: str) -> list[CodeEntry]:
        """Entries whose search text contains ``text`` (case-insensitive), in table order."""
        needle = text.strip().lower()
        return [e for e in self.entries if needle in e.search] if needle else []

    def resolve(self, text: str) -> str | None:
        """The code a person meant by ``text``, or None when it is not clear (none or many)."""
        text = text.strip()
        if not text:
            return None
        if text in self._by_display:
            return self._by_display[text]
        for candidate in (text, text.upper(), text.split()[0], text.split()[0].upper()):
            if candidate in self.table.codes:
                return candidate
        lowered = text.lower()
        exact = [
            e.code
            for e in self.entries
            if lowered in (e.label.lower(), e.label.rsplit("/", 1)[-1].lower())
            or lowered in (c.lower() for c in _names(self.table, e.code))
        ]
        if len(exact) == 1:
            return exact[0]
        # Then, narrowing each time: a whole search word ("hanzu"), the start of one, any part
        # ("hanzu" is also inside "gaoshanzu", so a whole word must win over a substring).
        found = self.matches(text)
        for narrower in (
            lambda e: lowered in e.search.split(),
            lambda e: any(word.startswith(lowered) for word in e.search.split()),
        ):
            best = [e for e in found if narrower(e)]
            if len(best) == 1:
                return best[0].code
        return found[0].code if len(found) == 1 else None

    def model(self) -> QStandardItemModel:
        """The shared Qt model (display text, search text, code per row)."""
        if self._model is None:
            items = []
            for entry in self.entries:
                item = QStandardItem(entry.display)
                item.setData(entry.code, CODE_ROLE)
                item.setData(entry.search, SEARCH_ROLE)
                items.append(item)
            model = QStandardItemModel()
            model.appendColumn(items)  # one call: a row at a time is several times slower
            self._model = model
        return self._model


def _names(table: CodeTable, code: str) -> tuple[str, str]:
    known = table.codes[code]
    return known.zh, known.en


_INDEXES: dict[tuple[int, str, tuple[str, ...] | None], tuple[CodeTable, CodeIndex]] = {}


def code_index(
    table: CodeTable, lang: str = "zh", allowed: tuple[str, ...] | None = None
) -> CodeIndex:
    """The process-wide cached ``CodeIndex`` of a table (built on first call)."""
    key = (id(table), lang, allowed)
    cached = _INDEXES.get(key)
    if cached is None or cached[0] is not table:
        cached = (table, CodeIndex(table, lang, allowed))
        _INDEXES[key] = cached
    return cached[1]


_OFFERED: dict[tuple[int, tuple[str, ...] | None], tuple[CodeTable, tuple[str, ...]]] = {}


def _offered_codes(field: Field, table: CodeTable) -> tuple[str, ...]:
    """The codes a field offers (its filter, no historical codes); cached per table."""
    key = (id(table), tuple(field.codes_filter) if field.codes_filter else None)
    cached = _OFFERED.get(key)
    if cached is None or cached[0] is not table:
        allowed = set(key[1]) if key[1] is not None else None
        codes = tuple(
            c.code
            for c in table.codes.values()
            if not c.historical and (allowed is None or c.code in allowed)
        )
        cached = _OFFERED[key] = (table, codes)
    return cached[1]


# --------------------------------------------------------------------------- the base class


class _FocusTracker(QObject):
    """One listener on the application's focus changes for every field widget."""

    _instance: _FocusTracker | None = None

    @classmethod
    def ensure(cls) -> None:
        app = QApplication.instance()
        if cls._instance is None and app is not None:
            cls._instance = cls(app)

    def __init__(self, app: QObject) -> None:
        super().__init__(app)
        app.focusChanged.connect(self._changed)  # type: ignore[attr-defined]

    def _changed(self, _old: QWidget | None, new: QWidget | None) -> None:
        widget = new
        while widget is not None:
            if isinstance(widget, FieldWidget):
                widget._focused()
                return
            widget = widget.parentWidget()


class FieldWidget(QWidget):
    """The editor's view of one field: a raw value, a message line, focus and Enter handling."""

    changed = Signal()
    committed = Signal()
    nextRequested = Signal()
    multiline = False  # True: Enter belongs to the widget (it never moves to the next field)
    compound = False  # True: several inner widgets side by side (else one, no extra layout)

    def __init__(
        self, field: Field, formset: FormSet, lang: str = "zh", parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.field, self.formset, self.lang = field, formset, lang
        self._message = ""
        self._message_label: QLabel | None = None
        self._layout: QVBoxLayout | None = None  # made when needed (see _add)
        self._main: QWidget | None = None
        self._row: QHBoxLayout | None = None
        self._inner: list[QWidget] = []
        self._filtering = False
        # The editor's direct hook for committed / nextRequested (the signals fire as well):
        # one connection per field instead of three, which is measurable on a 47-field form.
        self.listener: Callable[[FieldWidget, str], None] | None = None
        _FocusTracker.ensure()

    # -- the API the editor uses ---------------------------------------------------------

    def value(self) -> object:
        """The raw value as typed (None when empty)."""
        raise NotImplementedError

    def set_value(self, value: object) -> None:
        """Show ``value`` (a stored, prefilled or derived value); emits ``changed``."""
        raise NotImplementedError

    def focus_target(self) -> QWidget:
        """The widget that takes keyboard focus for this field."""
        raise NotImplementedError

    def live_check_ready(self) -> bool:
        """True when the value is long enough to check while typing (ID numbers, codes)."""
        return False

    def set_message(self, text: str, severity: str = "error") -> None:
        """Show ``text`` under the field in the severity's colour ('' hides it)."""
        if text == self._message:
            return
        self._message = text
        if self._message_label is None:
            if not text:
                return
            self._message_label = QLabel(self)
            self._message_label.setWordWrap(True)
            self._message_label.setTextFormat(Qt.TextFormat.PlainText)
            self._message_label.setObjectName("fieldMessage")
            self._ensure_layout().addWidget(self._message_label)
        color = _SEVERITY_COLORS.get(severity, _SEVERITY_COLORS["error"])
        self._message_label.setStyleSheet(f"color: {color};")
        self._message_label.setText(text)
        self._message_label.setVisible(bool(text))

    def message(self) -> str:
        """The message shown under the field ('' when none)."""
        return self._message

    def set_lang(self, lang: str) -> None:
        """Retranslate the widget's own words (placeholders, code names)."""
        self.lang = lang
        self._retranslate()

    def commit(self) -> None:
        """Finish an edit as if the person left the field (normalise, resolve typed text)."""
        self._commit()

    # -- for subclasses --------------------------------------------------------------------

    def _add(self, widget: QWidget, stretch: int = 0) -> None:
        """Put ``widget`` on the field's input row (above the message line).

        A one-widget field has no layout of its own until it shows a message: it sizes its
        only child itself (``resizeEvent``). Layouts nested in every row of a form cost more
        to build and lay out than the line edits they hold."""
        if not self.compound and self._layout is None and self._main is None:
            self._main = widget
            self.setSizePolicy(widget.sizePolicy())
            return
        if not self.compound:
            self._ensure_layout().insertWidget(0, widget, stretch)
            return
        if self._row is None:
            self._row = QHBoxLayout()
            self._row.setContentsMargins(0, 0, 0, 0)
            self._row.setSpacing(4)
            self._ensure_layout().insertLayout(0, self._row)
        self._row.addWidget(widget, stretch)

    def _ensure_layout(self) -> QVBoxLayout:
        if self._layout is None:
            self._layout = QVBoxLayout(self)
            self._layout.setContentsMargins(0, 0, 0, 0)
            self._layout.setSpacing(2)
            if self._main is not None:
                self._layout.addWidget(self._main)
                self._main = None
        return self._layout

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        main = self._main
        return main.sizeHint() if main is not None else super().sizeHint()

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        main = self._main
        return main.minimumSizeHint() if main is not None else super().minimumSizeHint()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt API)
        main = self._main
        if main is not None:
            main.setGeometry(0, 0, self.width(), self.height())
        super().resizeEvent(event)

    def _emit_committed(self) -> None:
        self.committed.emit()
        if self.listener is not None:
            self.listener(self, "committed")

    def _emit_next(self) -> None:
        self.nextRequested.emit()
        if self.listener is not None:
            self.listener(self, "next")

    def _watch(self, widget: QWidget) -> None:
        """Route Enter and focus-out of an inner widget through this field.

        The event filter is installed when the field first gets focus (``_FocusTracker``):
        a Python filter on every widget from the start would run for each of the dozens of
        events a widget gets while a form is built and shown, which costs more than the
        widgets themselves."""
        self._inner.append(widget)
        if self._filtering:
            widget.installEventFilter(self)

    def watch_events(self) -> None:
        """Install the event filter now (done automatically on first focus)."""
        if not self._filtering:
            self._filtering = True
            for widget in self._inner:
                widget.installEventFilter(self)

    def _focused(self) -> None:
        """Called by the focus tracker when focus enters this field."""
        first = not self._filtering
        self.watch_events()
        if first:
            self._focus_in()  # the FocusIn event itself went by before the filter existed

    def _help_text(self) -> str:
        return self.field.help.get(self.lang) if self.field.help else ""

    def _commit(self) -> None:
        """Normalise what was typed (subclasses)."""

    def _retranslate(self) -> None:
        """Subclasses update their own texts."""

    def _focus_in(self) -> None:
        """Subclasses prepare lazily built parts."""

    def _key_press(self, obj: QObject, event: QEvent) -> bool:
        """Subclasses handle extra keys; True consumes the event."""
        return False

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt API)
        kind = event.type()
        if kind == QEvent.Type.KeyPress:
            mods = event.modifiers()
            ctrl_or_alt = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier
            if event.key() in _ENTER_KEYS and not (mods & ctrl_or_alt) and not self.multiline:
                self._commit()
                self._emit_next()
                return True
            return self._key_press(obj, event)
        if kind == QEvent.Type.FocusIn:
            self._focus_in()
        elif kind == QEvent.Type.FocusOut and event.reason() != Qt.FocusReason.PopupFocusReason:
            now = QApplication.focusWidget()
            if now is None or not self.isAncestorOf(now):
                self._commit()
                self._emit_committed()
        return False


# --------------------------------------------------------------------------- line edits


@cache
def _icon(kind: str) -> QIcon:
    """Small icons drawn once (no icon theme offscreen or on a bare tablet image)."""
    pixmap = QPixmap(16, 16)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    color = QApplication.palette().color(QPalette.ColorRole.WindowText)
    painter.setPen(QPen(color, 1.2))
    if kind == "calendar":
        painter.drawRect(QRectF(1.5, 2.5, 13, 12))
        painter.fillRect(QRectF(1.5, 2.5, 13, 3), color)
        for x in (4, 7.5, 11):
            for y in (8, 11.5):
                painter.fillRect(QRectF(x - 0.75, y - 0.75, 1.5, 1.5), color)
    else:  # "list": a down-pointing triangle
        painter.setBrush(color)
        painter.drawPolygon(QPolygonF([QPointF(4.5, 6.5), QPointF(11.5, 6.5), QPointF(8, 10.5)]))
    painter.end()
    return QIcon(pixmap)


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


# --------------------------------------------------------------------------- choices


_COMBO_HINTS: dict[tuple[str, str], tuple[QSize, QSize]] = {}


class _PopupCombo(QComboBox):
    """A combo box that prepares its lazily filled list before it opens.

    Its size hints come from one probe per style and font: QComboBox computes them by
    building its popup list, which is most of what a combo box costs to open in a form."""

    def __init__(
        self, before_popup: Callable[[], None] | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._before_popup = before_popup

    def showPopup(self) -> None:  # noqa: N802 (Qt API)
        if self._before_popup is not None:
            self._before_popup()
        super().showPopup()

    def _hints(self) -> tuple[QSize, QSize] | None:
        style = self.style()
        if style.metaObject().className() == "QStyleSheetStyle":
            return None  # style sheets (touch mode) change sizes: ask Qt
        key = (style.objectName(), self.font().key())
        hints = _COMBO_HINTS.get(key)
        if hints is None:
            probe = QComboBox()
            probe.setFont(self.font())
            hints = _COMBO_HINTS[key] = (probe.sizeHint(), probe.minimumSizeHint())
            probe.deleteLater()
        return hints

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        hints = self._hints()
        return QSize(hints[0]) if hints else super().sizeHint()

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        hints = self._hints()
        return QSize(hints[1]) if hints else super().minimumSizeHint()


class ChoiceField(FieldWidget):
    """choice over a short table: a drop-down; typing a code's first characters selects it.

    The list is filled on first focus or first opening (filling combo boxes is most of the
    cost of opening a form); until then it holds only the current value."""

    def __init__(
        self, field: Field, formset: FormSet, lang: str = "zh", parent: QWidget | None = None
    ) -> None:
        super().__init__(field, formset, lang, parent)
        self.table = formset.table(field.codes or "")
        self._filled = False
        self.combo = _PopupCombo(self.fill, self)  # empty until filled: value None
        self._add(self.combo)
        self._watch(self.combo)
        self.combo.currentIndexChanged.connect(self.changed)
        help_text = self._help_text()
        if help_text:
            self.combo.setToolTip(help_text)

    def value(self) -> object:
        return self.combo.currentData()

    def set_value(self, value: object) -> None:
        code = None if is_empty(value) else rules.coerce(self.field, value, self.formset)
        if code is None and self.combo.count() == 0:
            self.combo.setCurrentIndex(-1)
            return
        if self.combo.count() == 0:
            self.combo.addItem("", None)
        index = 0 if code is None else self.combo.findData(code)
        if index < 0:  # not listed yet (list not filled) or unknown: show it, never drop it
            self.combo.addItem(self._text(str(code)), code)
            index = self.combo.count() - 1
        self.combo.setCurrentIndex(index)

    def focus_target(self) -> QWidget:
        return self.combo

    def fill(self) -> None:
        """Fill the list with the table's codes (once), keeping the current value."""
        if self._filled:
            return
        self._filled = True
        current = self.combo.currentData()
        self.combo.blockSignals(True)
        self.combo.clear()
        self.combo.addItem("", None)
        for code in _offered_codes(self.field, self.table):
            self.combo.addItem(self._text(code), code)
        index = 0
        if current is not None:
            index = self.combo.findData(current)
            if index < 0:
                self.combo.addItem(self._text(str(current)), current)
                index = self.combo.count() - 1
        self.combo.setCurrentIndex(index)
        self.combo.blockSignals(False)

    def _text(self, code: str) -> str:
        if code in self.table.codes:
            return code_display(self.table, code, self.lang)
        return tr("unknown_code", self.lang, code=code)

    def _focus_in(self) -> None:
        self.fill()

    def _key_press(self, obj: QObject, event: QEvent) -> bool:
        self.fill()
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            self.combo.setCurrentIndex(0)
            return True
        return False

    def _retranslate(self) -> None:
        for row in range(self.combo.count()):
            if self.combo.itemData(row) is None:
                continue
            self.combo.setItemText(row, self._text(str(self.combo.itemData(row))))
        self.combo.setToolTip(self._help_text())


class BooleanField(FieldWidget):
    """boolean: 是 / 否 / (not answered); keys Y/1 and N/0 answer from the keyboard."""

    def __init__(
        self, field: Field, formset: FormSet, lang: str = "zh", parent: QWidget | None = None
    ) -> None:
        super().__init__(field, formset, lang, parent)
        self.combo = _PopupCombo(None, self)
        self.combo.addItems(["", tr("yes", lang), tr("no", lang)])
        self.combo.setMinimumContentsLength(4)
        self.combo.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self._ensure_layout().insertWidget(0, self.combo, 0, Qt.AlignmentFlag.AlignLeft)
        self._watch(self.combo)
        self.combo.currentIndexChanged.connect(self.changed)
        help_text = self._help_text()
        if help_text:
            self.combo.setToolTip(help_text)

    def value(self) -> object:
        return {0: None, 1: True, 2: False}[max(self.combo.currentIndex(), 0)]

    def set_value(self, value: object) -> None:
        coerced = None if is_empty(value) else rules.coerce(self.field, value, self.formset)
        self.combo.setCurrentIndex(1 if coerced is True else 2 if coerced is False else 0)

    def focus_target(self) -> QWidget:
        return self.combo

    def _key_press(self, obj: QObject, event: QEvent) -> bool:
        text = event.text().lower()
        index = {"y": 1, "1": 1, "是": 1, "n": 2, "0": 2, "否": 2}.get(text)
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            index = 0
        if index is None:
            return False
        self.combo.setCurrentIndex(index)
        return True

    def _retranslate(self) -> None:
        self.combo.setItemText(1, tr("yes", self.lang))
        self.combo.setItemText(2, tr("no", self.lang))
        self.combo.setToolTip(self._help_text())


class _DisplayCompleter(QCompleter):
    """Matches on the search text but puts the display text into the line edit."""

    def pathFromIndex(self, index: QModelIndex) -> str:  # noqa: N802 (Qt API)
        return str(index.data(Qt.ItemDataRole.DisplayRole) or "")


class CodePickerField(FieldWidget):
    """choice over a long table (民族, 国籍, 行政区划): type a code, a name (zh or en), pinyin or
    pinyin initials and pick from a list that filters as you type (contains, not only
    prefix); regions show their full path. ▾ (or Down / F4) lists everything.

    A line edit with a completer rather than an editable combo box: the same searchable
    picker at a third of the cost, and the completer is made on first focus or typing."""

    def __init__(
        self, field: Field, formset: FormSet, lang: str = "zh", parent: QWidget | None = None
    ) -> None:
        super().__init__(field, formset, lang, parent)
        self.table = formset.table(field.codes or "")
        self._allowed = tuple(field.codes_filter) if field.codes_filter else None
        self._value: str | None = None
        self._completer: _DisplayCompleter | None = None
        self.edit = QLineEdit(self)
        self._add(self.edit, 1)
        self._watch(self.edit)
        self.edit.textEdited.connect(lambda _text: self._ensure_completer())
        self.list_action = self.edit.addAction(
            _icon("list"), QLineEdit.ActionPosition.TrailingPosition
        )
        self.list_action.triggered.connect(lambda _checked=False: self.show_list(everything=True))
        self._retranslate()

    @property
    def index(self) -> CodeIndex:
        """The table's search index in the current language (shared, built on first use)."""
        return code_index(self.table, self.lang, self._allowed)

    def value(self) -> object:
        return self._value

    def set_value(self, value: object) -> None:
        code = None if is_empty(value) else rules.coerce(self.field, value, self.formset)
        if code is not None and code not in self.table.codes:
            code = self.index.resolve(str(code)) or str(code)
        self._set(code)

    def focus_target(self) -> QWidget:
        return self.edit

    def display_text(self) -> str:
        """What the line edit shows."""
        return self.edit.text()

    def completer(self) -> QCompleter:
        """The completer (made on first use)."""
        return self._ensure_completer()

    def show_list(self, everything: bool = False) -> None:
        """Open the list: everything, or what matches the text typed so far."""
        completer = self._ensure_completer()
        text = self.edit.text()
        if everything or text == self._display(self._value):
            text = ""
        completer.setCompletionPrefix(text)
        self.edit.setFocus(Qt.FocusReason.OtherFocusReason)
        completer.complete()

    def _display(self, code: str | None) -> str:
        return "" if code is None else code_display(self.table, code, self.lang)

    def _set(self, code: str | None) -> None:
        old = self._value
        self._value = code
        self.edit.setText(self._display(code))
        if code != old:
            self.changed.emit()

    def _ensure_completer(self) -> _DisplayCompleter:
        if self._completer is None:
            completer = _DisplayCompleter(self.index.model(), self)
            completer.setCompletionRole(SEARCH_ROLE)
            completer.setFilterMode(Qt.MatchFlag.MatchContains)
            completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
            completer.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
            completer.setMaxVisibleItems(12)
            popup = completer.popup()
            if isinstance(popup, QListView):
                popup.setUniformItemSizes(True)
            completer.activated[QModelIndex].connect(self._completed)
            self.edit.setCompleter(completer)
            self._completer = completer
            typed = self.edit.text()
            if self.edit.hasFocus() and typed and typed != self._display(self._value):
                completer.setCompletionPrefix(typed)  # the keystroke that made us
                completer.complete()
        return self._completer

    def _focus_in(self) -> None:
        self._ensure_completer()

    def _key_press(self, obj: QObject, event: QEvent) -> bool:
        alt_down = event.key() == Qt.Key.Key_Down and (
            event.modifiers() & Qt.KeyboardModifier.AltModifier
        )
        if event.key() in (Qt.Key.Key_F4, Qt.Key.Key_Down) or alt_down:
            popup = self._ensure_completer().popup()
            if not popup.isVisible():
                self.show_list()
                return True
        return False

    def _completed(self, index: QModelIndex) -> None:
        code = index.data(CODE_ROLE)
        if code:
            self._set(str(code))

    def _commit(self) -> None:
        if self._completer is not None:
            self._completer.popup().hide()
        text = self.edit.text()
        if text == self._display(self._value):
            return
        if not text.strip():
            self._set(None)
            return
        code = self.index.resolve(text)
        self._set(code if code is not None else text.strip())
        if code is None:
            self.edit.setText(text.strip())

    def _retranslate(self) -> None:
        self.edit.setPlaceholderText(tr("picker_placeholder", self.lang))
        self.edit.setToolTip(self._help_text())
        if self._completer is not None:  # the model is per language
            self._completer.setModel(self.index.model())
        self.edit.setText(self._display(self._value))


class MultiChoiceField(FieldWidget):
    """multi_choice: a checkable list (Space toggles the current row)."""

    def __init__(
        self, field: Field, formset: FormSet, lang: str = "zh", parent: QWidget | None = None
    ) -> None:
        super().__init__(field, formset, lang, parent)
        self.table = formset.table(field.codes or "")
        self.list = QListWidget(self)
        for code in _offered_codes(field, self.table):
            self._add_item(code)
        rows = min(max(self.list.count(), 1), 8)
        self.list.setFixedHeight(rows * (self.list.fontMetrics().height() + 8) + 6)
        self._add(self.list, 1)
        self._watch(self.list)
        self.list.itemChanged.connect(self._item_changed)
        self._quiet = False
        self.list.setToolTip(self._help_text())

    def _add_item(self, code: str) -> QListWidgetItem:
        item = QListWidgetItem(self._label(code), self.list)
        item.setData(CODE_ROLE, code)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(Qt.CheckState.Unchecked)
        return item

    def _label(self, code: str) -> str:
        if code in self.table.codes:
            return code_display(self.table, code, self.lang)
        return tr("unknown_code", self.lang, code=code)

    def _items(self) -> list[QListWidgetItem]:
        return [self.list.item(i) for i in range(self.list.count())]

    def _item_changed(self, _item: QListWidgetItem) -> None:
        if not self._quiet:
            self.changed.emit()

    def value(self) -> object:
        codes = [
            str(i.data(CODE_ROLE)) for i in self._items() if i.checkState() == Qt.CheckState.Checked
        ]
        return codes or None

    def set_value(self, value: object) -> None:
        coerced = [] if is_empty(value) else rules.coerce(self.field, value, self.formset)
        wanted = [str(c) for c in coerced] if isinstance(coerced, list) else [str(coerced)]
        self._quiet = True
        known = {str(i.data(CODE_ROLE)) for i in self._items()}
        for code in wanted:
            if code not in known:
                self._add_item(code)
        for item in self._items():
            checked = str(item.data(CODE_ROLE)) in wanted
            item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
        self._quiet = False
        self.changed.emit()

    def focus_target(self) -> QWidget:
        return self.list

    def _retranslate(self) -> None:
        self._quiet = True
        for item in self._items():
            item.setText(self._label(str(item.data(CODE_ROLE))))
        self._quiet = False
        self.list.setToolTip(self._help_text())


# --------------------------------------------------------------------------- coordinates


class CoordinatesField(FieldWidget):
    """coordinates: longitude and latitude boxes (WGS84), plus a box that takes a pasted point
    ('116.39, 39.90', DMS, 东经/北纬) from GPS, 高德/腾讯 (GCJ-02) or 百度 (BD-09) and converts it."""

    compound = True

    DATUMS = ("wgs84", "gcj02", "bd09")

    def __init__(
        self, field: Field, formset: FormSet, lang: str = "zh", parent: QWidget | None = None
    ) -> None:
        super().__init__(field, formset, lang, parent)
        number = QRegularExpressionValidator(
            QRegularExpression(r"-?[0-9]{0,3}([.][0-9]{0,9})?"), self
        )
        self.lon, self.lat = QLineEdit(self), QLineEdit(self)
        for edit in (self.lon, self.lat):
            edit.setValidator(number)
            edit.setMaximumWidth(140)
            edit.textChanged.connect(self.changed)
            self._add(edit)
            self._watch(edit)
        self.paste = QLineEdit(self)
        self.paste.textChanged.connect(self.changed)
        self._add(self.paste, 1)
        self._watch(self.paste)
        self.datum = QComboBox(self)
        self.datum.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.datum.addItems([tr(f"datum_{d}", lang) for d in self.DATUMS])
        self._add(self.datum)
        from app.ui.position import PositionButton  # hides itself when there is no source

        self.locate = PositionButton(self, lang)
        self.locate.position.connect(self.set_position)
        self._add(self.locate)
        self._retranslate()

    def set_position(self, point: object) -> None:
        """Fill from a position source (WGS84 ``LonLat``): "use my position"."""
        self.paste.clear()
        self.datum.setCurrentIndex(self.DATUMS.index("wgs84"))
        self.lon.setText(f"{point.lon:.7f}")  # type: ignore[attr-defined]
        self.lat.setText(f"{point.lat:.7f}")  # type: ignore[attr-defined]

    def value(self) -> object:
        pasted = self.paste.text().strip()
        if pasted:
            return pasted
        lon, lat = self.lon.text().strip(), self.lat.text().strip()
        if not lon and not lat:
            return None
        try:
            return {"lon": float(lon), "lat": float(lat)}
        except ValueError:
            return f"{lon},{lat}"

    def set_value(self, value: object) -> None:
        self.paste.clear()
        self.lon.clear()
        self.lat.clear()
        if isinstance(value, dict) and "lon" in value and "lat" in value:
            self.lon.setText(_fmt_degree(value["lon"]))
            self.lat.setText(_fmt_degree(value["lat"]))
        elif not is_empty(value):
            self.paste.setText(str(value))
            self._apply_paste()

    def focus_target(self) -> QWidget:
        return self.lon

    def set_datum(self, datum: str) -> None:
        """Where pasted points come from: 'wgs84', 'gcj02' (高德/腾讯) or 'bd09' (百度)."""
        self.datum.setCurrentIndex(self.DATUMS.index(datum))

    def _apply_paste(self) -> bool:
        from app.core import geo  # pulls in pyproj: only when a point is pasted

        text = self.paste.text().strip()
        if not text:
            return False
        try:
            point = geo.to_wgs(geo.parse_coordinates(text), self.DATUMS[self.datum.currentIndex()])
            point = geo.check_range(point)
        except geo.GeoError:
            return False  # the text stays; validation says what is wrong
        self.lon.setText(_fmt_degree(point.lon))
        self.lat.setText(_fmt_degree(point.lat))
        self.paste.clear()
        return True

    def _commit(self) -> None:
        self._apply_paste()

    def _retranslate(self) -> None:
        self.lon.setPlaceholderText(tr("lon", self.lang))
        self.lat.setPlaceholderText(tr("lat", self.lang))
        self.paste.setPlaceholderText(tr("coords_paste", self.lang))
        self.paste.setToolTip(self._help_text())
        for i, datum in enumerate(self.DATUMS):
            self.datum.setItemText(i, tr(f"datum_{datum}", self.lang))
        self.datum.setToolTip(tr("coords_datum_tip", self.lang))


def _fmt_degree(value: object) -> str:
    try:
        return f"{float(value):.7f}".rstrip("0").rstrip(".")  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value)


# --------------------------------------------------------------------------- references


class ReferenceField(FieldWidget):
    """reference: shows the referenced record's title; typing searches the store (name,
    pinyin initials, address, number tails) among records of the target form; 新建 asks the
    editor to create one (``createRequested(target_form)``)."""

    compound = True

    createRequested = Signal(str)

    def __init__(
        self,
        field: Field,
        formset: FormSet,
        lang: str = "zh",
        parent: QWidget | None = None,
        store: Any = None,
    ) -> None:
        super().__init__(field, formset, lang, parent)
        self.store = store
        self._value: str | None = None
        self._title = ""
        self.edit = QLineEdit(self)
        self._add(self.edit, 1)
        self._watch(self.edit)
        self.create_button = QToolButton(self)
        self.create_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.create_button.clicked.connect(lambda: self.createRequested.emit(field.target or ""))
        self._add(self.create_button)
        self._results = QStandardItemModel(self)
        self.completer = QCompleter(self._results, self)
        self.completer.setWidget(self.edit)
        self.completer.setCompletionMode(QCompleter.CompletionMode.UnfilteredPopupCompletion)
        self.completer.activated[QModelIndex].connect(self._picked)
        self.edit.textEdited.connect(self.search)
        self._retranslate()

    def value(self) -> object:
        return self._value

    def set_value(self, value: object) -> None:
        record_id = None if is_empty(value) else str(value)
        self._value = record_id
        self._title = self._title_of(record_id)
        self.edit.setText(self._title)
        self.changed.emit()

    def focus_target(self) -> QWidget:
        return self.edit

    def title(self) -> str:
        return self._title

    def search(self, text: str) -> int:
        """Fill the popup with records of the target form matching ``text``; returns how many."""
        self._results.clear()
        found = (
            self.store.search(text, form=self.field.target, limit=20)
            if self.store and text.strip()
            else []
        )
        for summary in found:
            item = QStandardItem(f"{summary.title}  ·  {summary.grid or ''}".rstrip(" ·"))
            item.setData(summary.id, CODE_ROLE)
            item.setData(summary.title, _TITLE_ROLE)
            self._results.appendRow(item)
        if found:
            self.completer.complete()
        else:
            self.completer.popup().hide()
        return len(found)

    def _picked(self, index: QModelIndex) -> None:
        record_id = index.data(CODE_ROLE)
        if record_id:
            self.set_value(str(record_id))
            self._emit_committed()

    def _title_of(self, record_id: str | None) -> str:
        if record_id is None:
            return ""
        record = self.store.get(record_id) if self.store is not None else None
        if record is None or record.deleted:
            return f"{record_id} {tr('ref_missing', self.lang)}"
        return record.title or record_id

    def _commit(self) -> None:
        self.completer.popup().hide()
        text = self.edit.text().strip()
        if text == self._title:
            return
        if not text:
            self.set_value(None)
            return
        if self.search(text) == 1:  # one match: that is the one meant
            self.completer.popup().hide()
            self.set_value(self._results.item(0).data(CODE_ROLE))
            return
        self.completer.popup().hide()
        self.edit.setText(self._title)  # search text is not data: show the current choice again

    def _retranslate(self) -> None:
        self.edit.setPlaceholderText(tr("ref_placeholder", self.lang))
        self.edit.setToolTip(self._help_text())
        self.create_button.setText(tr("ref_create", self.lang))
        if self._value is not None:
            self._title = self._title_of(self._value)
            self.edit.setText(self._title)


# --------------------------------------------------------------------------- the factory

_LINE_TYPES: dict[str, type[LineField]] = {
    "text": LineField,
    "phone": LineField,
    "postcode": LineField,
    "integer": NumberField,
    "decimal": NumberField,
    "date": DateField,
    "id_number": IdNumberField,
    "credit_code": CreditCodeField,
    "photo": PhotoField,
}


def make_field_widget(
    field: Field,
    formset: FormSet,
    lang: str = "zh",
    store: Any = None,
    parent: QWidget | None = None,
) -> FieldWidget:
    """The widget for ``field``'s type (the form file decides; code never looks at field ids)."""
    kind = field.type
    if kind in _LINE_TYPES:
        return _LINE_TYPES[kind](field, formset, lang, parent)
    if kind == "choice":
        table = formset.table(field.codes or "")
        short = len(_offered_codes(field, table)) <= SHORT_TABLE_MAX
        return (ChoiceField if short else CodePickerField)(field, formset, lang, parent)
    if kind == "multi_choice":
        return MultiChoiceField(field, formset, lang, parent)
    if kind == "boolean":
        return BooleanField(field, formset, lang, parent)
    if kind == "coordinates":
        return CoordinatesField(field, formset, lang, parent)
    if kind == "reference":
        return ReferenceField(field, formset, lang, parent, store=store)
    raise ValueError(f"no widget for field type {kind!r}")
