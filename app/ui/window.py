"""The main window: where a grid worker finds, opens and creates records all day.

Left: the navigation tree (community -> grid -> building -> house). Centre: one lazy list per
form with search-as-you-type and filters. Right: open records and the household view as
closable tabs, so a worker can keep a household and a person side by side. The status bar
shows what waits for sync, the last sync and open conflicts.

Nothing here blocks on the size of the store: lists fetch pages, counts (tab titles, status
bar) come from a background task, and imports, exports and demo generation run in
``tasks`` with a progress dialog and a working Cancel.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.core.store import Store, browse
from app.core.store.browse import Filters, Scope
from app.ui import tasks
from app.ui.household import HouseholdView
from app.ui.i18n import language, register, tr
from app.ui.models import ListQuery, RecordListModel
from app.ui.navigation import NavigationTree
from app.ui.settings import Settings, SettingsDialog, load_settings, save_settings

log = logging.getLogger(__name__)

FORM_TABS = ("resident", "house", "unit", "address")
SEARCH_DEBOUNCE_MS = 120
COUNTS_DEBOUNCE_MS = 150
ROW_HEIGHT, TOUCH_ROW_HEIGHT = 26, 48

register(
    {
        "main.title": ("网格采集", "GridCollect"),
        "main.tab.resident": ("居民", "Residents"),
        "main.tab.house": ("房屋", "Houses"),
        "main.tab.unit": ("单位", "Units"),
        "main.tab.address": ("地址", "Addresses"),
        "main.search": (
            "搜索姓名、拼音首字母、证件号或电话尾号、地址（Ctrl+F）",
            "Search name, pinyin initials, ID or phone tail, address (Ctrl+F)",
        ),
        "main.status_any": ("全部状态", "Any status"),
        "main.dirty": ("待同步", "Pending sync"),
        "main.conflict": ("冲突", "Conflict"),
        "main.dup": ("疑似重复", "Possible duplicate"),
        "main.new": ("新建", "New"),
        "main.menu.file": ("文件(&F)", "&File"),
        "main.menu.view": ("视图(&V)", "&View"),
        "main.menu.help": ("帮助(&H)", "&Help"),
        "main.act.new": ("新建记录", "New record"),
        "main.act.import": ("导入…", "Import…"),
        "main.act.export": ("导出…", "Export…"),
        "main.act.demo": ("生成演示数据…", "Demo data…"),
        "main.act.settings": ("设置…", "Settings…"),
        "main.act.quit": ("退出", "Quit"),
        "main.act.about": ("关于", "About"),
        "main.pending": ("待同步 {n}", "{n} to sync"),
        "main.last_sync": ("上次同步 {at}", "Last sync {at}"),
        "main.never_synced": ("从未同步", "never synced"),
        "main.conflicts": ("冲突 {n}", "{n} conflicts"),
        "main.worker": ("采集员 {name}", "Worker {name}"),
        "main.no_worker": ("未设置采集员（文件→设置）", "No worker set (File → Settings)"),
        "main.shown": ("显示 {n} 条", "{n} shown"),
        "main.shown_more": ("已显示 {n} 条，滚动加载更多", "{n} shown, scroll for more"),
        "main.counting": ("…", "…"),
        "main.searching": ("正在查找…", "Searching…"),
        "main.household": ("户：{title}", "Household: {title}"),
        "main.restore_title": ("恢复未保存的表单", "Restore unsaved forms"),
        "main.restore_text": (
            "上次退出时有 {n} 个表单未保存。要恢复它们吗？",
            "{n} form(s) were not saved when the app last closed. Restore them?",
        ),
        "main.restore": ("恢复", "Restore"),
        "main.later": ("以后再说", "Later"),
        "main.import_form": ("导入到哪个表单：", "Import into which form:"),
        "main.import_title": ("导入", "Import"),
        "main.import_filter": ("表格 (*.csv *.xlsx *.json)", "Tables (*.csv *.xlsx *.json)"),
        "main.importing": ("正在导入…", "Importing…"),
        "main.import_done": (
            "导入完成：新建 {created}，更新 {updated}，拒绝 {rejected} 行。",
            "Imported: {created} created, {updated} updated, {rejected} rows rejected.",
        ),
        "main.import_none": (
            "未导入任何记录：请先修正文件中的问题。",
            "Nothing imported: fix the problems in the file first.",
        ),
        "main.export_title": ("导出", "Export"),
        "main.export_filter": ("Excel (*.xlsx);;CSV (*.csv)", "Excel (*.xlsx);;CSV (*.csv)"),
        "main.exporting": ("正在导出…", "Exporting…"),
        "main.export_done": (
            "已导出 {n} 条记录（敏感信息已遮盖）。",
            "Exported {n} records (sensitive values masked).",
        ),
        "main.demo_title": ("生成演示数据", "Demo data"),
        "main.demo_size": ("大约多少条记录：", "About how many records:"),
        "main.demo_running": ("正在生成演示社区…", "Creating the demo community…"),
        "main.demo_done": ("演示社区已生成：{counts}", "Demo community created: {counts}"),
        "main.cancelled": ("已取消。", "Cancelled."),
        "main.cancelled_rollback": ("已取消，未导入任何记录。", "Cancelled; nothing was imported."),
        "main.failed": ("未完成：{message}", "Did not finish: {message}"),
        "main.about": (
            "网格采集 GridCollect：一标三实离线采集。\n数据文件：{path}",
            "GridCollect: offline collection of addresses, residents, houses and units.\n"
            "Data file: {path}",
        ),
        "main.empty": (
            "在左侧选择网格或楼栋，双击列表中的记录打开（回车也可以）。",
            "Pick a grid or building on the left; double-click a record (or press Enter).",
        ),
    }
)


class _SearchKeys(QObject):
    """Down arrow in the search box moves into the list; Escape clears the search."""

    def __init__(self, window: MainWindow) -> None:
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


class MainWindow(QMainWindow):
    """The app's main window over one Store (``MainWindow(store, lang=...)`` works in tests)."""

    recordOpened = Signal(str)  # an editor tab for this record id is current

    def __init__(
        self,
        store: Store,
        lang: str = "zh",
        *,
        settings: Settings | None = None,
        restore_autosaves: bool = True,
    ) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.store = store
        self.settings = settings or load_settings(store)
        self.lang = lang
        self.settings.lang = lang
        language().set_lang(lang)
        self.runner = tasks.TaskRunner(store.path, store.formset, self)
        # list queries that overrun the UI budget: one at a time, the newest wins
        self.list_runner = tasks.TaskRunner(store.path, store.formset, self, max_threads=1)
        self._query = ListQuery()
        self._counts_handle: tasks.TaskHandle | None = None
        self._counts_again = False
        self._grids_stale = True  # grids used by records but not in the grid table: recheck
        self._editors: dict[QWidget, str | None] = {}  # editor -> record id (None until saved)
        self.household_view: HouseholdView | None = None
        self._build()
        self._build_menus()
        self.navigation.set_assigned(self.settings.assigned_grids)
        self.retranslate()
        self.set_touch_mode(self.settings.touch_mode)
        self.lists[FORM_TABS[0]].start()
        self._update_shown()
        self.refresh_counts()
        self.restore_timer = self._timer(0, self.offer_restore)  # once the window is up
        if restore_autosaves:
            self.restore_timer.start()
        self._install_features()

    def _install_features(self) -> None:
        """Sync, conflicts, duplicate review, printing and the hand-held scanner."""
        from app.ui.conflicts import install_conflicts
        from app.ui.printui import install_print_actions
        from app.ui.reviews import install_reviews
        from app.ui.syncui import install_sync

        self.sync_ctl = install_sync(self)  # 同步 menu + toolbar button
        install_conflicts(self, self.sync_ctl.menu)  # 冲突… in the same menu
        self.reviews_action = install_reviews(self, self.sync_ctl.menu)
        self.print_actions = install_print_actions(self)  # 打印 menu + scanner filter
        self.scanner = self.print_actions.scanner
        self.scan_ctl = self.print_actions.scan_ctl

    # -- construction ----------------------------------------------------------------------

    def _build(self) -> None:
        self.resize(1400, 860)
        self.navigation = NavigationTree(self.store, self.lang, self)
        self.navigation.scopeSelected.connect(self.set_scope)
        self.navigation.houseActivated.connect(self.open_household)
        self.search_timer = self._timer(SEARCH_DEBOUNCE_MS, self.apply_search)
        self.counts_timer = self._timer(COUNTS_DEBOUNCE_MS, self._start_counts)
        centre = QWidget(self)
        layout = QVBoxLayout(centre)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(self._build_bar(centre))
        layout.addWidget(self._build_lists(centre), 1)
        self.doc_tabs = QTabWidget(self)
        self.doc_tabs.setObjectName("documentTabs")
        self.doc_tabs.setTabsClosable(True)
        self.doc_tabs.setMovable(True)
        self.doc_tabs.tabCloseRequested.connect(self._close_doc_tab)
        self.doc_tabs.setVisible(False)
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        for index, widget in enumerate((self.navigation, centre, self.doc_tabs)):
            self.splitter.addWidget(widget)
            self.splitter.setStretchFactor(index, 0 if index == 0 else 1)
        self.splitter.setSizes([260, 700, 640])
        self.setCentralWidget(self.splitter)
        self._build_status_bar()
        QShortcut(QKeySequence.StandardKey.Find, self, activated=self.focus_search)
        QShortcut(QKeySequence("Ctrl+W"), self, activated=self._close_current_doc)

    def _timer(self, interval: int, slot: Callable[[], None]) -> QTimer:
        timer = QTimer(self)
        timer.setSingleShot(True)
        timer.setInterval(interval)
        timer.timeout.connect(slot)
        return timer

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

    def _build_status_bar(self) -> None:
        self.shown_label = QLabel(self)
        self.worker_label = QLabel(self)
        self.pending_label = QLabel(self)
        self.pending_label.setObjectName("pendingLabel")
        self.sync_label = QLabel(self)
        self.sync_label.setObjectName("lastSyncLabel")
        self.conflicts_label = QLabel(self)
        self.conflicts_label.setObjectName("conflictsLabel")
        status = self.statusBar()
        status.addWidget(self.shown_label, 1)
        for label in (self.worker_label, self.pending_label, self.sync_label, self.conflicts_label):
            label.setContentsMargins(10, 0, 10, 0)
            status.addPermanentWidget(label)
        self._counts: dict[str, int] = {}
        self._status_counts: tuple[int, int] | None = None

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
        for column, width in ((1, 110), (2, 70), (3, 70), (4, 90), (5, 130)):
            view.setColumnWidth(column, width)
        view.activated.connect(lambda index, m=model: self.open_record(m.record_id(index.row())))
        return view

    def _build_menus(self) -> None:
        bar = self.menuBar()
        self.file_menu = bar.addMenu("")
        self.act_new = self._action(self.file_menu, QKeySequence.StandardKey.New, self.new_record)
        self.file_menu.addSeparator()
        self.act_import = self._action(self.file_menu, None, self.import_dialog)
        self.act_export = self._action(self.file_menu, None, self.export_dialog)
        self.act_demo = self._action(self.file_menu, None, self.demo_dialog)
        self.file_menu.addSeparator()
        self.act_settings = self._action(
            self.file_menu, QKeySequence("Ctrl+,"), self.settings_dialog
        )
        self.file_menu.addSeparator()
        self.act_quit = self._action(self.file_menu, QKeySequence.StandardKey.Quit, self.close)
        self.view_menu = bar.addMenu("")
        self.act_touch = QAction(self)
        self.act_touch.setCheckable(True)
        self.act_touch.setChecked(self.settings.touch_mode)
        self.act_touch.toggled.connect(self._touch_toggled)
        self.view_menu.addAction(self.act_touch)
        self.lang_menu = self.view_menu.addMenu("")
        group = QActionGroup(self)
        self.lang_actions: dict[str, QAction] = {}
        for code, label in (("zh", "中文"), ("en", "English")):
            action = QAction(label, self, checkable=True)
            action.setChecked(code == self.lang)
            action.triggered.connect(lambda _checked=False, c=code: self.set_language(c))
            group.addAction(action)
            self.lang_menu.addAction(action)
            self.lang_actions[code] = action
        self.help_menu = bar.addMenu("")
        self.act_about = self._action(self.help_menu, None, self.about)

    def _action(self, menu: Any, shortcut: Any, slot: Callable[[], Any]) -> QAction:
        action = QAction(self)
        if shortcut is not None:
            action.setShortcut(shortcut)
        action.triggered.connect(lambda _checked=False: slot())
        menu.addAction(action)
        return action

    # -- language and touch mode -----------------------------------------------------------

    def retranslate(self) -> None:
        """Put every label of the window in the current language."""
        lang = self.lang
        self.setWindowTitle(f"{tr('main.title', lang)} — {self.store.path.parent.name}")
        self.search_box.setPlaceholderText(tr("main.search", lang))
        current = self.status_filter.currentIndex()
        self.status_filter.blockSignals(True)
        self.status_filter.clear()
        self.status_filter.addItem(tr("main.status_any", lang), None)
        self.status_filter.addItem(tr("status_draft", lang), "draft")
        self.status_filter.addItem(tr("status_complete", lang), "complete")
        self.status_filter.setCurrentIndex(max(0, current))
        self.status_filter.blockSignals(False)
        self.dirty_filter.setText(tr("main.dirty", lang))
        self.conflict_filter.setText(tr("main.conflict", lang))
        self.dup_filter.setText(tr("main.dup", lang))
        self.new_button.setText(tr("main.new", lang))
        self.new_button.setToolTip(f"{tr('main.act.new', lang)} (Ctrl+N)")
        self.file_menu.setTitle(tr("main.menu.file", lang))
        self.view_menu.setTitle(tr("main.menu.view", lang))
        self.help_menu.setTitle(tr("main.menu.help", lang))
        for action, key in (
            (self.act_new, "main.act.new"),
            (self.act_import, "main.act.import"),
            (self.act_export, "main.act.export"),
            (self.act_demo, "main.act.demo"),
            (self.act_settings, "main.act.settings"),
            (self.act_quit, "main.act.quit"),
            (self.act_about, "main.act.about"),
        ):
            action.setText(tr(key, lang))
        self.act_touch.setText(tr("touch_mode", lang))
        self.lang_menu.setTitle(tr("language", lang))
        for model in self.lists.values():
            model.set_lang(lang)
        self.navigation.set_lang(lang)
        if self.household_view is not None:
            self.household_view.retranslate(lang)
            self._retitle_household()
        for editor, record_id in self._editors.items():
            if record_id is None:  # saved records are titled by their data, new ones by words
                index = self.doc_tabs.indexOf(editor)
                self.doc_tabs.setTabText(index, self._new_title(editor.form.id))  # type: ignore[attr-defined]
        self._update_tab_titles()
        self._update_status()
        self._update_shown()

    def set_language(self, lang: str) -> None:
        """Switch zh/en at runtime: the window, household view and open editors retranslate.

        The choice is saved, so the next start uses it when no language is given.
        """
        if lang == self.lang:
            return
        self.lang = lang
        self.settings.lang = lang
        save_settings(self.store, self.settings)
        self.lang_actions[lang].setChecked(True)
        language().set_lang(lang)  # open editors follow the app-wide language themselves
        self.retranslate()

    def set_touch_mode(self, on: bool) -> None:
        """Large targets and fonts for tablets (the whole app, dialogs included)."""
        from app.ui.style import apply_touch_mode

        app = QApplication.instance()
        if app is not None:
            apply_touch_mode(app, on)  # type: ignore[arg-type]
        self.settings.touch_mode = on
        self._apply_row_heights()
        if self.act_touch.isChecked() != on:
            self.act_touch.setChecked(on)

    def _apply_row_heights(self) -> None:
        """Table rows follow touch mode (a style sheet cannot size QTableView rows)."""
        height = TOUCH_ROW_HEIGHT if self.settings.touch_mode else ROW_HEIGHT
        for view in self.findChildren(QTableView):
            view.verticalHeader().setDefaultSectionSize(height)

    def _touch_toggled(self, on: bool) -> None:
        if on != self.settings.touch_mode:
            self.set_touch_mode(on)
            save_settings(self.store, self.settings)

    # -- lists, search and filters ---------------------------------------------------------

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

    # -- background counts (tab titles and status bar) -------------------------------------

    def refresh_counts(self) -> None:
        """Recount tab totals and the status bar in a background task (debounced, coalesced)."""
        self.counts_timer.start()

    def _start_counts(self) -> None:
        if self._counts_handle is not None:
            self._counts_again = True
            self._counts_handle.cancel()  # its numbers are stale already
            return
        scope, filters, grids = self._query.scope, self._query.filters, self._grids_stale
        self._counts_handle = self.runner.start(
            lambda ctx: _count_everything(ctx, scope, filters, grids), name="counts"
        )
        self._counts_handle.finished.connect(self._on_counts)
        self._counts_handle.done.connect(self._after_counts)

    def _after_counts(self) -> None:
        self._counts_handle = None
        if self._counts_again:
            self._counts_again = False
            self._start_counts()

    @property
    def counts_settled(self) -> bool:
        """No count is waiting or running: the tab titles and status bar are current."""
        return not self.counts_timer.isActive() and self._counts_handle is None

    def _on_counts(self, result: dict[str, Any]) -> None:
        self._counts = result["forms"]
        self._status_counts = (result["pending"], result["conflicts"])
        if result["undefined_grids"] is not None:
            self._grids_stale = False
            self.navigation.set_undefined_grids(result["undefined_grids"])
        self._update_tab_titles()
        self._update_status()

    def _update_tab_titles(self) -> None:
        for i, form_id in enumerate(FORM_TABS):
            title = tr(f"main.tab.{form_id}", self.lang)
            n = self._counts.get(form_id)
            self.list_tabs.setTabText(i, f"{title} ({n:,})" if n is not None else title)

    def _update_status(self) -> None:
        lang = self.lang
        author = self.settings.worker_name or self.settings.worker_id
        self.worker_label.setText(
            tr("main.worker", lang, name=author) if author else tr("main.no_worker", lang)
        )
        if self._status_counts is None:
            self.pending_label.setText(tr("main.pending", lang, n=tr("main.counting", lang)))
            self.conflicts_label.setText(tr("main.conflicts", lang, n=tr("main.counting", lang)))
        else:
            pending, conflicts = self._status_counts
            self.pending_label.setText(tr("main.pending", lang, n=f"{pending:,}"))
            self.conflicts_label.setText(tr("main.conflicts", lang, n=f"{conflicts:,}"))
            self.conflicts_label.setStyleSheet("color: #b3261e;" if conflicts else "")
        last = self.store.meta("last_sync")
        at = last[:16].replace("T", " ") if last else tr("main.never_synced", lang)
        self.sync_label.setText(tr("main.last_sync", lang, at=at) if last else at)

    # -- records: open, new, saved ---------------------------------------------------------

    @property
    def author(self) -> str:
        return self.settings.author

    def _prefill_for(self, form_id: str) -> dict[str, Any]:
        """A new record starts in the selected grid (and building, for forms that have one)."""
        form = self.store.formset.form(form_id)
        scope, values = self._query.scope, {}
        if form.roles.grid and scope.grid:
            values[form.roles.grid] = scope.grid
        if scope.building and form.roles.building:
            values[form.roles.building] = scope.building
        return values

    def new_record(
        self, form_id: str | None = None, prefill: dict[str, Any] | None = None
    ) -> QWidget:
        """Open an editor for a new record (Ctrl+N: the current list's form, selected grid)."""
        from app.ui.editor import RecordEditor

        form_id = form_id or self.current_form
        values = self._prefill_for(form_id) if prefill is None else dict(prefill)
        editor = RecordEditor(
            self.store,
            form_id,
            None,
            lang=self.lang,
            author=self.author,
            prefill=values,
            parent=self.doc_tabs,
        )
        self._add_editor(editor, None, self._new_title(form_id))
        return editor

    def _new_title(self, form_id: str) -> str:
        form_title = self.store.formset.form(form_id).title.get(self.lang)
        return f"{tr('new_record', self.lang)} · {form_title}"

    def open_record(self, record_id: str) -> QWidget | None:
        """Open a record in an editor tab (or bring its tab forward if open)."""
        for widget, rid in self._editors.items():
            if rid == record_id:
                self.doc_tabs.setCurrentWidget(widget)
                widget.check_stored()  # type: ignore[attr-defined]  # e.g. a scan of a changed record
                self.recordOpened.emit(record_id)
                return widget
        record = self.store.get(record_id)
        if record is None or record.deleted:
            return None
        from app.ui.editor import RecordEditor

        editor = RecordEditor(
            self.store,
            record.form,
            record_id,
            lang=self.lang,
            author=self.author,
            prefill=None,
            parent=self.doc_tabs,
        )
        self._add_editor(editor, record_id, record.title or record_id)
        self.recordOpened.emit(record_id)
        return editor

    def _add_editor(self, editor: QWidget, record_id: str | None, title: str) -> None:
        self._editors[editor] = record_id
        editor.saved.connect(lambda rid, e=editor: self._on_saved(e, rid))  # type: ignore[attr-defined]
        editor.completed.connect(lambda rid, e=editor: self._on_saved(e, rid))  # type: ignore[attr-defined]
        editor.openRecordRequested.connect(self.open_record)  # type: ignore[attr-defined]
        editor.closed.connect(lambda e=editor: self._remove_doc(e))  # type: ignore[attr-defined]
        index = self.doc_tabs.addTab(editor, title)
        self.doc_tabs.setCurrentIndex(index)
        self._apply_row_heights()
        self._show_docs()

    def _on_saved(self, editor: QWidget, record_id: str) -> None:
        self._editors[editor] = record_id
        record = self.store.get(record_id)
        index = self.doc_tabs.indexOf(editor)
        if record is not None and index >= 0 and record.title:
            self.doc_tabs.setTabText(index, record.title)
        self.record_changed(record_id)

    def record_changed(self, record_id: str) -> None:
        """A record was saved somewhere: refresh its list row, the household, the counts and
        every open editor of it (which takes the change in without losing what is typed)."""
        for model in self.lists.values():
            if model.started:
                model.record_changed(record_id)
        if self.household_view is not None:
            self.household_view.refresh()
        self.check_open_editors(record_id)
        self.refresh_counts()

    def check_open_editors(self, record_id: str | None = None) -> None:
        """Open editors (of ``record_id``, or all) read their record again and merge what
        changed elsewhere (``RecordEditor.check_stored``)."""
        for editor, rid in list(self._editors.items()):
            if rid is not None and (record_id is None or rid == record_id):
                editor.check_stored()  # type: ignore[attr-defined]

    def open_household(self, house_id: str) -> HouseholdView | None:
        """Show a house's household in the (single, reused) household tab."""
        if self.store.get(house_id) is None:
            return None
        if self.household_view is None:
            view = HouseholdView(
                self.store, house_id, lang=self.lang, author=self.author, parent=self.doc_tabs
            )
            view.openRecordRequested.connect(self.open_record)
            view.newRecordRequested.connect(lambda form, values: self.new_record(form, values))
            view.changed.connect(self.record_changed)
            self.household_view = view
            self.doc_tabs.insertTab(0, view, "")
            self._apply_row_heights()
        else:
            self.household_view.author = self.author
            self.household_view.set_house(house_id)
        self._retitle_household()
        self.doc_tabs.setCurrentWidget(self.household_view)
        self._show_docs()
        return self.household_view

    def _retitle_household(self) -> None:
        view = self.household_view
        if view is not None and view.household is not None:
            title = view.household.house.title
            short = title if len(title) <= 18 else "…" + title[-17:]
            self.doc_tabs.setTabText(
                self.doc_tabs.indexOf(view), tr("main.household", self.lang, title=short)
            )

    def _show_docs(self) -> None:
        if not self.doc_tabs.isVisible():
            self.doc_tabs.setVisible(True)
            total = sum(self.splitter.sizes())
            self.splitter.setSizes([int(total * 0.17), int(total * 0.38), int(total * 0.45)])

    def _close_doc_tab(self, index: int) -> None:
        widget = self.doc_tabs.widget(index)
        if widget is None:
            return
        if widget in self._editors:
            widget.request_close()  # type: ignore[attr-defined]  # asks, then emits closed()
        else:
            self._remove_doc(widget)

    def _close_current_doc(self) -> None:
        if self.doc_tabs.count():
            self._close_doc_tab(self.doc_tabs.currentIndex())

    def _remove_doc(self, widget: QWidget) -> None:
        self._editors.pop(widget, None)
        if widget is self.household_view:
            self.household_view = None
        index = self.doc_tabs.indexOf(widget)
        if index >= 0:
            self.doc_tabs.removeTab(index)
        widget.deleteLater()
        if self.doc_tabs.count() == 0:
            self.doc_tabs.setVisible(False)

    def open_editors(self) -> list[QWidget]:
        return list(self._editors)

    # -- crash recovery --------------------------------------------------------------------

    def offer_restore(self) -> int:
        """Offer to reopen forms a crash left unsaved; returns how many were reopened."""
        rows = self.store.autosaves()
        if not rows:
            return 0
        answer = self.ask_restore(len(rows))
        if answer != "restore":
            return 0
        from app.ui.editor import RecordEditor

        for row in rows:
            editor = RecordEditor.restore(
                self.store, row, lang=self.lang, author=self.author, parent=self.doc_tabs
            )
            form = self.store.formset.form(row.form)
            title = form.title_of(row.data) or tr("new_record", self.lang)
            self._add_editor(editor, row.record_id, title)
        return len(rows)

    def ask_restore(self, count: int) -> str:
        """Ask whether to restore unsaved forms: "restore" or "later" (tests replace this)."""
        box = QMessageBox(
            QMessageBox.Icon.Question,
            tr("main.restore_title", self.lang),
            tr("main.restore_text", self.lang, n=count),
            parent=self,
        )
        restore = box.addButton(tr("main.restore", self.lang), QMessageBox.ButtonRole.AcceptRole)
        box.addButton(tr("main.later", self.lang), QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(restore)
        box.exec()
        return "restore" if box.clickedButton() is restore else "later"

    # -- settings and long work ------------------------------------------------------------

    def settings_dialog(self) -> None:
        dialog = SettingsDialog(self.store, self.settings, self.lang, self)
        if dialog.exec():
            self.apply_settings(dialog.settings())

    def apply_settings(self, settings: Settings) -> None:
        """Save and apply settings (identity, grids, touch mode, language)."""
        touch, lang = settings.touch_mode, settings.lang
        settings.lang = self.lang  # set_language saves and switches below
        self.settings = settings
        save_settings(self.store, settings)
        self.navigation.set_assigned(settings.assigned_grids)
        if self.household_view is not None:
            self.household_view.author = settings.author
        self.set_touch_mode(touch)
        if lang != self.lang:
            self.set_language(lang)
        else:
            self._update_status()

    def run_task(
        self,
        fn: Callable[[tasks.TaskContext], Any],
        title: str,
        on_done: Callable[[Any], None],
        name: str = "task",
    ) -> tasks.TaskHandle:
        """Run long work behind a progress dialog; results come back here, in the GUI thread."""
        handle = tasks.run_with_progress(
            self, self.runner, fn, title, tr("cancel", self.lang), name
        )
        handle.finished.connect(on_done)
        handle.failed.connect(
            lambda message: self._tell(title, tr("main.failed", self.lang, message=message), True)
        )
        handle.cancelled.connect(
            lambda: self.statusBar().showMessage(tr("main.cancelled", self.lang), 5000)
        )
        handle.done.connect(self.data_changed)
        return handle

    def _tell(self, title: str, text: str, warning: bool = False, details: str = "") -> QMessageBox:
        """A non-blocking message (slots of finished tasks must not spin a nested loop)."""
        icon = QMessageBox.Icon.Warning if warning else QMessageBox.Icon.Information
        box = QMessageBox(icon, title, text, parent=self)
        box.setObjectName("taskMessage")
        if details:
            box.setDetailedText(details)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        return box

    def data_changed(self) -> None:
        """Many records may have changed (any finished task: import, demo, sync): reread the
        tree, lists and counts, and let open editors take in what changed under them."""
        self._grids_stale = True
        self.navigation.rebuild()
        for model in self.lists.values():
            if model.started:
                model.reload()
        self.check_open_editors()
        self.refresh_counts()

    def _ask_form(self, title: str, prompt: str) -> str | None:
        titles = [self.store.formset.form(f).title.get(self.lang) for f in FORM_TABS]
        text, ok = QInputDialog.getItem(
            self, title, prompt, titles, self.list_tabs.currentIndex(), False
        )
        return FORM_TABS[titles.index(text)] if ok and text in titles else None

    def import_dialog(self) -> None:
        form_id = self._ask_form(
            tr("main.import_title", self.lang), tr("main.import_form", self.lang)
        )
        if form_id is None:
            return
        path, _ = QFileDialog.getOpenFileName(
            self, tr("main.import_title", self.lang), "", tr("main.import_filter", self.lang)
        )
        if path:
            self.start_import(path, form_id)

    def start_import(self, path: str, form_id: str) -> tasks.TaskHandle:
        fn = tasks.import_task(path, form_id, author=self.author, lang=self.lang)
        return self.run_task(fn, tr("main.importing", self.lang), self._import_done, "import")

    def _import_done(self, report: Any) -> None:
        lang = self.lang
        if not report.imported:
            text = tr("main.import_none", lang)
        else:
            text = tr(
                "main.import_done",
                lang,
                created=report.created,
                updated=report.updated,
                rejected=len(report.rejected_rows),
            )
        details = "\n".join(f"{e.row}: {e.message}" for e in report.errors[:20])
        self._tell(tr("main.import_title", lang), text, not report.imported, details)

    def export_dialog(self) -> None:
        form_id = self.current_form
        path, _ = QFileDialog.getSaveFileName(
            self,
            tr("main.export_title", self.lang),
            f"{form_id}.xlsx",
            tr("main.export_filter", self.lang),
        )
        if path:
            self.start_export(path, form_id)

    def start_export(self, path: str, form_id: str) -> tasks.TaskHandle:
        fn = tasks.export_task(path, form_id, lang=self.lang)
        return self.run_task(
            fn,
            tr("main.exporting", self.lang),
            lambda n: self._tell(
                tr("main.export_title", self.lang), tr("main.export_done", self.lang, n=n)
            ),
            "export",
        )

    def demo_dialog(self) -> None:
        size, ok = QInputDialog.getInt(
            self,
            tr("main.demo_title", self.lang),
            tr("main.demo_size", self.lang),
            3000,
            300,
            1_630_000,
            1000,
        )
        if ok:
            self.start_demo(size)

    def start_demo(self, size: int, seed: int = 7) -> tasks.TaskHandle:
        return self.run_task(
            tasks.demo_task(size, seed), tr("main.demo_running", self.lang), self._demo_done, "demo"
        )

    def _demo_done(self, summary: Any) -> None:
        counts = ", ".join(f"{k} {v:,}" for k, v in summary.counts.items())
        self.statusBar().showMessage(tr("main.demo_done", self.lang, counts=counts), 10000)

    def about(self) -> None:
        QMessageBox.about(
            self, tr("main.act.about", self.lang), tr("main.about", self.lang, path=self.store.path)
        )

    # -- closing ---------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt name
        """Close editors first (each may ask about unsaved changes); stop background work."""
        for editor in list(self._editors):
            if not editor.request_close():  # type: ignore[attr-defined]
                event.ignore()
                return
        for timer in (self.search_timer, self.counts_timer, self.restore_timer):
            timer.stop()
        for runner in (self.list_runner, self.runner):
            runner.cancel_all()
        for runner in (self.list_runner, self.runner):
            runner.wait(10.0)
        self.scanner.uninstall()  # the filter sits on the application, not on this window
        event.accept()


def _count_everything(
    ctx: tasks.TaskContext, scope: Scope, filters: Filters, with_grids: bool
) -> dict[str, Any]:
    """Tab totals, outbox and conflict counts: full index scans, so off the UI thread."""
    store = ctx.store()
    forms = browse.count_forms(store, FORM_TABS, scope, filters)
    ctx.check()
    return {
        "forms": forms,
        "pending": browse.pending_count(store),
        "conflicts": browse.conflict_count(store),
        "undefined_grids": browse.undefined_grids(store) if with_grids else None,
    }
