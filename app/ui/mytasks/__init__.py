"""我的任务 My tasks: the platform's tasks on the device (``view``), "unable" in two taps
(``unable``), and the main window's button with the count of open items (``install``)."""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QAction

from app.ui.i18n import tr
from app.ui.mytasks import strings  # noqa: F401  (registers the words)
from app.ui.mytasks.view import MyTasksView

__all__ = ["MyTasks", "MyTasksView", "install_my_tasks"]


class MyTasks:
    """The main window's 我的任务 action (``myTasksAction``: its text carries the count of open
    items) and the view it opens as a document tab."""

    def __init__(self, window: Any) -> None:
        self.window = window
        self.view: MyTasksView | None = None
        self.action = QAction(window)
        self.action.setObjectName("myTasksAction")
        self.action.triggered.connect(lambda _c=False: self.open())
        # the view menu's entry: a catalog text with an Alt key (the button carries the count)
        self.menu_action = QAction(window)
        self.menu_action.setObjectName("myTasksMenuAction")
        self.menu_action.triggered.connect(lambda _c=False: self.open())
        self.refresh()

    @property
    def open_items(self) -> int:
        return int(self.window.store.tasks.open_item_count())

    def refresh(self) -> None:
        """The count on the button, and the open view, read again (after saves and syncs)."""
        lang = self.window.lang
        self.action.setText(tr("tasks.button", lang, n=self.open_items))
        self.action.setToolTip(tr("tasks.button_tip", lang))
        self.menu_action.setText(tr("tasks.menu", lang))
        if self.view is not None:
            if self.view.lang != lang:
                self.view.set_lang(lang)  # refreshes too
                tabs = self.window.doc_tabs
                if tabs.indexOf(self.view) >= 0:
                    tabs.setTabText(tabs.indexOf(self.view), tr("tasks.title", lang))
            else:
                self.view.refresh()

    def _forget(self) -> None:
        self.view = None

    def open(self) -> MyTasksView:
        """Show the view (one tab; brought forward when already open)."""
        window = self.window
        if self.view is None or window.doc_tabs.indexOf(self.view) < 0:
            self.view = MyTasksView(window.store, window, window.lang, window.doc_tabs)
            self.view.changed.connect(self.refresh)
            self.view.destroyed.connect(self._forget)  # its tab was closed
            window.doc_tabs.addTab(self.view, tr("tasks.title", window.lang))
        else:
            self.view.refresh()
        window.doc_tabs.setCurrentWidget(self.view)
        show = getattr(window, "_show_docs", None)
        if callable(show):
            show()
        return self.view


def install_my_tasks(window: Any, toolbar: Any = None) -> MyTasks:
    """Add the 我的任务 button (with the count of open items) to the toolbar and the view menu."""
    tasks = MyTasks(window)
    if toolbar is not None:
        toolbar.addAction(tasks.action)
    window.view_menu.addAction(tasks.menu_action)
    return tasks
