"""The 我的任务 My tasks view: the tasks the platform issued, and each task's items door to door.

Why it reads only the store: a worker carries tasks out offline. Marking an item unable, or
saving its record with the task's fields filled, changes the store at once, so the progress
bars move without a sync; the results go to the platform with the next push.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core.store import ItemView, Store, TaskError, TaskView
from app.ui.i18n import STRINGS, tr
from app.ui.mytasks import strings  # noqa: F401  (registers the words)
from app.ui.mytasks.unable import UnablePanel

OVERDUE_COLOR = QColor("#b3261e")
_TASK_COLUMNS = ("title", "due", "priority", "progress", "state")
_ITEM_COLUMNS = ("building", "house", "record", "state")


def _table(parent: QWidget, name: str, columns: tuple[str, ...], lang: str) -> QTableWidget:
    table = QTableWidget(0, len(columns), parent)
    table.setObjectName(name)
    table.setHorizontalHeaderLabels([tr(f"tasks.col.{c}", lang) for c in columns])
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
    table.verticalHeader().setVisible(False)
    return table


def progress_bar(view: TaskView, parent: QWidget) -> QProgressBar:
    """A task's progress: finished (done + unable) of total; a collect task counts records."""
    bar = QProgressBar(parent)
    bar.setObjectName("taskProgress")
    bar.setRange(0, max(view.total, 1))
    bar.setValue(min(view.finished, max(view.total, 1)))
    bar.setFormat(f"{view.finished}/{view.total}")
    return bar


