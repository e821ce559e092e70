"""The lazy list model behind every record table.

It never loads a whole list and never counts one: it holds the rows fetched so far and
asks ``app.core.store.browse`` for the next page when the view scrolls to the end
(``canFetchMore``/``fetchMore``). Plain lists page by keyset (title, id), so a deep page
costs what the first costs; search results page by offset over an FTS5 prefix query.

The UI thread gives each fetch a small time budget. Almost every query fits (an index range
or an FTS lookup); one that does not (a one-syllable search over millions of names, a rare
filter without its index) is stopped and redone by a background task on its own connection,
and its rows arrive by signal, so typing never waits for the store. Totals are counted
elsewhere, in a background task.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QColor

from app.core import listing
from app.core.display import status_text
from app.core.forms import Form
from app.core.records import RecordStatus, Summary
from app.core.store import Store, browse
from app.core.store.browse import Filters, Scope, TooSlow
from app.ui.i18n import register, tr
from app.ui.tasks import TaskContext, TaskHandle, TaskRunner

Index = QModelIndex | QPersistentModelIndex

register(
    {
        "list.col.title": ("名称", "Name"),
        "list.col.detail": ("住址 · 年龄 · 性别 · 证件尾号", "Home · age · gender · ID tail"),
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
COLUMNS = ("title", "detail", "grid", "status", "sync", "flags", "updated_at")
_CONFLICT_COLOR, _DUP_COLOR, _DRAFT_COLOR = QColor("#b3261e"), QColor("#9a5b00"), QColor("#5f6368")

ID_ROLE = Qt.ItemDataRole.UserRole + 1
SUMMARY_ROLE = Qt.ItemDataRole.UserRole + 2
UI_BUDGET = 0.04  # seconds a list query may hold the UI thread before moving to a worker
MIN_ASCII_SEARCH = 2  # one Latin letter or digit matches a third of a city: wait for two
# A keystroke's search fills a screen (about 25 rows at 1366×768) and a little more; scrolling
# fetches the rest a page at a time. A common run of an address ("观澜公寓") reads about four
# candidate records per resident it shows, so this is most of a keystroke's cost.
SEARCH_FIRST_PAGE = 50


def search_text(text: str) -> str:
    """The text worth searching: a lone Latin letter or digit is not (yet)."""
    text = text.strip()
    return "" if text.isascii() and len(text) < MIN_ASCII_SEARCH else text


@dataclass(frozen=True)
class ListQuery:
    """What a list shows: a scope (tree selection), filters and the search text."""

    scope: Scope = field(default_factory=Scope)
    filters: Filters = field(default_factory=Filters)
    text: str = ""

    def with_text(self, text: str) -> ListQuery:
        return replace(self, text=search_text(text))


def fetch_rows(
    store: Store, form_id: str, query: ListQuery, loaded: list[Summary], wanted: int, page: int
) -> list[Summary]:
    """Up to ``wanted`` rows following ``loaded``, a page at a time (any thread, any store)."""
    rows: list[Summary] = []
    while len(rows) < wanted:
        limit = min(page, wanted - len(rows))
        if query.text:
            got = browse.search(
                store,
                query.text,
                form_id,
                query.scope,
                query.filters,
                offset=len(loaded) + len(rows),
                limit=limit,
            )
        else:
            last = rows[-1] if rows else loaded[-1] if loaded else None
            after = (last.sort_key, last.id) if last else None
            got = browse.page(store, form_id, query.scope, query.filters, after=after, limit=limit)
        rows.extend(got)
        if len(got) < limit:
            break
    return rows


class RecordListModel(QAbstractTableModel):
    """Rows of one form for a ``ListQuery``, fetched a page at a time."""

    loadingChanged = Signal(bool)  # a fetch moved to a worker (True) / its rows arrived (False)

    def __init__(
        self,
        store: Store,
        form_id: str,
        lang: str = "zh",
        page_size: int = 200,
        parent: Any = None,
        runner: TaskRunner | None = None,
        budget: float | None = UI_BUDGET,
    ) -> None:
        super().__init__(parent)
        self.store, self.form_id, self.lang, self.page_size = store, form_id, lang, page_size
        self.runner, self.budget = runner, budget if runner is not None else None
        self._query = ListQuery()
        self._rows: list[Summary] = []
        self._exhausted = True
        self._started = False
        self._grid_names: dict[str, str] = {}
        self._details: dict[str, str] = {}  # record id -> detail text, read when first shown
        self._generation = 0
        self._pending: TaskHandle | None = None
        self._fetches = 0

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

    @property
    def loading(self) -> bool:
        """True while rows are being fetched in the background."""
        return self._pending is not None

    def set_query(self, query: ListQuery) -> None:
        """Show another query: drop the rows and fetch the first page."""
        self._query = query
        self._load(min(self.page_size, SEARCH_FIRST_PAGE) if query.text else self.page_size)

    def start(self) -> None:
        """Fetch the first page if not done yet (called when the list becomes visible)."""
        if not self._started:
            self._load(self.page_size)

    def reload(self) -> None:
        """Fetch the current query again, as many rows as were loaded (after imports)."""
        self._grid_names = {}
        self._load(max(self.page_size, min(len(self._rows), 20 * self.page_size)))

    def _load(self, wanted: int) -> None:
        self._generation += 1
        self._details = {}
        self._drop_pending()
        self.beginResetModel()
        self._started = True
        if not self._grid_names:
            self._grid_names = browse.grid_names(self.store)
        self._rows, self._exhausted = [], False
        slow = False
        try:
            with browse.time_budget(self.store, self.budget):
                self._append(
                    fetch_rows(self.store, self.form_id, self._query, [], wanted, self.page_size),
                    wanted,
                )
        except TooSlow:
            slow = True
        self.endResetModel()
        if slow:
            self._in_background(wanted)

    def _append(self, rows: list[Summary], wanted: int) -> None:
        self._rows.extend(rows)
        self._exhausted = len(rows) < wanted

    # -- background fetches ----------------------------------------------------------------

    def _in_background(self, wanted: int) -> None:
        assert self.runner is not None
        generation, query, loaded = self._generation, self._query, list(self._rows)
        form_id, page = self.form_id, self.page_size

        def work(ctx: TaskContext) -> list[Summary]:
            return fetch_rows(ctx.store(), form_id, query, loaded, wanted, page)

        handle = self.runner.start(work, f"list:{form_id}")
        handle.finished.connect(lambda rows: self._arrived(generation, rows, wanted))
        self._fetches += 1
        handle.done.connect(functools.partial(self._finished, self._fetches))  # no cycle
        self._pending = handle
        self.loadingChanged.emit(True)

    def _arrived(self, generation: int, rows: list[Summary], wanted: int) -> None:
        if generation != self._generation:
            return  # the query changed meanwhile
        if rows:
            first = len(self._rows)
            self.beginInsertRows(QModelIndex(), first, first + len(rows) - 1)
            self._append(rows, wanted)
            self.endInsertRows()
        else:
            self._exhausted = True

    def _finished(self, fetch: int) -> None:
        if self._pending is not None and fetch == self._fetches:
            self._pending = None
            self.loadingChanged.emit(False)

    def _drop_pending(self) -> None:
        if self._pending is not None:
            self._pending.cancel()  # interrupts its query; its rows would be stale
            self._pending = None
            self.loadingChanged.emit(False)

    # -- lazy fetching (Qt calls these when the view reaches the end) ----------------------

    def canFetchMore(self, parent: Index = QModelIndex()) -> bool:  # noqa: B008 - Qt's signature
        return self._started and not parent.isValid() and not self._exhausted and not self.loading

    def fetchMore(self, parent: Index = QModelIndex()) -> None:  # noqa: B008
        if parent.isValid() or self._exhausted or self.loading:
            return
        try:
            with browse.time_budget(self.store, self.budget):
                rows = fetch_rows(
                    self.store,
                    self.form_id,
                    self._query,
                    self._rows,
                    self.page_size,
                    self.page_size,
                )
        except TooSlow:
            self._in_background(self.page_size)
            return
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
        self._details.pop(record_id, None)
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))

    def set_lang(self, lang: str) -> None:
        self.lang = lang
        self._details = {}
        self.headerDataChanged.emit(Qt.Orientation.Horizontal, 0, len(COLUMNS) - 1)
        if self._rows:
            self.dataChanged.emit(
                self.index(0, 0), self.index(len(self._rows) - 1, len(COLUMNS) - 1)
            )

    # -- presentation ----------------------------------------------------------------------

    @functools.cached_property
    def _form(self) -> Form:
        return self.store.formset.form(self.form_id)

    @property
    def has_detail(self) -> bool:
        """Whether rows of this form have a detail column (people: home, age, gender, ID)."""
        return bool(self._form.roles.birth_date or self._form.roles.gender)

    def _detail(self, record_id: str) -> str:
        """A person's home, age, gender and masked ID tail (read once, when first shown)."""
        if not self.has_detail:
            return ""
        text = self._details.get(record_id)
        if text is None:
            record = self.store.get(record_id)
            data = record.data if record is not None else {}
            text = listing.person_detail(self.store.formset, self._form, data, self.lang)
            self._details[record_id] = text
        return text

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            if COLUMNS[section] == "detail" and not self.has_detail:
                return ""
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
            if s.status == RecordStatus.DRAFT and COLUMNS[index.column()] == "status":
                return _DRAFT_COLOR
        if role == Qt.ItemDataRole.ToolTipRole:
            column = COLUMNS[index.column()]
            if column == "grid" and s.grid:
                return s.grid
            if column == "title" and s.title:
                return s.title  # the whole address when the cell shows its end
        return None

    def _text(self, s: Summary, column: str) -> str:
        if column == "title":
            return listing.list_title(self._form, s.title) or "—"
        if column == "detail":
            return self._detail(s.id)
        if column == "grid":
            return self._grid_names.get(s.grid or "", s.grid or "")
        if column == "status":
            return status_text(s.status, self.lang)
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
