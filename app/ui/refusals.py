"""The 被拒的修改 Refused edits view: records whose edits the platform refused and has not had
since, one row each, with the platform's reason; Enter or a double-click opens the record.

Why it works offline: the rows come from the outbox (``replica.refused_records``, the same
reading that makes ``gridcollect sync`` exit 3), so the list is what the last sync left. The
worker corrects the record in the editor; its next save is sent whole by the next sync
(PROTOCOL.md §11 rule 3), and once the platform accepts it the row goes away. Records are
shown as the record list shows them: the name (an address by its distinguishing end) and the
list's detail, ID numbers masked to their tail.
"""

from __future__ import annotations

from typing import Any

import shiboken6
from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core import listing
from app.core.display import field_label
from app.core.messages import Catalog, pick
from app.core.store import Store

_TEXT = {
    "title": ("被拒的修改", "Refused edits"),
    "record": ("记录", "Record"),
    "detail": ("详情", "Details"),
    "form": ("表单", "Form"),
    "reason": ("平台拒绝的原因", "Why the platform refused"),
    "hint": (
        "平台拒绝了以下记录的修改，修改仍保存在本机。双击或按回车打开记录改正并保存，"
        "下次同步时发送。",
        "The platform refused edits of these records; they are kept on this device. "
        "Double-click or press Enter to open a record, correct it and save: the next sync "
        "sends it.",
    ),
    "none": ("没有被拒的修改。", "No refused edits waiting."),
    "fields": ("字段：{names}", "field: {names}"),
    "grid_back": (
        "网格交还后自动重新发送（请联系管理员）",
        "sent again when the grid is given back (ask the administrator)",
    ),
    "sent_next": ("已修改，下次同步时发送", "edited: sent with the next sync"),
}
_T = Catalog(_TEXT)
RECORD, DETAIL, FORM, REASON = range(4)
ID_ROLE = Qt.ItemDataRole.UserRole


def reason_text(refused: Any, form: Any, lang: str) -> str:
    """The platform's reason in ``lang``, the fields it named, and what happens next: the
    grid's return, or the next sync when an edit since waits. One text for the view's rows
    and the editor's banner, so both say the same."""
    parts = [pick(lang, refused.message_zh, refused.message_en) or refused.code]
    if refused.fields:
        names = "、".join(field_label(form.fields.get(f), f, lang) for f in refused.fields)
        parts.append(_T.text("fields", lang, names=names))
    if refused.out_of_scope:
        parts.append(_T.text("grid_back", lang))
    elif refused.sent_next:
        parts.append(_T.text("sent_next", lang))
    return pick(lang, "；", "; ").join(p.rstrip("。.") for p in parts)


