"""The right side of the main window: open records (editors) and the household view as
closable tabs, and reopening what a crash left unsaved."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QMessageBox,
    QWidget,
)

from app.ui.household import HouseholdView
from app.ui.i18n import tr

__all__ = ["RecordTabs"]


class RecordTabs:
    """The main window's part for document tabs: opening, creating, titling and closing
    record editors and the household view, and telling open editors of saves elsewhere."""

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
        from app.ui.editor.void import install_void

        install_void(editor, self.record_changed)  # 作废…: leaves the lists, keeps history
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
        self.refresh_tasks()
        self.recordsChanged.emit(record_id)

    def refresh_tasks(self) -> None:
        """A save may have done a task item (``Tasks.after_save``): the 我的任务 count and view."""
        my_tasks = getattr(self, "my_tasks", None)
        if my_tasks is not None:
            my_tasks.refresh()

    def check_open_editors(self, record_id: str | None = None) -> None:
        """Open editors (of ``record_id``, or all) read their record again and merge what
        changed elsewhere (``RecordEditor.check_stored``); every open editor's duplicate
        banner asks again (``recheck_duplicates``)."""
        for editor, rid in list(self._editors.items()):
            if rid is not None and (record_id is None or rid == record_id):
                editor.check_stored()  # type: ignore[attr-defined]
                self._editors[editor] = editor.record_id  # type: ignore[attr-defined]  # merged by a sync: its new id
        for editor in list(self._editors):  # a banner names only what is registered now
            editor.recheck_duplicates()  # type: ignore[attr-defined]

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
