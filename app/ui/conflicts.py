"""The conflict view: records whose sync left a conflict, and per record a table of the
conflicting fields with base / mine / theirs where a person picks (or types) the value.

Why it works offline: everything shown comes from ``records.conflict`` (written by the pull),
and ``replica.resolve`` writes the choice locally and queues a ``resolve`` op that the next
sync carries to the platform. Values are shown as a person reads them (code labels, not codes);
sensitive values are NOT masked here: choosing between two ID numbers needs to see them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import shiboken6
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QRadioButton,
    QSplitter,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from app.core import rules
from app.core.display import display_value, field_label
from app.core.messages import COMMON, Catalog, pick
from app.core.store import Store

BASE, MINE, THEIRS, OTHER = 0, 1, 2, 3
SIDES = ("base", "mine", "theirs")
SPECIAL = frozenset({"_status", "_deleted"})  # pseudo-fields: pick a side, type no value

_TEXT = {
    "title": ("冲突", "Conflicts"),
    "field": ("字段", "Field"),
    "base": ("原值", "Base"),
    "mine": ("我的", "Mine"),
    "theirs": ("平台", "Platform"),
    "other": ("其他值", "Other value"),
    "resolve": ("解决", "Resolve"),
    "none": ("没有待处理的冲突。", "No conflicts waiting."),
    "hint": (
        "逐项选择要保留的值，或填写其他值，然后点“解决”。下次同步时提交到平台。",
        "Pick the value to keep for each field (or type another), then Resolve. "
        "The choice goes to the platform with the next sync.",
    ),
}
# Why the platform itself flagged a field (a conflict entry's ``note``, PROTOCOL.md §6).
NOTES = {
    "transfer_rejected": (
        "迁入申请被驳回：该证件号码已在其他网格登记。请核对号码后改正，或保留原值再次申请。",
        "Transfer rejected: this ID number is registered in another grid. Check and correct "
        "it, or keep it to ask again.",
    ),
}


_T = Catalog(_TEXT)


class ConflictView(QWidget):
    """``ConflictView(store, lang, author)``; ``resolved(record_id)`` after each Resolve."""

    resolved = Signal(str)

    def __init__(
        self, store: Store, lang: str = "zh", author: str = "", parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("conflictView")
        self.store, self.lang, self.author = store, lang, author
        self.record_id: str | None = None
        self.entries: list[dict[str, Any]] = []
        self.groups: list[QButtonGroup] = []
        self.others: list[QLineEdit] = []
        self._build()
        self._label_texts()
        self.refresh()

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        self.hint = QLabel(self)
        self.hint.setWordWrap(True)
        layout.addWidget(self.hint)
        split = QSplitter(Qt.Orientation.Horizontal, self)
        self.records = QListWidget(split)
        self.records.setObjectName("conflictRecords")
        self.records.currentItemChanged.connect(self._on_record)
        right = QWidget(split)
        box = QVBoxLayout(right)
        self.table = QTableWidget(0, 5, right)
        self.table.setObjectName("conflictFields")
        self.table.verticalHeader().setVisible(False)
        # values whole (a phone cut to 7 digits cannot be chosen between): the field and the
        # three sides take their text's width, "other" the rest; wider rows scroll sideways
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        header.setMinimumSectionSize(120)
        box.addWidget(self.table, 1)
        row = QHBoxLayout()
        self.empty_label = QLabel(right)
        row.addWidget(self.empty_label, 1)
        self.resolve_button = QPushButton(right)
        self.resolve_button.setObjectName("resolveButton")
        self.resolve_button.clicked.connect(lambda _c=False: self.resolve())
        row.addWidget(self.resolve_button)
        box.addLayout(row)
        split.addWidget(self.records)
        split.addWidget(right)
        split.setSizes([260, 700])
        layout.addWidget(split, 1)

    def _label_texts(self) -> None:
        """The view's own words in ``self.lang``: hint, headers, empty list, Resolve."""
        self.hint.setText(_T.text("hint", self.lang))
        self.table.setHorizontalHeaderLabels(
            [_T.text(k, self.lang) for k in ("field", "base", "mine", "theirs", "other")]
        )
        self.empty_label.setText(_T.text("none", self.lang))
        self.resolve_button.setText(_T.text("resolve", self.lang))

    def set_lang(self, lang: str) -> None:
        """Switch zh/en at runtime. The rows' texts (field names, the platform's notes, code
        labels) are set again in place: the sides picked and the values typed stay."""
        self.lang = lang
        self._label_texts()
        record = self.store.get(self.record_id) if self.record_id else None
        form = self.store.formset.form(record.form) if record is not None else None
        for row, entry in enumerate(self.entries):
            self._row_texts(row, entry, form)
        self.table.resizeRowsToContents()

    # -- records -----------------------------------------------------------------------------

    def conflict_ids(self) -> list[tuple[str, str]]:
        """(record id, title) of live records with a conflict, every form."""
        out = []
        for form_id in self.store.formset.forms:
            total = self.store.count(form_id, conflict=True)
            if total:
                for s in self.store.summaries(form_id, conflict=True, limit=total):
                    out.append((s.id, s.title or s.id))
        return out

    def refresh(self) -> None:
        """Reread the list; keep the selected record when it still has a conflict."""
        keep = self.record_id
        self.records.blockSignals(True)
        self.records.clear()
        for record_id, title in self.conflict_ids():
            item = QListWidgetItem(title, self.records)
            item.setData(Qt.ItemDataRole.UserRole, record_id)
        self.records.blockSignals(False)
        ids = [
            self.records.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.records.count())
        ]
        self.show_record(keep if keep in ids else (ids[0] if ids else None))

    def _on_record(self, item: QListWidgetItem | None, _old: Any = None) -> None:
        if item is not None:
            self.show_record(item.data(Qt.ItemDataRole.UserRole))

    def show_record(self, record_id: str | None) -> None:
        """Fill the table with the record's conflicting fields (mine chosen by default)."""
        self.record_id = record_id
        record = self.store.get(record_id) if record_id else None
        self.entries = list(record.conflict or []) if record is not None else []
        for i in range(self.records.count()):
            item = self.records.item(i)
            if item.data(Qt.ItemDataRole.UserRole) == record_id:
                self.records.blockSignals(True)
                self.records.setCurrentItem(item)
                self.records.blockSignals(False)
        self.table.setRowCount(0)
        self.groups, self.others = [], []
        form = self.store.formset.form(record.form) if record is not None else None
        for row, entry in enumerate(self.entries):
            self._add_row(row, entry, form)
        self.table.resizeRowsToContents()
        self.resolve_button.setEnabled(bool(self.entries))
        self.empty_label.setVisible(not self.entries)

    def _add_row(self, row: int, entry: Mapping[str, Any], form: Any) -> None:
        self.table.insertRow(row)
        name = entry["field"]
        self.table.setCellWidget(row, 0, QLabel(self.table))
        group = QButtonGroup(self.table)
        for column, side in enumerate(SIDES, start=1):
            button = QRadioButton(self.table)
            button.setObjectName(f"{name}:{side}")
            group.addButton(button, column - 1)
            self.table.setCellWidget(row, column, button)
        cell = QWidget(self.table)
        h = QHBoxLayout(cell)
        h.setContentsMargins(0, 0, 0, 0)
        other_button = QRadioButton(cell)
        other_button.setObjectName(f"{name}:other")
        group.addButton(other_button, OTHER)
        edit = QLineEdit(cell)
        edit.setObjectName(f"{name}:other_value")
        edit.textEdited.connect(lambda _t, b=other_button: b.setChecked(True))
        special = name in SPECIAL
        other_button.setEnabled(not special)
        edit.setEnabled(not special)
        h.addWidget(other_button)
        h.addWidget(edit, 1)
        self.table.setCellWidget(row, 4, cell)
        group.button(MINE).setChecked(True)
        self.groups.append(group)
        self.others.append(edit)
        self._row_texts(row, entry, form)

    def _row_texts(self, row: int, entry: Mapping[str, Any], form: Any) -> None:
        """A row's words in ``self.lang``: the field, the platform's note on it (why it
        flagged the field), and the three sides as a person reads them."""
        name = entry["field"]
        label = self.table.cellWidget(row, 0)
        assert isinstance(label, QLabel)
        text = self.field_label(form, name)
        note = NOTES.get(str(entry.get("note") or ""))
        if note is not None:
            why = pick(self.lang, *note)
            text = f"{text}\n{why}"
            label.setWordWrap(True)
            label.setToolTip(why)
        label.setText(text)
        for column, side in enumerate(SIDES, start=1):
            button = self.table.cellWidget(row, column)
            assert isinstance(button, QRadioButton)
            button.setText(self.value_text(form, name, entry.get(side)))
            button.setToolTip(button.text())

    def field_label(self, form: Any, name: str) -> str:
        fld = form.fields.get(name) if form is not None else None
        return field_label(fld, name, self.lang)

    def value_text(self, form: Any, name: str, value: Any) -> str:
        """A value as a person reads it: code labels, yes/no; never masked."""
        fld = form.fields.get(name) if form is not None else None
        shown = display_value(
            self.store.formset,
            fld,
            value,
            self.lang,
            field_id=name,
            masked=False,
            ref_title=self._ref_title,
        )
        return shown or COMMON.text("empty", self.lang)

    def _ref_title(self, record_id: str) -> str | None:
        record = self.store.get(record_id)
        return record.title if record is not None else None

    # -- resolving ---------------------------------------------------------------------------

    def choose(self, field: str, side: str, other: str | None = None) -> None:
        """Pick a side (``base``/``mine``/``theirs``/``other``) for a field, as a click would."""
        row = [e["field"] for e in self.entries].index(field)
        if other is not None:
            self.others[row].setText(other)
        index = OTHER if side == "other" else SIDES.index(side)
        self.groups[row].button(index).setChecked(True)

    def chosen(self) -> dict[str, Any]:
        """{field: value} of the current choices ("other" text coerced like the editor does)."""
        record = self.store.get(self.record_id) if self.record_id else None
        form = self.store.formset.form(record.form) if record is not None else None
        out: dict[str, Any] = {}
        for entry, group, edit in zip(self.entries, self.groups, self.others, strict=True):
            pick = group.checkedId()
            name = entry["field"]
            if pick == OTHER:
                fld = form.fields.get(name) if form is not None else None
                raw = edit.text()
                out[name] = rules.coerce(fld, raw, self.store.formset) if fld else raw
            else:
                out[name] = entry.get(SIDES[pick if pick >= 0 else MINE])
        return out

    def resolve(self) -> str | None:
        """Write the choices and queue a resolve op; returns its op id."""
        if not self.record_id or not self.entries:
            return None
        from sync import replica

        record_id = self.record_id
        op_id = replica.resolve(self.store, record_id, self.chosen(), self.author)
        self.refresh()
        self.resolved.emit(record_id)
        return op_id


