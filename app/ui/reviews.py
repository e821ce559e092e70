"""The duplicate-review view for supervisors: the platform's possible duplicates (same name and
birth date, same pinyin, ...) with 是同一人 Same / 不是 Different buttons, and, behind a toggle,
the pairs a grid worker told apart (PROTOCOL.md §9: a worker's "different" is input, not the last
word), where "same" overrules the worker and merges, "different" confirms.

Why online only: the review list lives on the platform (it compares every device's records);
the decision is applied there (a "same" merges the newer record into the older one) and the
devices learn it through the next pull as an alias. The client is any object with
``reviews(state)`` and ``decide_review(id, decision)`` (``sync.client.Client``, logged in).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core.display import local_time
from app.core.messages import Catalog
from app.core.reviewtext import reason_text
from app.ui.i18n import tr, without_mnemonic

_TEXT = {
    "title": ("重复审核", "Duplicate review"),
    "record": ("记录", "Record"),
    "other": ("可能重复于", "Possible duplicate of"),
    "reason": ("原因", "Reason"),
    "grid": ("网格", "Grid"),
    "same": ("是同一人/同一处", "Same"),
    "different": ("不是", "Not the same"),
    "reload": ("刷新", "Reload"),
    "failed": ("操作失败：{reason}", "Failed: {reason}"),
    "count": ("待审核 {n} 条", "{n} waiting"),
    "by_worker": ("网格员判为不是同一人", "Told apart by workers"),
    "decided": ("网格员判定", "Worker's answer"),
    "same_by_worker": ("是同一人（合并）", "Same (merge)"),
    "different_by_worker": ("确认不是", "Confirm not the same"),
    "count_by_worker": ("网格员判为不是同一人 {n} 条", "{n} told apart by workers"),
    "confirm_same": (
        "把“{a}”和“{b}”合并为一条记录？合并后不能撤销。",
        "Merge “{a}” and “{b}” into one record? A merge cannot be undone.",
    ),
}
# the platform's list states (PROTOCOL.md §9) the toggle shows
OPEN, BY_WORKER = "open", "by_worker"


def _grids(item: Any) -> str:
    """The record's grid; for a transfer claim where the person comes from: "B → A"."""
    if getattr(item, "kind", "duplicate") == "transfer" and item.other_grid:
        return f"{item.other_grid} → {item.grid or ''}"
    return item.grid or ""


_T = Catalog(_TEXT)


def _decided(item: Any) -> str:
    """Who told the pair apart and when (this machine's time, to the minute)."""
    at = local_time(getattr(item, "decided_at", None) or "", seconds=False)
    return " · ".join(v for v in (getattr(item, "decided_by", None) or "", at) if v)


