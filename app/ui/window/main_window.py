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

from PySide6.QtCore import QRect, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QMainWindow,
    QMenu,
    QMessageBox,
    QSplitter,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.core.store import Store
from app.ui import tasks
from app.ui.editor.dialogs import CloseChoice, ask_close
from app.ui.household import HouseholdView
from app.ui.i18n import language, tr, without_mnemonic
from app.ui.models import ListQuery
from app.ui.navigation import NavigationTree
from app.ui.settings import Settings, load_settings, save_settings
from app.ui.window import strings  # noqa: F401  (registers the window's words)
from app.ui.window.counts import COUNTS_DEBOUNCE_MS, StatusCounts
from app.ui.window.list_pane import FORM_TABS, SEARCH_DEBOUNCE_MS, ListPane
from app.ui.window.long_work import LongWork
from app.ui.window.record_tabs import RecordTabs

log = logging.getLogger(__name__)

ROW_HEIGHT, TOUCH_ROW_HEIGHT = 26, 48
PREFERRED_SIZE = QSize(1400, 860)
FRAME_ALLOWANCE = 40  # the title bar and frame the window system adds around the window


class MainWindow(ListPane, StatusCounts, RecordTabs, LongWork, QMainWindow):
    """The app's main window over one Store (``MainWindow(store, lang=...)`` works in tests).

    Built here: the splitter, menus, language and touch mode. The rest is read per concern in
    the classes it is made of: ``ListPane`` (lists, search, filters), ``StatusCounts`` (tab
    totals, status bar), ``RecordTabs`` (editor and household tabs, crash restore) and
    ``LongWork`` (settings, import, export, demo data).
    """

    recordOpened = Signal(str)  # an editor tab for this record id is current
    recordsChanged = Signal(str)  # a record was saved ("": many may have changed, e.g. a sync)
    languageChanged = Signal(str)  # switched at runtime: views of the features follow it

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
        """Sync, conflicts, refused edits, duplicate review, 我的任务, printing and the
        hand-held scanner."""
        from app.ui.conflicts import install_conflicts
        from app.ui.mytasks import install_my_tasks
        from app.ui.printui import install_print_actions
        from app.ui.refusals import install_refusals
        from app.ui.reviews import install_reviews
        from app.ui.syncui import install_sync

        self.sync_ctl = install_sync(self)  # 同步 menu + toolbar button
        self.conflicts_action = install_conflicts(self, self.sync_ctl.menu)
        self.refusals_action = install_refusals(self, self.sync_ctl.menu)
        self.reviews_action = install_reviews(self, self.sync_ctl.menu)
        self.my_tasks = install_my_tasks(self, self.sync_ctl.toolbar)  # 我的任务 (open items)
        self.print_actions = install_print_actions(self)  # 打印 menu + scanner filter
        self.scanner = self.print_actions.scanner
        self.scan_ctl = self.print_actions.scan_ctl
        self.retranslate_menus()  # the features' menus through the same catalog

    def begin(self, choice: Any) -> None:
        """After the first-run start page: the first sync, or the demo, once the window is up.

        Both run behind the window's progress dialog (``run_task``) with a working Cancel."""

        def start() -> None:
            if choice.kind == "platform" and choice.credentials is not None:
                self.first_run_handle = self.sync_ctl.start(choice.credentials)
            elif choice.kind == "demo":
                self.first_run_handle = self.start_demo(choice.demo_size)

        self.first_run_handle: Any = None
        QTimer.singleShot(0, start)

    # -- construction ----------------------------------------------------------------------

    def fit_to_screen(self, available: QRect | None = None) -> bool:
        """Size the window to the screen's free area (1366×768 laptops are common, and a
        window taller than the screen hides 新建 and the status bar). True when the screen is
        smaller than the window would like: show it maximised then."""
        area = available if available is not None else self.screen().availableGeometry()
        width = min(PREFERRED_SIZE.width(), area.width())
        height = min(PREFERRED_SIZE.height(), area.height() - FRAME_ALLOWANCE)
        self.resize(width, height)
        self.move(area.x() + (area.width() - width) // 2, area.y())
        return width < PREFERRED_SIZE.width() or height < PREFERRED_SIZE.height()

    def _build(self) -> None:
        self.resize(PREFERRED_SIZE)
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
        # many open records scroll in the tab bar and keep their distinguishing end, instead
        # of widening the pane past the screen
        self.doc_tabs.setUsesScrollButtons(True)
        self.doc_tabs.setElideMode(Qt.TextElideMode.ElideLeft)
        self.doc_tabs.tabBar().setExpanding(False)
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
        for code in ("zh", "en"):
            action = QAction(self, checkable=True)
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
        self.new_button.setToolTip(f"{without_mnemonic(tr('main.act.new', lang))} (Ctrl+N)")
        self.retranslate_menus()
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
        if getattr(self, "my_tasks", None) is not None:
            self.my_tasks.refresh()

    def menu_texts(self) -> list[tuple[Any, str]]:
        """Every menu and menu entry with its catalog key (the features' ones once installed)."""
        items: list[tuple[Any, str]] = [
            (self.file_menu, "main.menu.file"),
            (self.view_menu, "main.menu.view"),
            (self.help_menu, "main.menu.help"),
            (self.lang_menu, "main.menu.lang"),
            (self.act_new, "main.act.new"),
            (self.act_import, "main.act.import"),
            (self.act_export, "main.act.export"),
            (self.act_demo, "main.act.demo"),
            (self.act_settings, "main.act.settings"),
            (self.act_quit, "main.act.quit"),
            (self.act_about, "main.act.about"),
            (self.act_touch, "main.act.touch"),
            *((action, f"main.act.lang_{code}") for code, action in self.lang_actions.items()),
        ]
        sync = getattr(self, "sync_ctl", None)
        if sync is not None:
            items += [(sync.menu, "main.menu.sync"), (sync.action, "main.act.sync")]
            items += [(self.conflicts_action, "main.act.conflicts")]
            items += [(self.refusals_action, "main.act.refusals")]
        my_tasks = getattr(self, "my_tasks", None)
        if my_tasks is not None:
            items += [(my_tasks.menu_action, "tasks.menu")]
            items += [(self.reviews_action, "main.act.reviews")]
        printing = getattr(self, "print_actions", None)
        if printing is not None:
            items.append((printing.menu, "main.menu.print"))
            for key, action in printing.actions.items():
                items.append(
                    (action, "main.act.scan" if key == "scan" else f"main.act.print_{key}")
                )
        return items

    def retranslate_menus(self) -> None:
        """Menus and their entries from the catalog, each with its Alt key."""
        for item, key in self.menu_texts():
            text = tr(key, self.lang)
            item.setTitle(text) if isinstance(item, QMenu) else item.setText(text)

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
        self.languageChanged.emit(lang)  # the conflict and refused-edits views, their tabs

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
            view.updateGeometry()  # tables that ask for whole rows ask again

    def _touch_toggled(self, on: bool) -> None:
        if on != self.settings.touch_mode:
            self.set_touch_mode(on)
            save_settings(self.store, self.settings)

    # -- closing ---------------------------------------------------------------------------

    def unsaved_titles(self) -> list[str]:
        """The open records with unsaved changes, as "张三（实有人口）"."""
        titles = []
        for editor in self._editors:
            if not editor.is_closed() and editor.has_unsaved():  # type: ignore[attr-defined]
                tab = without_mnemonic(self.doc_tabs.tabText(self.doc_tabs.indexOf(editor)))
                form = editor.form.title.get(self.lang)  # type: ignore[attr-defined]
                titles.append(tr("main.unsaved_item", self.lang, title=tab, form=form))
        return titles

    def confirm_quit(self, titles: list[str]) -> CloseChoice:
        """One question naming every unsaved record: save all as drafts, discard, or stay."""
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle(tr("confirm_close_title", self.lang))
        box.setText(tr("main.quit_unsaved", self.lang, n=len(titles)))
        box.setInformativeText("\n".join(f"· {t}" for t in titles))
        save = box.addButton(tr("main.quit_save", self.lang), QMessageBox.ButtonRole.AcceptRole)
        discard = box.addButton(tr("discard", self.lang), QMessageBox.ButtonRole.DestructiveRole)
        cancel = box.addButton(tr("cancel", self.lang), QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(save)
        box.setEscapeButton(cancel)
        box.exec()
        clicked = box.clickedButton()
        if clicked is save:
            return CloseChoice.SAVE
        return CloseChoice.DISCARD if clicked is discard else CloseChoice.CANCEL

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt name
        """Ask once, naming the unsaved records; then close editors; stop background work."""
        titles = self.unsaved_titles()
        # editors given their own answer (a nested flow, a test) keep it; the others are
        # asked here once, for all of them
        asking = [e for e in self._editors if e.confirm_close is ask_close]  # type: ignore[attr-defined]
        if titles and asking:
            choice = self.confirm_quit(titles)
            if choice == CloseChoice.CANCEL:
                event.ignore()
                return
            for editor in asking:  # the answer given once holds for each of them
                editor.confirm_close = lambda _e, c=choice: c  # type: ignore[attr-defined]
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
