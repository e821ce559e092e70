"""The history panel under a record: who changed what and when, newest first."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QTreeWidget, QTreeWidgetItem, QWidget

from app.core.display import display_value, local_time
from app.core.store import STATUS_FIELD, browse
from app.core.store.writes import VOID_REASON
from app.ui.i18n import tr

__all__ = ["HistoryPanel", "RecordHistory"]

_HEADERS = ("history_when", "history_who", "history_field", "history_old", "history_new")


class HistoryPanel(QTreeWidget):
    """A five-column list of a record's changes; the editor says how fields and values read.

    Activating a field's row (double-click or Enter) asks to put that field back to the value
    it had before that change (``revertRequested``): a mistake is undone in the form, and
    saving it writes one more history entry, so nothing is lost."""

    revertRequested = Signal(str, object)  # field id, the value before the change

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setColumnCount(len(_HEADERS))
        self.setRootIsDecorated(False)
        self.setVisible(False)
        self.itemActivated.connect(self._activated)

    def _activated(self, item: QTreeWidgetItem, _column: int = 0) -> None:
        target = item.data(0, Qt.ItemDataRole.UserRole)
        if target is not None:
            field_id, old = target
            self.revertRequested.emit(field_id, old)

    def show_entries(
        self,
        entries: Sequence[Any],
        lang: str,
        field_label: Callable[[str], str],
        format_value: Callable[[str, object], str],
    ) -> None:
        """List ``entries`` (``Store.history``, oldest first) newest first."""
        self.clear()
        self.setHeaderLabels([tr(k, lang) for k in _HEADERS])
        if not entries:
            QTreeWidgetItem(self, [tr("history_none", lang)])
            return
        for entry in reversed(entries):
            when, who = local_time(entry.at), entry.author
            changes = entry.changes or {}
            if not changes:
                kind = tr("history_deleted" if entry.kind == "delete" else "history_created", lang)
                QTreeWidgetItem(self, [when, who, kind, "", ""])
            for fid, (old, new) in changes.items():
                item = QTreeWidgetItem(
                    self,
                    [when, who, field_label(fid), format_value(fid, old), format_value(fid, new)],
                )
                if not fid.startswith("_"):  # status and void notes are not field values
                    item.setData(0, Qt.ItemDataRole.UserRole, (fid, old))
                    item.setToolTip(2, tr("history_revert_tip", lang))
        for column in range(len(_HEADERS)):
            self.resizeColumnToContents(column)


class RecordHistory:
    """A ``RecordEditor``'s history panel, and how its fields and stored values read there
    and in the conflict panel."""

    _history_panel: HistoryPanel | None

    @property
    def history_panel(self) -> HistoryPanel:
        """The history list (created on first use)."""
        if self._history_panel is None:
            self._history_panel = HistoryPanel(self)
            self._history_panel.revertRequested.connect(self.revert_field)
            self._root.insertWidget(self._root.count() - 1, self._history_panel)
        return self._history_panel

    def _history_shown(self) -> bool:
        return self._history_panel is not None and self._history_panel.isVisible()

    def show_history(self, visible: bool = True) -> None:
        """Show (and refresh) or hide the history panel."""
        self.history_panel.setVisible(visible)
        self.history_button.setChecked(visible)
        if visible:
            self.refresh_history()

    def refresh_history(self) -> None:
        """List who changed what and when, newest first, codes shown as their labels."""
        entries = self.store.history(self.record_id) if self.record_id else []
        self.history_panel.show_entries(entries, self.lang, self._field_label, self.format_value)

    def revert_field(self, field_id: str, value: object) -> None:
        """Put ``field_id`` back to an earlier value in the form (saved with the next save)."""
        if field_id not in self.form.fields:
            return
        self.set_value(field_id, value)
        self._status(tr("history_reverted", self.lang, field=self._field_label(field_id)))

    def format_value(self, field_id: str, value: object) -> str:
        """A stored value as a person reads it (code labels, 是/否, referenced titles)."""
        if field_id == VOID_REASON and value:
            return tr(f"void.{value}", self.lang)
        if field_id == self.form.roles.grid and value:  # a grid reads as its name
            return browse.grid_names(self.store).get(str(value), str(value))
        return display_value(
            self.formset,
            self.form.fields.get(field_id),
            value,
            self.lang,
            field_id=field_id,
            masked=False,
            ref_title=self._ref_title,
        )

    def _ref_title(self, record_id: str) -> str:
        record = self.store.get(record_id)
        return record.title if record is not None and record.title else record_id

    def _field_label(self, field_id: str) -> str:
        if field_id == STATUS_FIELD:
            return tr("status_field", self.lang)
        if field_id == VOID_REASON:
            return tr("void_reason", self.lang)
        fld = self.form.fields.get(field_id)
        return fld.label.get(self.lang) if fld else field_id