class ReviewView(QWidget):
    """``ReviewView(client, lang)``: ``reload()``, ``decide(row, "same"|"different")``,
    ``show_state("open"|"by_worker")`` (the toggle: open items, or those workers told apart)."""

    def __init__(self, client: Any, lang: str = "zh", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("reviewView")
        self.client, self.lang = client, lang
        self.items: list[Any] = []
        self.state = OPEN
        layout = QVBoxLayout(self)
        self.status = QLabel(self)
        layout.addWidget(self.status)
        self.table = QTableWidget(0, 5, self)
        self.table.setObjectName("reviewTable")
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setColumnHidden(4, True)  # who told the pair apart: the toggle's list only
        layout.addWidget(self.table, 1)
        row = QHBoxLayout()
        self.buttons: dict[str, QPushButton] = {}
        for key in ("same", "different", "by_worker", "reload"):
            button = self.buttons[key] = QPushButton(self)
            if key == "by_worker":
                row.addStretch(1)
                button.setObjectName("review_by_worker")
                button.setCheckable(True)
                button.toggled.connect(lambda on: self.show_state(BY_WORKER if on else OPEN))
            elif key == "reload":
                button.clicked.connect(lambda _c=False: self.reload())
            else:
                button.setObjectName(f"review_{key}")
                button.clicked.connect(
                    lambda _c=False, d=key: self.ask_decide(self.table.currentRow(), d)
                )
            row.addWidget(button)
        layout.addLayout(row)
        self._said: tuple[str, dict[str, Any]] | None = None  # the status line, to say again
        self.confirm_same: Callable[[str], bool] = self._ask  # tests answer for the person
        self.set_lang(lang)

    def set_lang(self, lang: str) -> None:
        """Switch zh/en at runtime: headers, buttons, the rows' reasons and the status line."""
        self.lang = lang
        self.table.setHorizontalHeaderLabels(
            [_T.text(k, lang) for k in ("record", "other", "reason", "grid", "decided")]
        )
        for key, button in self.buttons.items():
            worded = f"{key}_by_worker" if self.state == BY_WORKER else key
            button.setText(_T.text(worded if worded in _TEXT else key, lang))
        self._fill()
        if self._said is not None:
            self._say(*self._said)

    def _say(self, key: str, values: dict[str, Any]) -> None:
        """The status line in the UI language (a failure's reason is asked of its error)."""
        self._said = (key, values)
        shown = {k: v.reason(self.lang) if hasattr(v, "reason") else v for k, v in values.items()}
        self.status.setText(_T.text(key, self.lang, **shown))

    def show_state(self, state: str) -> bool:
        """Show the open items or the pairs workers told apart (``BY_WORKER``), fetched anew."""
        self.state = state
        toggle = self.buttons["by_worker"]
        if toggle.isChecked() != (state == BY_WORKER):
            toggle.blockSignals(True)
            toggle.setChecked(state == BY_WORKER)
            toggle.blockSignals(False)
        self.table.setColumnHidden(4, state != BY_WORKER)
        self.items = []
        self.set_lang(self.lang)  # the buttons say "merge" / "confirm" there
        return self.reload()

    def reload(self) -> bool:
        """Fetch the shown list; on failure show the client's reason."""
        from sync.client import SyncError

        try:
            self.items = list(self.client.reviews(self.state).reviews)
        except SyncError as exc:
            self._say("failed", {"reason": exc})
            return False
        self._fill()
        self._say("count_by_worker" if self.state == BY_WORKER else "count", {"n": len(self.items)})
        return True

    def _fill(self) -> None:
        self.table.setRowCount(len(self.items))
        for row, item in enumerate(self.items):
            cells = (
                item.record_title or item.record_id,
                item.other_title or item.other_id,
                reason_text(item.reason, self.lang),
                _grids(item),
                _decided(item) if self.state == BY_WORKER else "",
            )
            for column, value in enumerate(cells):
                self.table.setItem(row, column, QTableWidgetItem(value))

    def ask_decide(self, row: int, decision: str) -> Any:
        """The buttons' way: a merge ("same") cannot be undone, so the person confirms it
        first, naming both records; "different" goes at once."""
        if not 0 <= row < len(self.items):
            return None
        item = self.items[row]
        names = {"a": item.record_title or item.record_id, "b": item.other_title or item.other_id}
        if decision == "same" and not self.confirm_same(
            _T.text("confirm_same", self.lang, **names)
        ):
            return None
        return self.decide(row, decision)

    def _ask(self, question: str) -> bool:
        from PySide6.QtWidgets import QMessageBox

        buttons = QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No
        answer = QMessageBox.question(self, self.window().windowTitle(), question, buttons)
        return answer == QMessageBox.StandardButton.Yes

    def decide(self, row: int, decision: str) -> Any:
        """Send the decision for a row; reload; returns the outcome (None on failure). A
        refused decision (another supervisor decided first: 409) reloads the list too, so it
        shows what is still to decide, and says why."""
        from sync.client import SyncError

        if not 0 <= row < len(self.items):
            return None
        try:
            outcome = self.client.decide_review(self.items[row].id, decision)
        except SyncError as exc:
            self.reload()
            self._say("failed", {"reason": exc})
            return None
        self.reload()
        return outcome


__all__ = ["BY_WORKER", "OPEN", "ReviewView", "reason_text"]


def install_reviews(window: Any, menu: Any = None) -> Any:
    """A "重复审核 Duplicate review" action for supervisors: log in (server and user as for
    sync), then open the platform's review list in a document tab.

    ``action.ask`` returns Credentials or None (a dialog by default; tests replace it).
    """
    from PySide6.QtGui import QAction
    from PySide6.QtWidgets import QMessageBox

    from app.ui.syncui import SyncDialog

    def title(lang: str) -> str:
        """The tab's title: the menu entry's words (the window names the action itself)."""
        return without_mnemonic(tr("main.act.reviews", lang)).rstrip("…")

    action = QAction(title(str(window.lang)) + "…", window)
    action.setObjectName("reviewsAction")
    (menu or window.menuBar()).addAction(action)

    def ask() -> Any:
        dialog = SyncDialog(window.store, window.lang, window)
        if dialog.exec() != SyncDialog.DialogCode.Accepted:
            return None
        dialog.keep()
        return dialog.credentials()

    def open_view() -> ReviewView | None:
        from sync.client import Client, Retry, SyncError

        creds = action.ask()
        if creds is None:
            return None
        client = Client(creds.server, window.store.device_id, retry=Retry(attempts=2))
        try:
            client.info()
            client.login(creds.user, creds.password)
        except SyncError as exc:
            client.close()
            QMessageBox.warning(window, action.text(), exc.reason(window.lang))
            return None
        view = ReviewView(client, window.lang, window.doc_tabs)
        view.reload()
        window.doc_tabs.addTab(view, title(window.lang))
        window._apply_row_heights()  # the window's row height (touch mode: rows a finger hits)
        window.doc_tabs.setCurrentWidget(view)
        show = getattr(window, "_show_docs", None)
        if callable(show):
            show()
        return view

    def relabel(lang: str) -> None:
        """The window's language switched: the action, the open views and their tabs follow."""
        tabs = window.doc_tabs
        for view in tabs.findChildren(ReviewView):
            view.set_lang(lang)
            if tabs.indexOf(view) >= 0:
                tabs.setTabText(tabs.indexOf(view), title(lang))

    window.languageChanged.connect(relabel)
    action.ask = ask  # type: ignore[attr-defined]
    action.open_view = open_view  # type: ignore[attr-defined]
    action.triggered.connect(lambda _c=False: open_view())
    return action
