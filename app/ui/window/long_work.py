"""Settings and long work of the main window: import, export and demo data run as tasks
behind a progress dialog; their results come back here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFileDialog,
    QInputDialog,
    QMessageBox,
)

from app.ui import tasks
from app.ui.i18n import tr
from app.ui.settings import Settings, SettingsDialog, save_settings
from app.ui.window.list_pane import FORM_TABS

__all__ = ["LongWork"]


class LongWork:
    """The main window's part for the File menu's work: settings, import, export, demo data,
    about; any finished task rereads what may have changed."""

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
        self.refresh_tasks()  # type: ignore[attr-defined]  # RecordTabs
        self.recordsChanged.emit("")

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
