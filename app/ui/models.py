"""The lazy list model behind every record table.

It never loads a whole list and never counts one: it holds the rows fetched so far and
asks ``app.core.browse`` for the next page when the view scrolls to the end
(``canFetchMore``/``fetchMore``). Plain lists page by keyset (title, id), so a deep page
costs what the first costs; search results page by offset over an FTS5 prefix query.
Totals are counted elsewhere, in a background task.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor

from app.core import browse
from app.core.browse import Filters, Scope
from app.core.records import Summary
from app.core.store import Store
from app.ui.i18n import register, tr

Index = QModelIndex | QPersistentModelIndex

register(
    {
        "list.col.title": ("名称", "Name"),
        "list.col.grid": ("网格", "Grid"),
        "list.col.status": ("状态", "Status"),
        "list.col.sync": ("同步", "Sync"),
        "list.col.flags": ("标记", "Flags"),
        "list.col.updated_at": ("更新时间", "Updated"),
        "list.pending": ("待同步", "Pending"),
        "list.conflict": ("冲突", "Conflict"),
        "list.duplicate": ("疑似重复", "Possible duplicate"),
    }
)
COLUMNS = ("title", "grid", "status", "sync", "flags", "updated_at")
_CONFLICT_COLOR, _DUP_COLOR, _DRAFT_COLOR = QColor("#b3261e"), QColor("#9a5b00"), QColor("#5f6368")

ID_ROLE = Qt.ItemDataRole.UserRole + 1
SUMMARY_ROLE = Qt.ItemDataRole.UserRole + 2


@dataclass(frozen=True)
class ListQuery:
    """What a list shows: a scope (tree selection), filters and the search text."""

    scope: Scope = field(default_factory=Scope)
    filters: Filters = field(default_factory=Filters)
    text: str = ""

    def with_text(self, text: str) -> ListQuery:
        return replace(self, text=text.strip())


class RecordListModel(QAbstractTableModel):
    """Rows of one form for a ``ListQuery``, fetched a page at a time."""

    def __init__(
        self, store: Store, form_id: str, lang: str = "zh", page_size: int = 200, parent: Any = None
    ) -> None:
        super().__init__(parent)
        self.store, self.form_id, self.lang, self.page_size = store, form_id, lang, page_size
        self._query = ListQuery()
        self._rows: list[Summary] = []
        self._exhausted = True
        self._started = False
        self._grid_names: dict[str, str] = {}

    # -- query -----------------------------------------------------------------------------

    @property
    def query(self) -> ListQuery:
        return self._query

    @property
    def started(self) -> bool:
        """Whether the first page was fetched (lists of hidden tabs wait until shown)."""
        return self._started

    @property
    def exhausted(self) -> bool:
        """True when every row of the query is loaded."""
        return self._exhausted

    def set_query(self, query: ListQuery) -> None:
        """Show another query: drop the rows and fetch the first page."""
        self._query = query
        self._load(self.page_size)

    def start(self) -> None:
        """Fetch the first page if not done yet (called when the list becomes visible)."""
        if not self._started:
            self._load(self.page_size)

    def reload(self) -> None:
        """Fetch the current query again, as many rows as were loaded (after imports)."""
        self._grid_names = {}
        self._load(max(self.page_size, min(len(self._rows), 20 * self.page_size)))

    def _load(self, wanted: int) -> None:
        self.beginResetModel()
        self._started = True
        if not self._grid_names:
            self._grid_names = browse.grid_names(self.store)
        self._rows = []
        self._exhausted = False
        while len(self._rows) < wanted and not self._exhausted:
            limit = min(self.page_size, wanted - len(self._rows))
            self._append(self._fetch(limit), limit)
        self.endResetModel()

    def _fetch(self, limit: int) -> list[Summary]:
        q = self._query
        if q.text:
            return browse.search(
                self.store,
                q.text,
                self.form_id,
                q.scope,
                q.filters,
                offset=len(self._rows),
                limit=limit,
            )
        after = (self._rows[-1].title, self._rows[-1].id) if self._rows else None
        return browse.page(self.store, self.form_id, q.scope, q.filters, after=after, limit=limit)

    def _append(self, rows: list[Summary], limit: int) -> None:
        self._rows.extend(rows)
        self._exhausted = len(rows) < limit

    # -- lazy fetching (Qt calls these when the view reaches the end) ----------------------

    def canFetchMore(self, parent: Index = QModelIndex()) -> bool:  # noqa: B008 - Qt's signature
        return self._started and not parent.isValid() and not self._exhausted

    def fetchMore(self, parent: Index = QModelIndex()) -> None:  # noqa: B008
        if parent.isValid() or self._exhausted:
            return
        rows = self._fetch(self.page_size)
        if not rows:
            self._exhausted = True
            return
        first = len(self._rows)
        self.beginInsertRows(QModelIndex(), first, first + len(rows) - 1)
        self._append(rows, self.page_size)
        self.endInsertRows()

    # -- rows ------------------------------------------------------------------------------

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def summary(self, row: int) -> Summary:
        return self._rows[row]

    def record_id(self, row: int) -> str:
        return self._rows[row].id

    def ids(self) -> list[str]:
        """Ids of the loaded rows, in order."""
        return [s.id for s in self._rows]

    def row_of(self, record_id: str) -> int | None:
        return next((i for i, s in enumerate(self._rows) if s.id == record_id), None)

    def record_changed(self, record_id: str) -> None:
        """Refresh one row in place after a save; a new record of this form reloads the list."""
        row = self.row_of(record_id)
        fresh = browse.summary(self.store, record_id)
        if row is None:
            if fresh is not None and fresh.form == self.form_id and self._started:
                self.reload()
            return
        if fresh is None:
            self.beginRemoveRows(QModelIndex(), row, row)
            del self._rows[row]
            self.endRemoveRows()
            return
        self._rows[row] = fresh
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))

    def set_lang(self, lang: str) -> None:
        self.lang = lang
        self.headerDataChanged.emit(Qt.Orientation.Horizontal, 0, len(COLUMNS) - 1)
        if self._rows:
            self.dataChanged.emit(
                self.index(0, 0), self.index(len(self._rows) - 1, len(COLUMNS) - 1)
            )

    # -- presentation ----------------------------------------------------------------------

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return tr(f"list.col.{COLUMNS[section]}", self.lang)
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        s = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(s, COLUMNS[index.column()])
        if role == ID_ROLE:
            return s.id
        if role == SUMMARY_ROLE:
            return s
        if role == Qt.ItemDataRole.ForegroundRole:
            if s.has_conflict:
                return _CONFLICT_COLOR
            if s.dup_state == "suspected":
                return _DUP_COLOR
            if s.status == "draft" and index.column() == 2:
                return _DRAFT_COLOR
        if role == Qt.ItemDataRole.ToolTipRole and index.column() == 1 and s.grid:
            return s.grid
        return None

    def _text(self, s: Summary, column: str) -> str:
        if column == "title":
            return s.title or "—"
        if column == "grid":
            return self._grid_names.get(s.grid or "", s.grid or "")
        if column == "status":
            return tr(f"status_{s.status}", self.lang)
        if column == "sync":
            return tr("list.pending", self.lang) if s.dirty else ""
        if column == "flags":
            flags = ["list.conflict"] if s.has_conflict else []
            if s.dup_state == "suspected":
                flags.append("list.duplicate")
            return " · ".join(tr(f, self.lang) for f in flags)
        if column == "updated_at":
            return s.updated_at[:16].replace("T", " ")
        return ""
