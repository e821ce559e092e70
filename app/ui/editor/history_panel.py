"""The history panel under a record: who changed what and when, newest first."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from PySide6.QtWidgets import QTreeWidget, QTreeWidgetItem, QWidget

from app.core.records import is_empty
from app.core.store import STATUS_FIELD
from app.ui.i18n import tr

__all__ = ["HistoryPanel", "RecordHistory"]

_HEADERS = ("history_when", "history_who", "history_field", "history_old", "history_new")


class HistoryPanel(QTreeWidget):
    """A five-column list of a record's changes; the editor says how fields and values read."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setColumnCount(len(_HEADERS))
        self.setRootIsDecorated(False)
        self.setVisible(False)

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
            when, who = _local_time(entry.at), entry.author
            changes = entry.changes or {}
            if not changes:
                kind = tr("history_deleted" if entry.kind == "delete" else "history_created", lang)
                QTreeWidgetItem(self, [when, who, kind, "", ""])
            for fid, (old, new) in changes.items():
                QTreeWidgetItem(
                    self,
                    [when, who, field_label(fid), format_value(fid, old), format_value(fid, new)],
                )
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

    def format_value(self, field_id: str, value: object) -> str:
        """A stored value as a person reads it (code labels, 是/否, referenced titles)."""
        if is_empty(value):
            return ""
        if field_id == STATUS_FIELD:
            return (
                tr(f"status_{value}", self.lang) if value in ("draft", "complete") else str(value)
            )
        fld = self.form.fields.get(field_id)
        if fld is None:
            return str(value)
        if fld.type in ("choice", "multi_choice") and fld.codes:
            table = self.formset.table(fld.codes)
            items = value if isinstance(value, list) else [value]
            return "、".join(table.label(str(v), self.lang) for v in items)
        if fld.type == "boolean" and isinstance(value, bool):
            return tr("yes" if value else "no", self.lang)
        if fld.type == "reference":
            record = self.store.get(str(value))
            return record.title if record is not None and record.title else str(value)
        if fld.type == "coordinates" and isinstance(value, Mapping):
            return f"{value.get('lon')}, {value.get('lat')}"
        return str(value)

    def _field_label(self, field_id: str) -> str:
        if field_id == STATUS_FIELD:
            return tr("status_field", self.lang)
        fld = self.form.fields.get(field_id)
        return fld.label.get(self.lang) if fld else field_id


def _local_time(iso: str) -> str:
    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")