class MyTasksView(QWidget):
    """``MyTasksView(store, window, lang)``: ``refresh()``, ``open_task(id)``,
    ``open_item(row)``, ``mark_unable(row, reason)``; ``changed()`` after a mark."""

    changed = Signal()

    def __init__(self, store: Store, window: Any, lang: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("myTasksView")
        self.store, self.window, self.lang = store, window, lang
        self.today: date | None = None  # tests fix the day; None: the real one
        self.views: list[TaskView] = []
        self.items: list[ItemView] = []
        self.task_id: str | None = None
        self.stack = QStackedWidget(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.stack)
        self._build_list()
        self._build_detail()
        self.refresh()

    # -- building --------------------------------------------------------------------------

    def _build_list(self) -> None:
        page = QWidget(self.stack)
        column = QVBoxLayout(page)
        self.empty_label = QLabel(tr("tasks.empty", self.lang), page)
        self.empty_label.setWordWrap(True)
        self.task_table = _table(page, "taskTable", _TASK_COLUMNS, self.lang)
        self.task_table.cellDoubleClicked.connect(lambda row, _c: self._open_row(row))
        self.task_table.cellClicked.connect(lambda row, _c: self._open_row(row))
        column.addWidget(self.empty_label)
        column.addWidget(self.task_table, 1)
        self.stack.addWidget(page)

    def _build_detail(self) -> None:
        page = QWidget(self.stack)
        column = QVBoxLayout(page)
        self.back_button = QPushButton(tr("tasks.back", self.lang), page)
        self.back_button.setObjectName("tasksBack")
        self.back_button.clicked.connect(self.show_list)
        self.task_header = QLabel(page)
        self.task_header.setObjectName("taskHeader")
        self.task_header.setWordWrap(True)
        self.task_header.setTextFormat(Qt.TextFormat.PlainText)
        self.task_summary = QLabel(page)
        self.task_summary.setObjectName("taskSummary")
        self.detail_bar = QProgressBar(page)
        self.item_table = _table(page, "itemTable", _ITEM_COLUMNS, self.lang)
        self.item_table.setWordWrap(False)
        self.item_table.setTextElideMode(Qt.TextElideMode.ElideLeft)  # a door's room is at the end
        header = self.item_table.horizontalHeader()
        for index in (0, 3):  # building and state as wide as they need; the address takes the rest
            header.setSectionResizeMode(index, QHeaderView.ResizeMode.ResizeToContents)
        self.item_table.cellDoubleClicked.connect(lambda row, _c: self.open_item(row))
        buttons = QHBoxLayout()
        self.open_button = QPushButton(tr("tasks.open_item", self.lang), page)
        self.open_button.setObjectName("openItem")
        self.open_button.clicked.connect(lambda: self.open_item(self.item_table.currentRow()))
        self.unable_button = QPushButton(tr("tasks.unable", self.lang), page)
        self.unable_button.setObjectName("unableItem")
        self.unable_button.clicked.connect(self._ask_unable)
        self.new_button = QPushButton(page)
        self.new_button.setObjectName("collectNew")
        self.new_button.clicked.connect(self.new_record)
        for button in (self.open_button, self.unable_button, self.new_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        self.unable_panel = UnablePanel(self.lang, page)
        self.unable_panel.chosen.connect(
            lambda reason: self.mark_unable(self.item_table.currentRow(), reason)
        )
        self.message = QLabel(page)
        self.message.setObjectName("taskMessage")
        self.message.setWordWrap(True)
        for widget in (self.back_button, self.task_header, self.task_summary, self.detail_bar):
            column.addWidget(widget)
        column.addWidget(self.item_table, 1)
        column.addLayout(buttons)
        column.addWidget(self.unable_panel)
        column.addWidget(self.message)
        self.stack.addWidget(page)

    def set_lang(self, lang: str) -> None:
        """Switch zh/en at runtime: headers, buttons, reasons and every row."""
        self.lang = lang
        for table, columns in ((self.task_table, _TASK_COLUMNS), (self.item_table, _ITEM_COLUMNS)):
            table.setHorizontalHeaderLabels([tr(f"tasks.col.{c}", lang) for c in columns])
        self.empty_label.setText(tr("tasks.empty", lang))
        self.back_button.setText(tr("tasks.back", lang))
        self.open_button.setText(tr("tasks.open_item", lang))
        self.unable_button.setText(tr("tasks.unable", lang))
        self.unable_panel.set_lang(lang)
        self.refresh()

    # -- the task list -----------------------------------------------------------------------

    def refresh(self) -> None:
        """Read tasks and progress again (after a save, a mark or a sync)."""
        self.views = self.store.tasks.views(self.today)
        table = self.task_table
        table.setRowCount(len(self.views))
        for row, view in enumerate(self.views):
            self._task_row(row, view)
        self.empty_label.setVisible(not self.views)
        if self.task_id is not None:
            self._show_task()

    def _task_row(self, row: int, view: TaskView) -> None:
        task, lang = view.task, self.lang
        state = "overdue" if view.overdue else task.state
        kind = tr(f"tasks.kind.{task.kind}", lang)
        cells = (
            f"[{kind}] {task.title}",
            task.due or tr("tasks.no_due", lang),
            tr(f"tasks.priority.{min(max(task.priority, 0), 2)}", lang),
            "",
            tr(f"tasks.state.{state}", lang),
        )
        for column, text in enumerate(cells):
            cell = QTableWidgetItem(text)
            cell.setData(Qt.ItemDataRole.UserRole, task.id)
            if view.overdue and column in (1, 4):
                cell.setForeground(OVERDUE_COLOR)
            self.task_table.setItem(row, column, cell)
        self.task_table.setCellWidget(row, 3, progress_bar(view, self.task_table))

    def _open_row(self, row: int) -> None:
        if 0 <= row < len(self.views):
            self.open_task(self.views[row].task.id)

    def show_list(self) -> None:
        self.task_id = None
        self.unable_panel.setVisible(False)
        self.refresh()
        self.stack.setCurrentIndex(0)

    # -- one task ------------------------------------------------------------------------------

    def open_task(self, task_id: str) -> None:
        """Show a task's items by building and room (or, for a collect task, its count)."""
        self.task_id = task_id
        self.message.clear()
        self.unable_panel.setVisible(False)
        self._show_task()
        self.stack.setCurrentIndex(1)

    def current(self) -> TaskView | None:
        return next((v for v in self.views if v.task.id == self.task_id), None)

    def _show_task(self) -> None:
        view = self.current()
        if view is None:  # cancelled meanwhile, or no longer this worker's (a sync took it off)
            gone = self.task_id is None or self.store.tasks.get(self.task_id) is None
            self.message.setText(tr("tasks.withdrawn" if gone else "tasks.cancelled", self.lang))
            self.items = []
            self.item_table.setRowCount(0)
            return
        task, lang = view.task, self.lang
        form = self.store.formset.form(task.form) if task.form in self.store.formset.forms else None
        labels = [form.fields[f].label.get(lang) for f in task.fields if form and f in form.fields]
        header = [task.title, task.instruction]
        if labels:
            header.append(tr("tasks.fields", lang, fields="、".join(labels)))
        self.task_header.setText("\n".join(p for p in header if p))
        collect = task.kind == "collect"
        if collect:
            summary = tr("tasks.collect_summary", lang, done=view.done, target=view.total or "—")
        else:
            summary = tr(
                "tasks.summary",
                lang,
                total=view.total,
                done=view.done,
                unable=view.unable,
                open=view.open,
            )
        self.task_summary.setText(summary)
        self.detail_bar.setRange(0, max(view.total, 1))
        self.detail_bar.setValue(min(view.finished, max(view.total, 1)))
        self.detail_bar.setFormat(f"{view.finished}/{view.total}")
        title = form.title.get(lang) if form else task.form
        self.new_button.setText(tr("tasks.new_record", lang, form=title))
        self.new_button.setVisible(collect)
        for widget in (self.item_table, self.open_button, self.unable_button):
            widget.setVisible(not collect)
        self.items = [] if collect else self.store.tasks.items(task.id)
        self._fill_items()

    def _fill_items(self) -> None:
        current = self.item_table.currentRow()
        self.item_table.setRowCount(len(self.items))
        for row, item in enumerate(self.items):
            if item.state == "unable":
                state = tr("tasks.item.unable", self.lang, reason=self._reason(item.reason))
            else:
                state = tr(f"tasks.item.{item.state}", self.lang)
            if item.pending:
                state += tr("tasks.item.pending", self.lang)
            title = item.title or tr("tasks.item.missing", self.lang)
            for column, text in enumerate((item.building, item.house, title, state)):
                cell = QTableWidgetItem(text)
                cell.setData(Qt.ItemDataRole.UserRole, item.id)
                self.item_table.setItem(row, column, cell)
        if 0 <= current < len(self.items):
            self.item_table.selectRow(current)

    def _reason(self, reason: str | None) -> str:
        key = f"tasks.reason.{reason}"
        return tr(key, self.lang) if reason and key in STRINGS else reason or ""

    # -- actions -------------------------------------------------------------------------------

    def open_item(self, row: int) -> Any:
        """Open the item's record with the task's fields highlighted, the first one focused."""
        view = self.current()
        if view is None or not 0 <= row < len(self.items):
            self.message.setText(tr("tasks.pick_item", self.lang))
            return None
        editor = self.window.open_record(self.items[row].record_id)
        if editor is None:
            self.message.setText(tr("tasks.item.missing", self.lang))
            return None
        editor.set_task_fields(view.task.fields)
        editor.focus_first()
        return editor

    def _ask_unable(self) -> None:
        if not 0 <= self.item_table.currentRow() < len(self.items):
            self.message.setText(tr("tasks.pick_item", self.lang))
            return
        self.message.clear()
        self.unable_panel.open()

    def mark_unable(self, row: int, reason: str) -> bool:
        """Mark an item unable with a reason: shown at once; a bad reason says what to fix."""
        if not 0 <= row < len(self.items):
            self.message.setText(tr("tasks.pick_item", self.lang))
            return False
        if self.items[row].state == "done":  # done wins anyway (PROTOCOL.md §13.1)
            self.message.setText(tr("tasks.already_done", self.lang))
            return False
        try:
            self.store.tasks.mark_unable(self.items[row].id, reason, self.window.author)
        except TaskError as exc:
            self.message.setText(f"{exc.message_zh} / {exc.message_en}")
            return False
        self.unable_panel.setVisible(False)
        self.message.setText(tr("tasks.marked", self.lang, state=self._reason(reason)))
        self.refresh()
        self.changed.emit()
        return True

    def new_record(self) -> Any:
        """A collect task: a new form of its form, in its grid (the selected one if it is one
        of the task's)."""
        view = self.current()
        if view is None:
            return None
        task = view.task
        form = self.store.formset.form(task.form)
        prefill: dict[str, Any] = {}
        selected = getattr(getattr(self.window, "_query", None), "scope", None)
        grid = getattr(selected, "grid", None)
        if form.roles.grid and task.grids:
            prefill[form.roles.grid] = grid if grid in task.grids else task.grids[0]
        return self.window.new_record(task.form, prefill)
