"""The record editor: any form, built from its form file.

What it promises a grid worker:

* nothing typed is lost: every edit is autosaved (debounced, and at once when a field is left
  or the editor closes) into the store's autosave table, a draft saves even with errors, and a
  killed app reopens the form with what was typed (``RecordEditor.restore``);
* conditions show and hide fields and blocks live, re-evaluating only the fields whose
  ``show_when`` / ``required_when`` read the field that changed;
* messages appear under the field they concern, as it is typed (ID numbers, credit codes once
  complete) or when it is left; "complete" checks everything and jumps to the first problem;
* the duplicate guard tells at once when a key (ID number, credit code, house code) is already
  registered or a person may be, and a new record cannot be completed before the worker has
  answered "same person?" (the answer is recorded).

The editor knows field *types* and form *roles*, never field names.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import (
    QCloseEvent,
    QColor,
    QKeySequence,
    QPainter,
    QPaintEvent,
    QPalette,
    QShortcut,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core import dedup, ids, rules
from app.core.dedup import Candidate, DuplicateDecision
from app.core.display import display_value, status_text
from app.core.forms import Field, Form, conditions
from app.core.records import DELETED_KEY, Record, clean, is_empty
from app.core.rules import Issue
from app.core.store import STATUS_FIELD, Store
from app.ui.editor_merge import (
    MINE,
    ConflictPanel,
    StoredMerge,
    local_changes,
    merge_stored,
    record_state,
    same_state,
)
from app.ui.fields import FieldWidget, ReferenceField, make_field_widget
from app.ui.i18n import STRINGS, language, tr

__all__ = ["CloseChoice", "RecordEditor", "ask_close"]


class CloseChoice(StrEnum):
    """The answer to "unsaved changes": 保存草稿 / 放弃 / 取消 (tests may answer with the word)."""

    SAVE = "save"
    DISCARD = "discard"
    CANCEL = "cancel"


_MAX_FUZZY_SHOWN = 3
AUTOSAVE_BASE = "_autosave_base"  # autosave key: the stored state the typing started from
_LABEL_ALIGN = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
_LABEL_POLICY_H, _LABEL_POLICY_V = QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed
_REQUIRED_COLOR = "#c62828"
_BANNER_STYLES = {
    "exact": "QFrame#dupBanner { background: #fdecea; border: 2px solid #c62828; border-radius: 4px; }",
    "fuzzy": "QFrame#dupBanner { background: #fff8e1; border: 2px solid #f9a825; border-radius: 4px; }",
}


def ask_close(editor: RecordEditor) -> CloseChoice:
    """The default "unsaved changes" question: 保存草稿 / 放弃 / 取消."""
    lang = editor.lang
    box = QMessageBox(editor)
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle(tr("confirm_close_title", lang))
    box.setText(tr("confirm_close_text", lang))
    save = box.addButton(tr("save_draft", lang), QMessageBox.ButtonRole.AcceptRole)
    discard = box.addButton(tr("discard", lang), QMessageBox.ButtonRole.DestructiveRole)
    cancel = box.addButton(tr("cancel", lang), QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(save)
    box.setEscapeButton(cancel)
    box.exec()
    clicked = box.clickedButton()
    if clicked is save:
        return CloseChoice.SAVE
    return CloseChoice.DISCARD if clicked is discard else CloseChoice.CANCEL


class _EditorDialog(QDialog):
    """A dialog around a nested editor: closing the window goes through the editor's question."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.editor: RecordEditor | None = None

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt API)
        if (
            self.editor is not None
            and not self.editor.is_closed()
            and not self.editor.request_close()
        ):
            event.ignore()
            return
        super().closeEvent(event)

    def reject(self) -> None:
        if self.editor is not None and not self.editor.is_closed():
            self.editor.request_close()  # its closed() signal accepts the dialog
            return
        super().reject()