class RefusalView(QWidget):
    """``RefusalView(store, lang)``; ``openRequested(record_id)`` when a row is activated."""

    openRequested = Signal(str)

    def __init__(self, store: Store, lang: str = "zh", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("refusalView")
        self.store, self.lang = store, lang
        self.refusals: dict[str, Any] = {}  # record id -> its Refused, as the rows show them
        layout = QVBoxLayout(self)
        self.hint = QLabel(self)
        self.hint.setWordWrap(True)
        layout.addWidget(self.hint)
        self.table = QTableWidget(0, 4, self)
        self.table.setObjectName("refusalTable")
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setWordWrap(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(REASON, QHeaderView.ResizeMode.Stretch)
        self.table.activated.connect(self._activated)  # Enter, or a double-click
        layout.addWidget(self.table, 1)
        self.empty_label = QLabel(self)
        layout.addWidget(self.empty_label)
        self.set_lang(lang)

    def set_lang(self, lang: str) -> None:
        """Switch zh/en at runtime: the hint, the headers and every row's texts (the
        platform's reason too) are read again in ``lang``."""
        self.lang = lang
        self.hint.setText(_T.text("hint", lang))
        self.table.setHorizontalHeaderLabels(
            [_T.text(k, lang) for k in ("record", "detail", "form", "reason")]
        )
        self.empty_label.setText(_T.text("none", lang))
        self.refresh()

    def refresh(self) -> None:
        """Reread the waiting records; keep the current row's record current when it stays."""
        from sync import replica

        keep = self.current_id()
        self.table.setRowCount(0)
        self.refusals = {r.record_id: r for r in replica.refused_records(self.store)}
        for refused in self.refusals.values():
            self._add_row(refused)
        ids = [self.record_id(row) for row in range(self.table.rowCount())]
        if ids:
            self.table.setCurrentCell(ids.index(keep) if keep in ids else 0, RECORD)
        self.fit_rows()
        self.empty_label.setVisible(not ids)

    def fit_rows(self) -> None:
        """Rows as tall as their wrapped reason, never lower than the window's row height
        (touch mode: 48 px targets)."""
        least = self.table.verticalHeader().defaultSectionSize()
        self.table.resizeRowsToContents()
        for row in range(self.table.rowCount()):
            self.table.setRowHeight(row, max(least, self.table.rowHeight(row)))

    def _add_row(self, refused: Any) -> None:
        record = self.store.get(refused.record_id)
        if record is None:
            return
        form = self.store.formset.form(record.form)
        row = self.table.rowCount()
        self.table.insertRow(row)
        texts = (
            listing.list_title(form, record.title) or "—",
            listing.person_detail(self.store.formset, form, record.data, self.lang),
            form.title.get(self.lang),
            reason_text(refused, form, self.lang),
        )
        for column, text in enumerate(texts):
            item = QTableWidgetItem(text)
            item.setData(ID_ROLE, refused.record_id)
            if column == REASON:
                item.setToolTip(text)
            self.table.setItem(row, column, item)

    def record_id(self, row: int) -> str:
        item = self.table.item(row, RECORD)
        return str(item.data(ID_ROLE)) if item is not None else ""

    def current_id(self) -> str | None:
        row = self.table.currentRow()
        return self.record_id(row) if row >= 0 else None

    def _activated(self, index: QModelIndex) -> None:
        if index.isValid():
            self.openRequested.emit(self.record_id(index.row()))


def install_refusals(window: Any, menu: Any = None) -> Any:
    """A "被拒的修改 Refused edits" action (in ``menu``, default the menu bar) opening the view
    in a tab of the window's document tabs; an activated row opens its record there. The view
    is read again whenever the window's records change (saves, syncs)."""
    from PySide6.QtGui import QAction

    lang = str(window.lang)
    action = QAction(f"{_T.text('title', lang)}…", window)
    action.setObjectName("refusalsAction")
    (menu or window.menuBar()).addAction(action)

    def current() -> RefusalView | None:
        view = getattr(window, "refusal_view", None)
        if view is None or not shiboken6.isValid(view) or window.doc_tabs.indexOf(view) < 0:
            return None
        return view  # type: ignore[no-any-return]

    def open_view() -> RefusalView:
        view = current()
        if view is None:
            view = RefusalView(window.store, window.lang, window.doc_tabs)
            view.openRequested.connect(open_refused)
            window.refusal_view = view
            window.doc_tabs.addTab(view, _T.text("title", window.lang))
        else:
            view.refresh()
        window._apply_row_heights()  # the window's row height (touch mode: big rows) ...
        view.fit_rows()  # ... and taller where a reason wraps
        window.doc_tabs.setCurrentWidget(view)
        show = getattr(window, "_show_docs", None)
        show() if callable(show) else window.doc_tabs.setVisible(True)
        view.table.setFocus()  # keyboard: arrows and Enter work at once
        return view

    def open_refused(record_id: str) -> None:
        """The record in its editor, with the row's reason in a banner at its top."""
        editor = window.open_record(record_id)
        view = current()
        refused = view.refusals.get(record_id) if view is not None else None
        if editor is not None and refused is not None:
            editor.show_refusal(refused)

    def changed(_record_id: str = "") -> None:
        view = current()
        if view is not None:
            view.refresh()

    def relabel(lang: str) -> None:
        """The window's language switched: the open view and its tab follow."""
        view = current()
        if view is not None:
            view.set_lang(lang)
            view.fit_rows()  # a reason of the other language wraps elsewhere
            window.doc_tabs.setTabText(window.doc_tabs.indexOf(view), _T.text("title", lang))

    window.recordsChanged.connect(changed)
    window.languageChanged.connect(relabel)
    action.triggered.connect(lambda _c=False: open_view())
    action.open_view = open_view  # type: ignore[attr-defined]
    return action


__all__ = ["RefusalView", "install_refusals", "reason_text"]
