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
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QKeyEvent, QShowEvent
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.core import ids, rules
from app.core.dedup import Candidate
from app.core.display import status_text
from app.core.forms import Field, Form
from app.core.records import Record, clean, is_empty
from app.core.rules import Issue
from app.core.store import Store
from app.ui.editor.autosave import AUTOSAVE_BASE, AutosaveSlot
from app.ui.editor.checks import FieldChecks
from app.ui.editor.dialogs import CloseChoice, ask_close, open_nested
from app.ui.editor.duplicate_banner import DuplicateBanner
from app.ui.editor.duplicates import DuplicateGuard, dedup_fields
from app.ui.editor.elsewhere import ChangedElsewhere
from app.ui.editor.field_label import REQUIRED_COLOR
from app.ui.editor.form_body import FormBody
from app.ui.editor.history_panel import HistoryPanel, RecordHistory
from app.ui.editor.id_derive import IdDerivations, ask_rederive, house_values
from app.ui.editor.merge import (
    ConflictPanel,
    record_state,
)
from app.ui.editor.refusal_banner import RefusalBanner
from app.ui.editor.saving import Saving
from app.ui.fields import FieldWidget, ReferenceField
from app.ui.fields.base import CLOSE_KEY, COMPLETE_KEYS, SAVE_KEY, key_chord
from app.ui.i18n import STRINGS, language, tr

__all__ = ["AUTOSAVE_BASE", "RecordEditor", "ask_close"]