class RecordEditor(QWidget):
    """Edit one record of any form.

    Signals: ``saved(record_id)`` after every save (draft or complete), ``completed(record_id)``
    after a successful Complete, ``openRecordRequested(record_id)`` when the worker chooses to
    open an existing record from the duplicate banner, ``closed()`` when the editor closes.
    """

    saved = Signal(str)
    completed = Signal(str)
    openRecordRequested = Signal(str)
    closed = Signal()

    AUTOSAVE_MS = 500
    DEDUP_MS = 150

    def __init__(
        self,
        store: Store,
        form_id: str,
        record_id: str | None = None,
        *,
        lang: str = "zh",
        author: str = "",
        prefill: Mapping[str, Any] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.store = store
        self.formset = store.formset
        self.form: Form = self.formset.form(form_id)
        self.lang, self.author = lang, author
        self._record: Record | None = store.get(record_id) if record_id else None
        if record_id and self._record is None:
            raise KeyError(record_id)
        self.record_id: str | None = self._record.id if self._record else None
        self.slot: str = self.record_id or ids.uuid7()  # a new record is saved under this id
        self.confirm_close: Callable[[RecordEditor], CloseChoice] = ask_close
        self.nested_editor: RecordEditor | None = None

        self._widgets: dict[str, FieldWidget] = {}
        self._labels: dict[str, QLabel] = {}
        self._boxes: dict[str, QGroupBox] = {}
        self._form_layouts: dict[str, QFormLayout] = {}
        self._order = list(self.form.fields)
        self._visible: dict[str, bool] = {}
        self._required: dict[str, bool] = {}
        self._values: dict[str, Any] = {}
        self._shown: dict[str, list[Issue]] = {}
        self._touched: set[str] = set()
        self._show_all = False
        self._candidates: list[Candidate] = []
        self._decided: dict[str, str] = {}
        self._pending_decisions: list[tuple[str, str]] = []
        self._banner_buttons: dict[tuple[str, str], QPushButton] = {}
        self._banner_key: tuple[object, ...] = ((), "", None)
        self._loading = True
        self._closing = False
        self._closed = False
        self._polygons: dict[str, list[tuple[float, float]]] | None = None  # grid boundaries
        self._focused_once = False
        self._autosaved = False
        self._extra: dict[str, Any] = {}
        self._button_texts: list[tuple[QPushButton, str]] = []

        self._dependents = _dependents(self.form)
        self._dedup_fields = _dedup_fields(self.form)
        self._build()

        if self._record is not None:
            initial = dict(self._record.data)
            self._extra = {k: v for k, v in initial.items() if k not in self.form.fields}
        else:
            initial = rules.apply_defaults(self.form, {})
        if prefill and self._record is None:
            initial.update(prefill)
        self._load(initial)
        self._baseline = self.values()
        # The stored state the values started from (None: not saved yet), and the fields
        # both the person and someone elsewhere changed, until the person chooses.
        self._stored: dict[str, Any] | None = (
            record_state(self._record) if self._record is not None else None
        )
        self._conflicts: dict[str, dict[str, Any]] = {}
        if prefill and self._record is not None:
            self._load({**initial, **prefill})
        self._loading = False

        self._autosave_timer = _single_shot(self, self.AUTOSAVE_MS, self.autosave_now)
        self._dedup_timer = _single_shot(self, self.DEDUP_MS, self.run_duplicate_check)
        self._shortcuts()
        language().changed.connect(self.set_lang)
        self._update_header()

    # ------------------------------------------------------------------ public API

    def values(self) -> dict[str, Any]:
        """The current values, coerced as they would be stored (wrong text kept as text)."""
        return clean({**self._extra, **{k: v for k, v in self._values.items() if v is not None}})

    def raw_values(self) -> dict[str, Any]:
        """What each widget holds, as typed (the autosave keeps this)."""
        raw = {fid: w.value() for fid, w in self._widgets.items()}
        return {k: v for k, v in raw.items() if not is_empty(v)}

    def set_value(self, field_id: str, raw: object) -> None:
        """Put ``raw`` into a field as if it had been typed (prefill, tests)."""
        self._widgets[field_id].set_value(raw)

    def widget(self, field_id: str) -> FieldWidget:
        """The widget of a field (the main window and tests reach fields through this)."""
        return self._widgets[field_id]

    def message(self, field_id: str) -> str:
        """The message shown under a field ('' when none)."""
        return self._widgets[field_id].message()

    def is_field_visible(self, field_id: str) -> bool:
        """Whether the field's conditions currently show it."""
        return self._visible[field_id]

    def is_field_required(self, field_id: str) -> bool:
        """Whether the field is currently marked required (*)."""
        return self._visible[field_id] and self._required[field_id]

    def is_dirty(self) -> bool:
        """True when the values differ from what was last saved (or opened)."""
        return self.values() != self._baseline

    def is_closed(self) -> bool:
        return self._closed

    def issues(self) -> list[Issue]:
        """Everything that stops the current values from being complete."""
        return rules.validate(self.form, self.values(), self.formset, exists=self._exists)

    def duplicate_candidates(self) -> list[Candidate]:
        """The last duplicate-guard result (exact matches first)."""
        return list(self._candidates)

    def banner_button(self, action: str, other_id: str) -> QPushButton:
        """A duplicate-banner button: action 'open', 'different' or 'same' for a candidate."""
        return self._banner_buttons[(action, other_id)]

    def save_draft(self) -> str | None:
        """Save as a draft, whatever the errors; returns the record id.

        None only while fields changed both here and elsewhere wait for the person's choice
        (the values stay in the form and in the autosave)."""
        record = self._save("draft")
        return record.id if record is not None else None

    def complete(self) -> bool:
        """Validate; when clean (and duplicates answered) save as complete. False otherwise."""
        self._commit_all()
        self.check_stored()  # validate what will be saved: the values from elsewhere too
        self._show_all = True
        issues = self._refresh_messages()
        if issues:
            first = min((i.field for i in issues), key=self._position)
            self._focus_field(first)
            self._status(tr("complete_blocked", self.lang, n=len(issues)), error=True)
            return False
        if self.record_id is None and self._undecided(self.run_duplicate_check()):
            self._decide_first.setVisible(True)
            self._banner_focus()
            self._status(tr("dup_decide_first", self.lang), error=True)
            return False
        record = self._save("complete")
        if record is None:
            return False
        self._status(tr("completed", self.lang))
        self.completed.emit(record.id)
        return True

    def request_close(self) -> bool:
        """Close, asking first when there are unsaved changes; False when the worker cancels."""
        if self._closed:
            return True
        self._commit_all()
        if self.is_dirty():
            choice = self.confirm_close(self)
            if choice == CloseChoice.CANCEL:
                return False
            if choice == CloseChoice.SAVE and self.save_draft() is None:
                return False  # a conflict to choose first: the editor stays open
        self._closing = True
        self.close()
        return True

    def autosave_now(self) -> None:
        """Write the typed values to the autosave slot (or clear it when nothing is unsaved)."""
        self._autosave_timer.stop()
        if self._closed:
            return
        if self.is_dirty():
            data = self.raw_values()
            if self._stored is not None:  # what the typing started from, for ``restore``
                data[AUTOSAVE_BASE] = self._stored
            self.store.autosave_put(self.slot, self.form.id, self.record_id, data)
            self._autosaved = True
        elif self._autosaved:
            self.store.autosave_clear(self.slot)
            self._autosaved = False

    def run_duplicate_check(self) -> list[Candidate]:
        """Ask the duplicate guard about the current values and update the banner."""
        self._dedup_timer.stop()
        self._candidates = dedup.check(
            self.store, self.form.id, self.values(), exclude_id=self.record_id
        )
        self._render_banner()
        return list(self._candidates)

    def decide_duplicate(self, other_id: str, decision: DuplicateDecision | str) -> None:
        """Record the worker's answer about a candidate ('same', 'different', 'open_existing')."""
        self._decided[other_id] = decision
        if self.record_id is not None:
            self.store.decide_duplicate(self.record_id, other_id, decision, self.author)
        elif decision in (DuplicateDecision.SAME, DuplicateDecision.OPEN_EXISTING):
            # The draft may never be saved: keep the audit trail under the id it would get.
            self.store.decide_duplicate(self.slot, other_id, decision, self.author)
        else:
            self._pending_decisions.append((other_id, decision))
        self._render_banner()

    def open_existing(
        self, other_id: str, decision: DuplicateDecision | str = DuplicateDecision.OPEN_EXISTING
    ) -> None:
        """Keep what was typed (autosave) and ask the host to open ``other_id``."""
        self.decide_duplicate(other_id, decision)
        self.autosave_now()
        self.openRecordRequested.emit(other_id)

    @property
    def history_panel(self) -> QTreeWidget:
        """The history list (created on first use)."""
        if self._history_panel is None:
            panel = QTreeWidget(self)
            panel.setColumnCount(5)
            panel.setRootIsDecorated(False)
            panel.setVisible(False)
            self._root.insertWidget(self._root.count() - 1, panel)
            self._history_panel = panel
        return self._history_panel

    def _history_shown(self) -> bool:
        return self._history_panel is not None and self._history_panel.isVisible()

    def show_history(self, visible: bool = True) -> None:
        """Show (and refresh) or hide the history panel."""
        self.history_panel.setVisible(visible)
        self.history_button.setChecked(visible)
        if visible:
            self.refresh_history()

    def refresh_history(self) -> None:
        """List who changed what and when, newest first, codes shown as their labels."""
        panel = self.history_panel
        panel.clear()
        panel.setHeaderLabels(
            [
                tr(k, self.lang)
                for k in (
                    "history_when",
                    "history_who",
                    "history_field",
                    "history_old",
                    "history_new",
                )
            ]
        )
        entries = self.store.history(self.record_id) if self.record_id else []
        if not entries:
            QTreeWidgetItem(panel, [tr("history_none", self.lang)])
            return
        for entry in reversed(entries):
            when, who = _local_time(entry.at), entry.author
            changes = entry.changes or {}
            if not changes:
                kind = tr(
                    "history_deleted" if entry.kind == "delete" else "history_created", self.lang
                )
                QTreeWidgetItem(panel, [when, who, kind, "", ""])
            for fid, (old, new) in changes.items():
                QTreeWidgetItem(
                    panel,
                    [
                        when,
                        who,
                        self._field_label(fid),
                        self.format_value(fid, old),
                        self.format_value(fid, new),
                    ],
                )
        for column in range(5):
            panel.resizeColumnToContents(column)

    def format_value(self, field_id: str, value: object) -> str:
        """A stored value as a person reads it (code labels, 是/否, referenced titles)."""
        return display_value(
            self.formset,
            self.form.fields.get(field_id),
            value,
            self.lang,
            field_id=field_id,
            masked=False,
            ref_title=self._ref_title,
        )

    def _ref_title(self, record_id: str) -> str:
        record = self.store.get(record_id)
        return record.title if record is not None and record.title else record_id

    def create_referenced(self, field_id: str) -> QDialog:
        """Open a nested editor for a new record of the reference's target form; when it is
        saved, the reference points to it. Returns the (non-blocking) dialog."""
        fld = self.form.fields[field_id]
        target = self.formset.form(fld.target or "")
        prefill: dict[str, Any] = {}
        own_grid, their_grid = self.form.roles.grid, target.roles.grid
        if own_grid and their_grid and not is_empty(self._values.get(own_grid)):
            prefill[their_grid] = self._values[own_grid]  # same grid: one less thing to type
        dialog = _EditorDialog(self)
        dialog.setWindowTitle(tr("create_title", self.lang, form=target.title.get(self.lang)))
        nested = RecordEditor(
            self.store,
            target.id,
            lang=self.lang,
            author=self.author,
            prefill=prefill,
            parent=dialog,
        )
        nested.confirm_close = self.confirm_close
        dialog.editor = nested
        QVBoxLayout(dialog).addWidget(nested)
        nested.saved.connect(functools.partial(self.set_value, field_id))
        nested.closed.connect(dialog.accept)
        dialog.resize(720, 640)
        self.nested_editor = nested
        dialog.open()
        return dialog

    def focus_first(self) -> None:
        """Put the cursor in the first visible field."""
        for fid in self._order:
            if self._visible[fid]:
                self._focus_field(fid)
                return

    def set_lang(self, lang: str) -> None:
        """Switch the editor's language at runtime."""
        self.lang = lang
        for section in self.form.sections:
            self._boxes[section.id].setTitle(section.title.get(lang))
        for fid, widget in self._widgets.items():
            widget.set_lang(lang)
            self._update_label(fid)
        for button, key in self._button_texts:
            button.setText(tr(key, lang))
            button.setToolTip(tr(f"{key}_tip", lang) if f"{key}_tip" in STRINGS else "")
        self._refresh_messages()
        self._render_banner()
        self._render_conflicts()
        self._update_header()
        if self._history_shown():
            self.refresh_history()

    @classmethod
    def restore(
        cls,
        store: Store,
        slot_row: Sequence[Any] | Mapping[str, Any],
        *,
        lang: str = "zh",
        author: str = "",
        parent: QWidget | None = None,
    ) -> RecordEditor:
        """Reopen an autosaved editor (a row of ``store.autosaves()``) with what was typed."""
        if isinstance(slot_row, Mapping):
            slot, form_id = slot_row["slot"], slot_row["form"]
            record_id, data = slot_row.get("record_id"), slot_row["data"]
        else:
            slot, form_id, record_id, data = slot_row[0], slot_row[1], slot_row[2], slot_row[3]
        if record_id and store.get(record_id) is None:
            record_id = None  # the record is gone: what was typed becomes a new record
        editor = cls(store, form_id, record_id, lang=lang, author=author, parent=parent)
        editor.slot = slot
        editor._autosaved = True
        base = data.get(AUTOSAVE_BASE)
        if isinstance(base, dict) and editor._stored is not None:
            editor._start_from(base)  # the record as it was when the typing began
        editor._loading = True
        editor._load({fid: data.get(fid) for fid in editor.form.fields}, clear=True)
        editor._loading = False
        editor._touched.update(
            k for k, v in data.items() if not is_empty(v) and k in editor._widgets
        )
        editor.check_stored()  # saved since (a sync, another tab): rebase the typing onto it
        editor._refresh_messages()
        if any(not is_empty(data.get(f)) for f in editor._dedup_fields):
            editor.run_duplicate_check()
        editor._update_header()
        return editor

    # ------------------------------------------------------------------ building

    def _build(self) -> None:
        root = QVBoxLayout(self)
        root.setContentsMargins(8, 8, 8, 8)
        self.header = QLabel(self)
        self.header.setObjectName("editorHeader")
        font = self.header.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.2)
        self.header.setFont(font)
        root.addWidget(self.header)

        self.banner = QFrame(self)
        self.banner.setObjectName("dupBanner")
        self.banner.setVisible(False)
        self._banner_layout = QVBoxLayout(self.banner)
        self._decide_first = QLabel(self.banner)
        self._decide_first.setVisible(False)
        root.addWidget(self.banner)

        self.conflict_panel = ConflictPanel(self)
        self.conflict_panel.chosen.connect(self.choose_conflict)
        root.addWidget(self.conflict_panel)

        self.scroll = QScrollArea(self)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        content = QWidget(self.scroll)
        column = QVBoxLayout(content)
        for section in self.form.sections:
            box = QGroupBox(section.title.get(self.lang), content)
            layout = QFormLayout(box)
            layout.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
            # Labels stay level with the input when a message line makes the row taller.
            layout.setLabelAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
            for fld in section.fields:
                self._add_field(fld, box, layout)
            self._boxes[section.id] = box
            self._form_layouts[section.id] = layout
            column.addWidget(box)
        column.addStretch(1)
        self.scroll.setWidget(content)
        root.addWidget(self.scroll, 1)

        self._history_panel: QTreeWidget | None = None  # made when first shown
        self._root = root

        bar = QHBoxLayout()
        self.save_button = self._button("save_draft", self.save_draft)
        self.complete_button = self._button("complete", self.complete)
        self.history_button = self._button(
            "history", lambda: self.show_history(not self._history_shown())
        )
        self.history_button.setCheckable(True)
        self.close_button = self._button("close", self.request_close)
        self.status_label = QLabel(self)
        for widget in (self.save_button, self.complete_button, self.history_button):
            bar.addWidget(widget)
        bar.addWidget(self.status_label, 1)
        bar.addWidget(self.close_button)
        root.addLayout(bar)

    def _button(self, key: str, slot: Callable[[], object]) -> QPushButton:
        button = QPushButton(tr(key, self.lang), self)
        button.setAutoDefault(False)
        if f"{key}_tip" in STRINGS:
            button.setToolTip(tr(f"{key}_tip", self.lang))
        button.clicked.connect(lambda _checked=False: slot())
        self._button_texts.append((button, key))
        return button

    def _add_field(self, fld: Field, box: QGroupBox, layout: QFormLayout) -> None:
        widget = make_field_widget(fld, self.formset, self.lang, store=self.store, parent=box)
        can_be_required = fld.required or fld.required_when is not None
        label = _FieldLabel(box) if can_be_required else QLabel(box)
        label.setTextFormat(Qt.TextFormat.PlainText)
        label.setObjectName("fieldLabel")
        label.setMinimumHeight(_input_height())
        label.setSizePolicy(_LABEL_POLICY_H, _LABEL_POLICY_V)
        label.setAlignment(_LABEL_ALIGN)
        self._widgets[fld.id] = widget
        self._labels[fld.id] = label
        self._visible[fld.id] = True
        self._required[fld.id] = bool(fld.required)
        self._update_label(fld.id)
        layout.addRow(label, widget)
        widget.changed.connect(functools.partial(self._field_changed, fld.id))
        widget.listener = self._field_event  # committed / nextRequested
        if isinstance(widget, ReferenceField):
            widget.createRequested.connect(lambda _target, fid=fld.id: self.create_referenced(fid))

    def _shortcuts(self) -> None:
        context = Qt.ShortcutContext.WidgetWithChildrenShortcut
        bindings: list[tuple[str, Callable[[], object]]] = [
            ("Ctrl+S", self.save_draft),
            ("Ctrl+Return", self.complete),
            ("Ctrl+Enter", self.complete),
            ("Escape", self.request_close),
        ]
        self._shortcut_objects = []
        for keys, slot in bindings:
            shortcut = QShortcut(QKeySequence(keys), self)
            shortcut.setContext(context)
            shortcut.activated.connect(lambda s=slot: s())
            self._shortcut_objects.append(shortcut)

    # ------------------------------------------------------------------ values and conditions

    def _load(self, data: Mapping[str, Any], clear: bool = False) -> None:
        """Show ``data`` in the widgets (``clear``: empty the others), then evaluate once."""
        was_loading, self._loading = self._loading, True
        for fid, widget in self._widgets.items():
            if clear or not is_empty(data.get(fid)):
                widget.set_value(data.get(fid))
        self._loading = was_loading
        for fid, widget in self._widgets.items():
            self._values[fid] = rules.coerce(self.form.fields[fid], widget.value(), self.formset)
        self._apply_conditions(self._order)
        if self._touched or self._show_all or clear:
            self._refresh_messages()

    def _field_changed(self, field_id: str) -> None:
        if self._loading:
            return
        fld = self.form.fields[field_id]
        widget = self._widgets[field_id]
        self._values[field_id] = rules.coerce(fld, widget.value(), self.formset)
        self._apply_conditions(self._dependents.get(field_id, ()))
        if fld.type == "id_number" and fld.derives and widget.live_check_ready():
            self._derive(fld)
        self._refresh_messages(typing=field_id)
        if field_id in self._dedup_fields:
            self._dedup_timer.start()
        self._autosave_timer.start()
        self._update_header()

    def _field_event(self, widget: FieldWidget, kind: str) -> None:
        if kind == "committed":
            self._field_left(widget.field.id)
        elif kind == "next":
            self._focus_next(widget.field.id)

    def _field_left(self, field_id: str) -> None:
        if self._loading or self._closed:
            return
        self._touched.add(field_id)
        self._refresh_messages()
        if self._autosave_timer.isActive():
            self.autosave_now()

    def _derive(self, fld: Field) -> None:
        """Fill birth date and gender from a valid ID number into empty fields."""
        derived = rules.derive_from_id(self.form, self._data())
        for target in fld.derives.values():
            if target not in self._widgets:
                continue
            if is_empty(self._values.get(target)) and not is_empty(derived.get(target)):
                self._widgets[target].set_value(derived[target])
            self._touched.add(target)  # a disagreement with the ID shows at once

    def _apply_conditions(self, field_ids: Iterable[str]) -> None:
        data = self._data()
        sections: set[str] = set()
        for fid in field_ids:
            fld = self.form.fields[fid]
            visible = rules.is_visible(fld, data)
            required = rules.is_required(fld, data)
            if visible != self._visible[fid]:
                self._visible[fid] = visible
                self._form_layouts[fld.section].setRowVisible(self._widgets[fid], visible)
                sections.add(fld.section)
            if required != self._required[fid]:
                self._required[fid] = required
                self._update_label(fid)
        for section in self.form.sections:
            if section.id in sections:
                shown = any(self._visible[f.id] for f in section.fields)
                self._boxes[section.id].setVisible(shown)

    def _data(self) -> dict[str, Any]:
        return {k: v for k, v in self._values.items() if v is not None}

    def _update_label(self, field_id: str) -> None:
        text = self.form.fields[field_id].label.get(self.lang)
        label = self._labels[field_id]
        required = self._required[field_id]
        if isinstance(label, _FieldLabel):
            label.set_label(text, required)
        else:
            label.setText(text)
        label.setToolTip(tr("required_mark_tip", self.lang) if required else "")

    # ------------------------------------------------------------------ messages

    def _refresh_messages(self, typing: str | None = None) -> list[Issue]:
        """Validate and show each field's messages where the worker has been (or everywhere
        after Complete); "required" only after Complete. Returns all issues."""
        issues = rules.validate(self.form, self._data(), self.formset, exists=self._exists)
        by_field: dict[str, list[Issue]] = {}
        for issue in issues + self._location_warnings():
            by_field.setdefault(issue.field, []).append(issue)
        for fid, widget in self._widgets.items():
            shown: list[Issue] = []
            if self._visible[fid] and (
                self._show_all
                or fid in self._touched
                or (fid == typing and widget.live_check_ready())
            ):
                shown = [i for i in by_field.get(fid, []) if i.code != "required" or self._show_all]
            self._shown[fid] = shown
            text = "\n".join(i.message(self.form, self.lang) for i in shown)
            widget.set_message(text, shown[0].severity if shown else "error")
        return issues

    def _location_warnings(self) -> list[Issue]:
        """Coordinates outside the record's grid polygon: a warning beside the field, never a
        blocker (GPS drifts in stairwells, and grid boundaries get redrawn)."""
        grid_field = self.form.roles.grid
        grid = self._values.get(grid_field) if grid_field else None
        polygon = self._grid_polygons().get(str(grid)) if grid else None
        if not polygon:
            return []
        from app.core import geo  # pyproj: loaded only for records with a grid boundary

        warnings = []
        for fld in self.form.fields.values():
            value = self._values.get(fld.id)
            if fld.type == "coordinates" and isinstance(value, dict) and "lon" in value:
                point = geo.LonLat(float(value["lon"]), float(value["lat"]))
                code = geo.check_in_grid(point, polygon)
                if code:
                    warnings.append(Issue(fld.id, code, severity="warning"))
        return warnings

    def _grid_polygons(self) -> dict[str, list[tuple[float, float]]]:
        if self._polygons is None:
            self._polygons = {g.code: g.polygon for g in self.store.grids() if g.polygon}
        return self._polygons

    def _exists(self, form_id: str, record_id: str) -> bool:
        record = self.store.get(record_id)
        return record is not None and not record.deleted and record.form == form_id

    def _status(self, text: str, error: bool = False) -> None:
        self.status_label.setStyleSheet(f"color: {_REQUIRED_COLOR};" if error else "")
        self.status_label.setText(text)

    # ------------------------------------------------------------------ focus and keys

    def _position(self, field_id: str) -> int:
        return self._order.index(field_id) if field_id in self._order else len(self._order)

    def _focus_field(self, field_id: str) -> None:
        widget = self._widgets[field_id]
        self.scroll.ensureWidgetVisible(widget)
        widget.focus_target().setFocus(Qt.FocusReason.OtherFocusReason)

    def _focus_next(self, field_id: str) -> None:
        for fid in self._order[self._position(field_id) + 1 :]:
            if self._visible[fid]:
                self._focus_field(fid)
                return
        self.complete_button.setFocus(Qt.FocusReason.TabFocusReason)

    def _commit_all(self) -> None:
        for widget in self._widgets.values():
            widget.commit()

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 (Qt API)
        super().showEvent(event)
        self.check_stored()  # back to this tab: what changed meanwhile comes in
        if not self._focused_once:
            self._focused_once = True
            QTimer.singleShot(0, self.focus_first)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt API)
        if self._closed:
            event.accept()
            return
        if not self._closing and not self.request_close():
            event.ignore()
            return
        self._closed = True
        self._autosave_timer.stop()
        self._dedup_timer.stop()
        # Saved, unchanged, or the worker chose "discard": nothing is left to restore.
        if self._autosaved or self.is_dirty():
            self.store.autosave_clear(self.slot)
        event.accept()
        self.closed.emit()

    # ------------------------------------------------------------------ saving

    def _save(self, status: str) -> Record | None:
        """Save the values; never blindly over a newer stored version: in one transaction the
        stored record is read again and rebased onto first (``check_stored``). None when
        fields changed on both sides wait for the person's choice."""
        self._commit_all()
        is_new = self.record_id is None
        with self.store.transaction():
            self.check_stored()
            if self._conflicts:
                self._status(tr("elsewhere_choose_first", self.lang), error=True)
                self.conflict_panel.focus_first()
                return None
            data = self.values()
            record = self.store.save(
                self.form.id,
                data,
                record_id=self.record_id or self.slot,
                status=status,
                author=self.author,
            )
        self._record, self.record_id = record, record.id
        self._stored = record_state(record)
        if is_new:
            for other, decision in self._pending_decisions:
                self.store.decide_duplicate(record.id, other, decision, self.author)
            self._pending_decisions.clear()
        self._autosave_timer.stop()
        self.store.autosave_clear(self.slot)
        self._autosaved = False
        self._baseline = data
        self._update_header()
        self._status(tr("saved_draft", self.lang))
        if self._history_shown():
            self.refresh_history()
        self.saved.emit(record.id)
        return record

    def _update_header(self) -> None:
        if not hasattr(self, "_baseline"):
            return
        parts = [
            self.form.title.get(self.lang),
            self.form.title_of(self.values()) or tr("new_record", self.lang),
        ]
        if self._record is not None:
            parts.append(status_text(self._record.status, self.lang))
        if self.is_dirty():
            parts.append(tr("unsaved", self.lang))
        self.header.setText(" · ".join(parts))

    def _field_label(self, field_id: str) -> str:
        if field_id == STATUS_FIELD:
            return tr("status_field", self.lang)
        fld = self.form.fields.get(field_id)
        return fld.label.get(self.lang) if fld else field_id

    # ------------------------------------------------------------------ changed elsewhere

    def check_stored(self) -> bool:
        """Learn of changes to this record saved elsewhere (household view, sync, another tab,
        a conflict resolved, another process) and take them in (``editor_merge``).

        Cheap when nothing changed (one read). True when a newer stored state came in."""
        if self.record_id is None or self._closed or not hasattr(self, "_stored"):
            return False
        record = self.store.get(self.record_id)
        if record is None:
            return False
        theirs = record_state(record)
        if self._stored is not None and same_state(theirs, self._stored):
            return False
        base = self._stored if self._stored is not None else theirs
        mine = local_changes(self._baseline, self.values())
        self._take_stored(record, theirs, merge_stored(base, mine, theirs), mine)
        return True

    def conflicts(self) -> dict[str, dict[str, Any]]:
        """Fields changed here and elsewhere, waiting for a choice: field -> {base, mine,
        theirs}."""
        return {k: dict(v) for k, v in self._conflicts.items()}

    def choose_conflict(self, field_id: str, side: str) -> None:
        """Keep the person's value (``mine``) or take the one from elsewhere (``theirs``)."""
        entry = self._conflicts.pop(field_id, None)
        if entry is None:
            return
        if side != MINE and field_id == DELETED_KEY:  # accept the deletion: nothing to keep
            self._conflicts.clear()
            self._load(self._baseline, clear=True)
            self._closing = True
            self.close()
            return
        if side != MINE and field_id in self._widgets:
            self._widgets[field_id].set_value(entry["theirs"])
        self._render_conflicts()
        self._update_header()

    def _start_from(self, base: dict[str, Any]) -> None:
        """Show an older stored state as the one the editor started from (crash restore)."""
        if same_state(base, self._stored or {}):
            return
        data = {k: v for k, v in base.items() if k not in (STATUS_FIELD, DELETED_KEY)}
        self._loading = True
        self._load({fid: data.get(fid) for fid in self.form.fields}, clear=True)
        self._loading = False
        self._extra = {k: v for k, v in data.items() if k not in self.form.fields}
        self._baseline = self.values()
        self._stored = base

    def _take_stored(
        self, record: Record, theirs: dict[str, Any], merged: StoredMerge, mine: dict[str, Any]
    ) -> None:
        """Show the fields that came in, keep the person's own, list the conflicts."""
        shown = {k: v for k, v in merged.incoming.items() if k in self._widgets}
        self._show_values(shown)
        self._extra = {k: v for k, v in record.data.items() if k not in self.form.fields}
        baseline = dict(self.values())
        for name in mine:
            baseline[name] = record.data.get(name)
        self._baseline = clean(baseline)
        self._record, self._stored = record, theirs
        self._conflicts.update(merged.conflicts)
        self._render_conflicts()
        self._update_header()
        if merged.deleted and not merged.conflicts:
            self._status(tr("elsewhere_deleted", self.lang), error=True)
        elif merged.incoming or merged.conflicts:
            self._status(tr("elsewhere_merged", self.lang, n=len(merged.incoming)))
        if self._history_shown():
            self.refresh_history()

    def _show_values(self, values: Mapping[str, Any]) -> None:
        """Put stored values into fields without counting them as typed."""
        if not values:
            return
        was_loading, self._loading = self._loading, True
        for fid, value in values.items():
            self._widgets[fid].set_value(value)
        self._loading = was_loading
        for fid in values:
            widget = self._widgets[fid]
            self._values[fid] = rules.coerce(self.form.fields[fid], widget.value(), self.formset)
        self._apply_conditions(self._order)
        self._refresh_messages()

    def _render_conflicts(self) -> None:
        self.conflict_panel.show_conflicts(
            self._conflicts, self._field_label, self.format_value, self.lang
        )

    # ------------------------------------------------------------------ duplicate banner

    def _undecided(self, candidates: Iterable[Candidate]) -> list[Candidate]:
        return [c for c in candidates if c.record_id not in self._decided]

    def _render_banner(self) -> None:
        open_items = self._undecided(self._candidates)
        key = (tuple((c.record_id, c.reason) for c in open_items), self.lang, self.record_id)
        if key == self._banner_key:
            return  # the same answer as last time: leave the buttons (and any focus) alone
        self._banner_key = key
        layout = self._banner_layout
        while layout.count():
            item = layout.takeAt(0)
            widget = item.widget()
            if widget is not None and widget is not self._decide_first:
                widget.deleteLater()
            elif item.layout() is not None:
                _delete_layout(item.layout())
        self._banner_buttons.clear()
        exact = [c for c in open_items if c.exact]
        fuzzy = [c for c in open_items if not c.exact][:_MAX_FUZZY_SHOWN]
        if not exact and not fuzzy:
            self._decide_first.setVisible(False)
            self.banner.setVisible(False)
            return
        self._decide_first.setText(tr("dup_decide_first", self.lang))
        self._decide_first.setStyleSheet(f"color: {_REQUIRED_COLOR}; font-weight: bold;")
        layout.addWidget(self._decide_first)
        dismiss = "dup_create_anyway" if self.record_id is None else "dup_ignore"
        for cand in exact[:1]:
            text = tr(
                "dup_exact",
                self.lang,
                label=self._key_label(),
                title=cand.title,
                grid=self._grid_of(cand),
            )
            self._banner_row(
                layout,
                text,
                cand,
                (("open", "dup_open_existing"), ("different", dismiss)),
            )
        if fuzzy:
            layout.addWidget(QLabel(tr("dup_fuzzy_head", self.lang), self.banner))
            for cand in fuzzy:
                text = tr(
                    "dup_fuzzy_item",
                    self.lang,
                    title=cand.title,
                    reason=cand.reason_text(self.lang),
                )
                self._banner_row(
                    layout, text, cand, (("same", "dup_same"), ("different", "dup_different"))
                )
        self.banner.setStyleSheet(_BANNER_STYLES["exact" if exact else "fuzzy"])
        self.banner.setVisible(True)

    def _banner_row(
        self, layout: QVBoxLayout, text: str, cand: Candidate, actions: Sequence[tuple[str, str]]
    ) -> None:
        row = QHBoxLayout()
        label = QLabel(text, self.banner)
        label.setWordWrap(True)
        row.addWidget(label, 1)
        for action, key in actions:
            button = QPushButton(tr(key, self.lang), self.banner)
            button.setAutoDefault(False)
            button.clicked.connect(functools.partial(self._banner_clicked, action, cand.record_id))
            self._banner_buttons[(action, cand.record_id)] = button
            row.addWidget(button)
        layout.addLayout(row)

    def _banner_clicked(self, action: str, other_id: str, _checked: bool = False) -> None:
        if action == "open":
            self.open_existing(other_id, "open_existing")
        elif action == "same":
            self.open_existing(other_id, "same")
        else:
            self.decide_duplicate(other_id, "different")

    def _banner_focus(self) -> None:
        if self._banner_buttons:
            next(iter(self._banner_buttons.values())).setFocus(Qt.FocusReason.OtherFocusReason)

    def _key_label(self) -> str:
        """The label of the natural key that is filled (e.g. 证件号码, 统一社会信用代码)."""
        data = self._data()
        for key in self.form.natural_keys:
            if all(not is_empty(data.get(f)) for f in key):
                return self.form.fields[key[-1]].label.get(self.lang)
        return (
            self.form.fields[self.form.natural_keys[0][-1]].label.get(self.lang)
            if self.form.natural_keys
            else ""
        )

    def _grid_of(self, cand: Candidate) -> str:
        record = self.store.get(cand.record_id)
        return (record.grid if record is not None else None) or tr("no_grid", self.lang)


