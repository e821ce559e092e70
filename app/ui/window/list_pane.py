"""The centre of the main window: one lazy record list per form, with search-as-you-type
and the filter bar."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QPushButton,
    QTableView,
    QTabWidget,
    QWidget,
)

from app.core.store.browse import Filters, Scope
from app.ui.i18n import tr
from app.ui.models import ListQuery, RecordListModel

__all__ = ["FORM_TABS", "ListPane"]

FORM_TABS = ("resident", "house", "unit", "address")
SEARCH_DEBOUNCE_MS = 120


class _SearchKeys(QObject):
    """Down arrow in the search box moves into the list; Escape clears the search."""

    def __init__(self, window: ListPane) -> None:
        super().__init__(window)
        self.window = window

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt name
        if event.type() == QEvent.Type.KeyPress:
            key = event.key()  # type: ignore[attr-defined]
            if key == Qt.Key.Key_Down:
                view = self.window.current_view()
                view.setFocus()
                if view.model().rowCount() and not view.currentIndex().isValid():
                    view.setCurrentIndex(view.model().index(0, 0))
                return True
            if key == Qt.Key.Key_Escape and self.window.search_box.text():
                self.window.search_box.clear()
                return True
        return False


class ListPane:
    """The main window's part for the lists: building the bar and the tables, the query they
    show (search text, filters, the tree's scope) and which form's list is current."""

    def _build_bar(self, centre: QWidget) -> QHBoxLayout:
        """Search box, filters and the New button."""
        bar = QHBoxLayout()
        self.search_box = QLineEdit(centre)
        self.search_box.setObjectName("searchBox")
        self.search_box.setClearButtonEnabled(True)
        self.search_box.setMinimumWidth(200)
        self.search_box.installEventFilter(_SearchKeys(self))
        self.search_box.textChanged.connect(lambda _text: self.search_timer.start())
        self.search_box.returnPressed.connect(self._search_now_and_focus_list)
        bar.addWidget(self.search_box, 1)
        self.status_filter = QComboBox(centre)
        self.status_filter.setObjectName("statusFilter")
        self.status_filter.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.status_filter.currentIndexChanged.connect(lambda _i: self.apply_filters())
        bar.addWidget(self.status_filter)
        self.dirty_filter = self._filter_box(centre, "dirtyFilter", bar)
        self.conflict_filter = self._filter_box(centre, "conflictFilter", bar)
        self.dup_filter = self._filter_box(centre, "dupFilter", bar)
        self.new_button = QPushButton(centre)
        self.new_button.setObjectName("newButton")
        self.new_button.clicked.connect(lambda _checked=False: self.new_record())
        bar.addWidget(self.new_button)
        return bar

    def _build_lists(self, centre: QWidget) -> QTabWidget:
        """One tab per form, each a table over a lazy model."""
        self.list_tabs = QTabWidget(centre)
        self.list_tabs.setObjectName("listTabs")
        self.lists: dict[str, RecordListModel] = {}
        self.views: dict[str, QTableView] = {}
        for form_id in FORM_TABS:
            model = RecordListModel(
                self.store, form_id, self.lang, parent=self, runner=self.list_runner
            )
            model.loadingChanged.connect(lambda _on: self._update_shown())
            view = self._make_view(model)
            model.rowsInserted.connect(lambda *_a: self._update_shown())
            model.modelReset.connect(self._update_shown)
            self.lists[form_id], self.views[form_id] = model, view
            self.list_tabs.addTab(view, form_id)
        self.list_tabs.currentChanged.connect(self._on_list_tab)
        return self.list_tabs

    def _filter_box(self, parent: QWidget, name: str, bar: QHBoxLayout) -> QCheckBox:
        box = QCheckBox(parent)
        box.setObjectName(name)
        box.toggled.connect(lambda _on: self.apply_filters())
        bar.addWidget(box)
        return box

    def _make_view(self, model: RecordListModel) -> QTableView:
        view = QTableView(self)
        view.setObjectName(f"list_{model.form_id}")
        view.setModel(model)
        view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        view.setAlternatingRowColors(True)
        view.setWordWrap(False)
        view.verticalHeader().setVisible(False)
        view.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        header = view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column, width in ((1, 300), (2, 110), (3, 70), (4, 70), (5, 90), (6, 130)):
            view.setColumnWidth(column, width)
        view.setColumnHidden(1, not model.has_detail)  # people only: home, age, gender, ID
        view.activated.connect(lambda index, m=model: self.open_record(m.record_id(index.row())))
        return view

    @property
    def current_form(self) -> str:
        return FORM_TABS[self.list_tabs.currentIndex()]

    def current_model(self) -> RecordListModel:
        return self.lists[self.current_form]

    def current_view(self) -> QTableView:
        return self.views[self.current_form]

    def focus_search(self) -> None:
        self.search_box.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search_box.selectAll()

    def filters(self) -> Filters:
        """The filters as the filter bar shows them."""
        return Filters(
            status=self.status_filter.currentData(),
            dirty=True if self.dirty_filter.isChecked() else None,
            conflict=True if self.conflict_filter.isChecked() else None,
            dup=True if self.dup_filter.isChecked() else None,
        )

    def apply_search(self) -> None:
        """Run the typed search on the visible list (the debounce timer calls this)."""
        self.search_timer.stop()
        self._set_query(self._query.with_text(self.search_box.text()), counts=False)

    def _search_now_and_focus_list(self) -> None:
        self.apply_search()
        view = self.current_view()
        if view.model().rowCount():
            view.setFocus()
            view.setCurrentIndex(view.model().index(0, 0))

    def apply_filters(self) -> None:
        self._set_query(ListQuery(self._query.scope, self.filters(), self._query.text))

    def set_scope(self, scope: Scope) -> None:
        """Show records of a community, grid or building (the tree's selection)."""
        if scope != self._query.scope:
            self._set_query(ListQuery(scope, self._query.filters, self._query.text))

    def _set_query(self, query: ListQuery, counts: bool = True) -> None:
        self._query = query
        model = self.current_model()
        if model.query != query or not model.started:
            model.set_query(query)
        if counts:
            self.refresh_counts()

    def _on_list_tab(self, _index: int) -> None:
        model = self.current_model()
        if model.query != self._query or not model.started:
            model.set_query(self._query)
        self._update_shown()

    def _update_shown(self) -> None:
        model = self.current_model()
        if model.loading:
            self.shown_label.setText(tr("main.searching", self.lang))
            return
        key = "main.shown" if model.exhausted else "main.shown_more"
        self.shown_label.setText(tr(key, self.lang, n=model.rowCount()))