class RecordEditor(
    AutosaveSlot, ChangedElsewhere, DuplicateGuard, FieldChecks, RecordHistory, Saving, QWidget
):
    """Edit one record of any form.

    The widgets are parts of their own (``FormBody``, ``DuplicateBanner``, ``ConflictPanel``,
    ``HistoryPanel``); the behaviour beyond building, typing and saving is written in the
    classes it is made of: ``AutosaveSlot``, ``ChangedElsewhere``, ``DuplicateGuard``,
    ``FieldChecks``, ``RecordHistory``, ``Saving``.

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
        lazy: bool = True,
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
        self.confirm_rederive: Callable[[QWidget, str, str], bool] = ask_rederive
        self.nested_editor: RecordEditor | None = None

        self._values: dict[str, Any] = {}
        self._unbuilt: dict[str, Any] = {}  # raw values of fields whose section is not built yet
        self._shown: dict[str, list[Issue]] = {}
        self._touched: set[str] = set()
        self._show_all = False
        self._candidates: list[Candidate] = []
        self._decided: dict[tuple[str, bool], str] = {}
        self._pending_decisions: list[tuple[str, str]] = []
        self._dedup_asked = False
        self._dedup_source: str | None = None
        self._recall_decisions()
        self._loading = True
        self._closing = False
        self._closed = False
        self._polygons: dict[str, list[tuple[float, float]]] | None = None  # grid boundaries
        self._focused_once = False
        self._autosaved = False
        self._extra: dict[str, Any] = {}
        self._button_texts: list[tuple[QPushButton, str]] = []
        self.task_fields: list[str] = []  # highlighted: the editor was opened from a task

        self._id_said = IdDerivations(self.form, self.formset)
        self._dedup_fields = dedup_fields(self.form)
        self._build(lazy)
        self._dependents = self.body.plan.readers

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
        language().changed.connect(self.set_lang)
        self._update_header()

    # ------------------------------------------------------------------ public API

    def values(self) -> dict[str, Any]:
        """The current values, coerced as they would be stored (wrong text kept as text)."""
        return clean({**self._extra, **{k: v for k, v in self._values.items() if v is not None}})

    def raw_values(self) -> dict[str, Any]:
        """What each widget holds, as typed (the autosave keeps this)."""
        raw = {fid: self._raw(fid) for fid in self.form.fields}
        return {k: v for k, v in raw.items() if not is_empty(v)}

    def set_value(self, field_id: str, raw: object) -> None:
        """Put ``raw`` into a field as if it had been typed (prefill, tests)."""
        self.body.widget(field_id).set_value(raw)

    def widget(self, field_id: str) -> FieldWidget:
        """The widget of a field (the main window and tests reach fields through this)."""
        return self.body.widget(field_id)

    def message(self, field_id: str) -> str:
        """The message shown under a field ('' when none: an unbuilt field shows none)."""
        return self.body.widget(field_id).message() if self.body.is_built(field_id) else ""

    def is_field_visible(self, field_id: str) -> bool:
        """Whether the field's conditions currently show it."""
        return self.body.is_visible(field_id)

    def is_field_required(self, field_id: str) -> bool:
        """Whether the field is currently marked required (*)."""
        return self.body.is_visible(field_id) and self.body.is_required(field_id)

    def is_dirty(self) -> bool:
        """True when the values differ from what was last saved (or opened)."""
        return self.values() != self._baseline

    def has_unsaved(self) -> bool:
        """Unsaved changes, counting what is still being typed in the focused field."""
        self._commit_all()
        return self.is_dirty()

    def is_closed(self) -> bool:
        return self._closed

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

    def create_referenced(self, field_id: str) -> QDialog:
        """Open a nested editor for a new record of the reference's target form; when it is
        saved, the reference points to it. Returns the (non-blocking) dialog."""
        target = self.formset.form(self.form.fields[field_id].target or "")
        prefill: dict[str, Any] = {}
        own_grid, their_grid = self.form.roles.grid, target.roles.grid
        if own_grid and their_grid and not is_empty(self._values.get(own_grid)):
            prefill[their_grid] = self._values[own_grid]  # same grid: one less thing to type
        on_saved = functools.partial(self.set_value, field_id)
        return open_nested(self, target, prefill, on_saved)[0]

    def focus_first(self) -> None:
        """Put the cursor in the first visible field (of a task's fields, when it has some)."""
        named = self._refusal_banner.fields if self._refusal_banner is not None else []
        wanted = (*named, *self.task_fields)
        first = next((f for f in wanted if self.body.is_visible(f)), None)
        first = first or self.body.first_visible()
        if first is not None:
            self._focus_field(first)

    def set_task_fields(self, field_ids: Iterable[str]) -> None:
        """Opened from a task: highlight the fields it names; the first one gets the cursor."""
        self.task_fields = self.body.highlight(field_ids)

    def show_refusal(self, refused: Any) -> None:
        """Opened from 被拒的修改: say why the platform refused the edit (a ``Refused``) until
        the record is saved, with the cursor in the field it named."""
        banner = self._refusal_banner
        if banner is None:
            banner = self._refusal_banner = RefusalBanner(self, self._focus_field)
            self._root.insertWidget(1, banner)  # under the header, above everything else
            banner.follow(self.header)
            self.saved.connect(banner.clear)  # the correction goes with the next sync
        banner.show_refusal(refused, self.form, self.lang)
        if banner.fields:
            self.focus_first()

    def set_lang(self, lang: str) -> None:
        """Switch the editor's language at runtime."""
        self.lang = lang
        self.body.set_lang(lang)
        if self._refusal_banner is not None:
            self._refusal_banner.set_lang(lang)
        for button, key in self._button_texts:
            button.setText(tr(key, lang))
            button.setToolTip(tr(f"{key}_tip", lang) if f"{key}_tip" in STRINGS else "")
        self._refresh_messages()
        self._render_banner()
        self._render_conflicts()
        self._update_header()
        if self._history_shown():
            self.refresh_history()

    # ------------------------------------------------------------------ building

    def _build(self, lazy: bool) -> None:
        root = QVBoxLayout(self)
        root.setContentsMargins(8, 8, 8, 8)
        self.header = QLabel(self)
        self.header.setObjectName("editorHeader")
        font = self.header.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.2)
        self.header.setFont(font)
        root.addWidget(self.header)

        self._refusal_banner: RefusalBanner | None = None  # made when opened from 被拒的修改
        self.banner = DuplicateBanner(self)
        self.banner.actionChosen.connect(self._banner_clicked)
        root.addWidget(self.banner)

        self.conflict_panel = ConflictPanel(self)
        self.conflict_panel.chosen.connect(self.choose_conflict)
        root.addWidget(self.conflict_panel)

        self.body = FormBody(
            self.form, self.formset, self.store, self.lang, self, on_build=self._wire, lazy=lazy
        )
        self.scroll = self.body  # the scrolling part (tests scroll it)
        root.addWidget(self.body, 1)

        self._history_panel: HistoryPanel | None = None  # made when first shown
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

    def _wire(self, widgets: Mapping[str, FieldWidget]) -> None:
        """A section was built: show the values its fields hold, then follow their edits."""
        for fid, widget in widgets.items():
            if fid in self._unbuilt:  # shown before wiring: not an edit
                widget.set_value(self._unbuilt.pop(fid))
            widget.changed.connect(functools.partial(self._field_changed, fid))
            widget.listener = self._field_event  # committed / nextRequested
            if isinstance(widget, ReferenceField):
                widget.createRequested.connect(lambda _target, fid=fid: self.create_referenced(fid))

    def _button(self, key: str, slot: Callable[[], object]) -> QPushButton:
        button = QPushButton(tr(key, self.lang), self)
        button.setAutoDefault(False)
        if f"{key}_tip" in STRINGS:
            button.setToolTip(tr(f"{key}_tip", self.lang))
        button.clicked.connect(lambda _checked=False: slot())
        self._button_texts.append((button, key))
        return button

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt API)
        """Ctrl+S, Ctrl+Enter and Escape: keys no field, button or list of the editor takes
        come up here. Not QShortcut objects: four per editor were about 0.4 ms of each open
        (and a Python handler here costs nothing until a key arrives)."""
        action = _EDITOR_KEYS.get(key_chord(event))
        if action is None:
            super().keyPressEvent(event)
            return
        event.accept()
        getattr(self, action)()

    # ------------------------------------------------------------------ values and conditions

    def _load(self, data: Mapping[str, Any], clear: bool = False) -> None:
        """Show ``data`` in the widgets (``clear``: empty the others), then evaluate once."""
        was_loading, self._loading = self._loading, True
        for fid in self.form.fields:
            if clear or not is_empty(data.get(fid)):
                self._put(fid, data.get(fid))
        self._loading = was_loading
        for fid, fld in self.form.fields.items():
            self._values[fid] = rules.coerce(fld, self._raw(fid), self.formset)
        self._apply_conditions(self.form.fields)
        self._id_said.remember(self._data())
        if self._touched or self._show_all or clear:
            self._refresh_messages()

    def _field_changed(self, field_id: str) -> None:
        if self._loading:
            return
        fld = self.form.fields[field_id]
        widget = self.body.widget(field_id)
        self._values[field_id] = rules.coerce(fld, widget.value(), self.formset)
        self._apply_conditions(self._dependents.get(field_id, ()))
        if fld.type == "id_number" and fld.derives and widget.live_check_ready():
            self._derive(fld)
        if field_id == self.form.roles.house and self._values.get(field_id):
            self._inherit_house(str(self._values[field_id]))
        self._refresh_messages(typing=field_id)
        if field_id in self._dedup_fields:
            self._dedup_source = field_id  # the banner's buttons follow it in the tab order
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
        """Fill what a valid ID number gives; a correction re-derives or asks (``id_derive``)."""
        ask = functools.partial(self.confirm_rederive, self)
        self._fill(self._id_said.fill(self._data(), ask, self.lang))
        self._touched.update(t for t in fld.derives.values() if t in self.form.fields)

    def _inherit_house(self, house_id: str) -> None:
        """A house picked: its grid, address and area fill the fields still empty."""
        self._fill(house_values(self.store, self.form, house_id, self._values))

    def _fill(self, values: Mapping[str, Any]) -> None:
        for target, value in values.items():
            if target in self.form.fields:  # filled as if typed: an unbuilt section is built
                self.body.widget(target).set_value(value)
        self._id_said.remember(self._data())

    def _apply_conditions(self, field_ids: Iterable[str]) -> None:
        self.body.apply_conditions(self._data(), field_ids)

    def _put(self, field_id: str, raw: object) -> None:
        """Show a value in a field; an unbuilt field keeps it until its section is built."""
        if self.body.is_built(field_id):
            self.body.widget(field_id).set_value(raw)
        else:
            self._unbuilt[field_id] = raw

    def _raw(self, field_id: str) -> object:
        """What a field holds as typed (an unbuilt one: the value it will show)."""
        if self.body.is_built(field_id):
            return self.body.widget(field_id).value()
        return self._unbuilt.get(field_id)

    def _data(self) -> dict[str, Any]:
        return {k: v for k, v in self._values.items() if v is not None}

    def _status(self, text: str, error: bool = False) -> None:
        self.status_label.setStyleSheet(f"color: {REQUIRED_COLOR};" if error else "")
        self.status_label.setText(text)

    # ------------------------------------------------------------------ focus and keys

    def _focus_field(self, field_id: str) -> None:
        self.body.focus_field(field_id)

    def _focus_next(self, field_id: str) -> None:
        following = self.body.first_visible(after=field_id)
        if following is not None:
            self._focus_field(following)
            return
        self.complete_button.setFocus(Qt.FocusReason.TabFocusReason)

    def _commit_all(self) -> None:
        self.body.commit_all()

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
        language().changed.disconnect(self.set_lang)  # a closed editor's store may close too
        # Saved, unchanged, or the worker chose "discard": nothing is left to restore.
        if self._autosaved or self.is_dirty():
            self.store.autosave_clear(self.slot)
        event.accept()
        self.closed.emit()

    def _update_header(self) -> None:
        if not hasattr(self, "_baseline"):
            return
        values = self.values()  # once: the title and the dirty mark read the same values
        parts = [
            self.form.title.get(self.lang),
            self.form.title_of(values) or tr("new_record", self.lang),
        ]
        if self._record is not None:
            parts.append(status_text(self._record.status, self.lang))
        if values != self._baseline:
            parts.append(tr("unsaved", self.lang))
        self.header.setText(" · ".join(parts))


# ---------------------------------------------------------------------- helpers

_EDITOR_KEYS: dict[tuple[int, int], str] = {  # the form's keys (fields pass them up) -> method
    SAVE_KEY: "save_draft",
    **dict.fromkeys(COMPLETE_KEYS, "complete"),
    CLOSE_KEY: "request_close",
}


def _single_shot(parent: QWidget, ms: int, slot: Callable[[], object]) -> QTimer:
    timer = QTimer(parent)
    timer.setSingleShot(True)
    timer.setInterval(ms)
    timer.timeout.connect(lambda: slot())
    return timer
