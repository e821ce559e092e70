"""Tab totals and the status bar of the main window, counted in a background task."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QLabel

from app.core.store import browse
from app.core.store.browse import Filters, Scope
from app.ui import tasks
from app.ui.i18n import tr
from app.ui.window.list_pane import FORM_TABS

__all__ = ["StatusCounts"]

COUNTS_DEBOUNCE_MS = 150


class StatusCounts:
    """The main window's part for counts: full index scans run off the UI thread, debounced
    and coalesced; results land in the tab titles and the status bar."""

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