# ---------------------------------------------------------------------- helpers


class _FieldLabel(QLabel):
    """A plain-text label that paints a red * after the text while its field is required.

    Rich-text labels ('<span style=color:red>*</span>') cost about ten times a plain one to
    build and lay out; with dozens per form that was the largest part of opening it."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self._required = False

    def set_label(self, text: str, required: bool) -> None:
        self._required = required
        self.setText(f"{text} *" if required else text)  # the * keeps its room in sizeHint

    def is_required(self) -> bool:
        return self._required

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt API)
        if not self._required:
            super().paintEvent(event)
            return
        painter = QPainter(self)
        metrics = self.fontMetrics()
        full = self.text()
        base = full[:-1]
        style = self.style()
        rect = style.itemTextRect(metrics, self.contentsRect(), self.alignment(), True, full)
        left = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
        style.drawItemText(
            painter,
            rect,
            left,
            self.palette(),
            self.isEnabled(),
            base,
            QPalette.ColorRole.WindowText,
        )
        star = rect.adjusted(metrics.horizontalAdvance(base), 0, 0, 0)
        painter.setPen(QColor(_REQUIRED_COLOR))
        painter.drawText(star, left, "*")
        painter.end()


@functools.cache
def _input_height() -> int:
    """The height of a line edit in the current style (labels are made as tall)."""
    probe = QLineEdit()
    height = probe.sizeHint().height()
    probe.deleteLater()
    return height


def _dependents(form: Form) -> dict[str, set[str]]:
    """field id -> the fields whose show_when / required_when read it."""
    out: dict[str, set[str]] = {}
    for fld in form.fields.values():
        for source in conditions.fields_of(fld.show_when) | conditions.fields_of(fld.required_when):
            out.setdefault(source, set()).add(fld.id)
    return out


def _dedup_fields(form: Form) -> set[str]:
    """Fields whose change can change the duplicate guard's answer (from the form's roles)."""
    fields = {f for key in form.natural_keys for f in key} | set(form.roles.name)
    fields |= {f for f in (form.roles.birth_date, form.roles.house) if f}
    return fields


def _single_shot(parent: QWidget, ms: int, slot: Callable[[], object]) -> QTimer:
    timer = QTimer(parent)
    timer.setSingleShot(True)
    timer.setInterval(ms)
    timer.timeout.connect(lambda: slot())
    return timer


def _delete_layout(layout: Any) -> None:
    while layout.count():
        item = layout.takeAt(0)
        if item.widget() is not None:
            item.widget().deleteLater()
        elif item.layout() is not None:
            _delete_layout(item.layout())


def _local_time(iso: str) -> str:
    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")