def install_conflicts(window: Any, menu: Any = None) -> Any:
    """A "冲突 Conflicts" action (in ``menu``, default the menu bar) opening the view in a tab
    of the window's document tabs; resolving refreshes the window's lists and counts."""
    from PySide6.QtGui import QAction

    lang = str(window.lang)
    action = QAction(f"{_T.text('title', lang)}…", window)
    action.setObjectName("conflictsAction")
    (menu or window.menuBar()).addAction(action)

    def current() -> ConflictView | None:
        view = getattr(window, "conflict_view", None)
        if view is None or not shiboken6.isValid(view) or window.doc_tabs.indexOf(view) < 0:
            return None
        return view  # type: ignore[no-any-return]

    def open_view() -> ConflictView:
        view = current()
        if view is None:
            view = ConflictView(window.store, window.lang, window.author, window.doc_tabs)
            view.resolved.connect(window.record_changed)
            window.conflict_view = view
            window.doc_tabs.addTab(view, _T.text("title", window.lang))
        else:
            view.refresh()
        window.doc_tabs.setCurrentWidget(view)
        show = getattr(window, "_show_docs", None)
        show() if callable(show) else window.doc_tabs.setVisible(True)
        return view

    def relabel(new_lang: str) -> None:
        """The window's language switched: the open view and its tab follow."""
        view = current()
        if view is not None:
            view.set_lang(new_lang)
            window.doc_tabs.setTabText(window.doc_tabs.indexOf(view), _T.text("title", new_lang))

    window.languageChanged.connect(relabel)
    action.triggered.connect(lambda _c=False: open_view())
    action.open_view = open_view  # type: ignore[attr-defined]
    return action


__all__ = ["ConflictView", "install_conflicts"]
