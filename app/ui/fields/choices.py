"""Code-table field widgets: drop-downs, the searchable picker, multi-choice and yes/no.

Short tables get a plain drop-down; long ones a picker over the shared ``CodeIndex``.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import (
    QEvent,
    QModelIndex,
    QObject,
    QSize,
    Qt,
)
from PySide6.QtGui import QStandardItem, QStandardItemModel, QWheelEvent
from PySide6.QtWidgets import (
    QComboBox,
    QCompleter,
    QLineEdit,
    QListView,
    QListWidget,
    QListWidgetItem,
    QSizePolicy,
    QWidget,
)

from app.core import rules
from app.core.forms import Field, FormSet
from app.core.records import is_empty
from app.ui.fields.base import CODE_ROLE, FieldWidget, WheelGuarded, _icon
from app.ui.fields.code_index import (
    CodeEntry,
    CodeIndex,
    _offered_codes,
    code_display,
    code_index,
)
from app.ui.i18n import tr

# --------------------------------------------------------------------------- choices


_COMBO_HINTS: dict[tuple[str, str], tuple[QSize, QSize]] = {}


class _PopupCombo(WheelGuarded, QComboBox):
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

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 (Qt API)
        if self._before_popup is not None and self.hasFocus():
            self._before_popup()  # the wheel is about to step through the list
        super().wheelEvent(event)

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

    The list is filled on the first key, wheel turn or opening while focused (filling combo
    boxes is most of the cost of opening a form, and the editor puts the cursor in the first
    field as it opens); until then it holds only the current value."""

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
        if self.combo.count() == 0:  # the first item becomes current: not a change to report
            blocked = self.combo.blockSignals(True)
            self.combo.addItem("", None)
            self.combo.blockSignals(blocked)
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
    """Puts the display text (not the search text) into the line edit."""

    def pathFromIndex(self, index: QModelIndex) -> str:  # noqa: N802 (Qt API)
        return str(index.data(Qt.ItemDataRole.DisplayRole) or "")


SHOWN_MATCHES = 200  # rows a typed search lists (the best come first; nobody reads further)


class CodePickerField(FieldWidget):
    """choice over a long table (民族, 国籍, 行政区划): type a code, a name (zh or en), pinyin or
    pinyin initials and pick from a list that filters as you type (contains, not only
    prefix), best match first and selected, so one Enter takes it; regions show their full
    path and the worker's own county and city come first. ▾ (or Down / F4) lists everything.

    A line edit with a completer rather than an editable combo box: the same searchable
    picker at a third of the cost, and the completer is made on first focus or typing."""

    def __init__(
        self,
        field: Field,
        formset: FormSet,
        lang: str = "zh",
        parent: QWidget | None = None,
        home: Callable[[], tuple[str, ...]] | None = None,
    ) -> None:
        super().__init__(field, formset, lang, parent)
        self.table = formset.table(field.codes or "")
        self._allowed = tuple(field.codes_filter) if field.codes_filter else None
        self._home = home
        self._value: str | None = None
        self._completer: _DisplayCompleter | None = None
        self._matches_model: QStandardItemModel | None = None  # made on first typed search
        self._entering = False
        self.edit = QLineEdit(self)
        self._add(self.edit, 1)
        self._watch(self.edit)
        self.edit.textEdited.connect(self._typed)
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

    def ranked(self, text: str) -> list[CodeEntry]:
        """The table's matches for ``text``, best first (the worker's own regions first)."""
        return self.index.ranked(text, self._home() if self._home else ())

    def show_list(self, everything: bool = False) -> None:
        """Open the list: everything, or what matches the text typed so far."""
        completer = self._ensure_completer()
        text = self.edit.text()
        if everything or text == self._display(self._value) or not text.strip():
            completer.setModel(self.index.model())
        else:
            self._fill(text)
            completer.setModel(self._matches)
        self.edit.setFocus(Qt.FocusReason.OtherFocusReason)
        completer.complete()
        self._select_top()

    def _typed(self, text: str) -> None:
        if not text.strip():
            if self._completer is not None:
                self._completer.popup().hide()
            return
        self.show_list()

    @property
    def _matches(self) -> QStandardItemModel:
        """The typed search's list (made on first use: most pickers of a form are never typed in)."""
        if self._matches_model is None:
            self._matches_model = QStandardItemModel(self)
        return self._matches_model

    def _fill(self, text: str) -> None:
        """Put the best matches for ``text`` into the list (one column, like the full model)."""
        self._matches.clear()
        items = []
        for entry in self.ranked(text)[:SHOWN_MATCHES]:
            item = QStandardItem(entry.display)
            item.setData(entry.code, CODE_ROLE)
            items.append(item)
        if items:
            self._matches.appendColumn(items)

    def _select_top(self) -> None:
        """Select the first row, so Enter takes the best match (one Enter, not two)."""
        popup = self._ensure_completer().popup()
        model = popup.model()
        if model is not None and model.rowCount() and self.edit.text().strip():
            popup.setCurrentIndex(model.index(0, 0))

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
            completer.setWidget(self.edit)
            completer.setCompletionMode(QCompleter.CompletionMode.UnfilteredPopupCompletion)
            completer.setMaxVisibleItems(12)
            popup = completer.popup()
            if isinstance(popup, QListView):
                popup.setUniformItemSizes(True)
            completer.activated[QModelIndex].connect(self._completed)
            self._completer = completer
        return self._completer

    def _focus_in(self) -> None:
        self._ensure_completer()

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt API)
        self._entering = event.type() == QEvent.Type.KeyPress and event.key() in (
            Qt.Key.Key_Return,
            Qt.Key.Key_Enter,
        )
        try:
            return super().eventFilter(obj, event)
        finally:
            self._entering = False

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
            self._emit_committed()

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
        if code is None and self._entering:  # Enter takes the best match, as the list showed
            best = self.ranked(text)
            code = best[0].code if best else None
        self._set(code if code is not None else text.strip())
        if code is None:
            self.edit.setText(text.strip())

    def set_lang(self, lang: str) -> None:
        """Show the value in ``lang``; text being typed (not the value's display) stays as it
        is, to be taken when the field is left."""
        typed, cursor = self.edit.text(), self.edit.cursorPosition()
        typing = typed != self._display(self._value)  # still in the old language here
        super().set_lang(lang)
        if typing:
            self.edit.setText(typed)
            self.edit.setCursorPosition(cursor)

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
