"""The scrolling body of an editor: one box per section, one labelled widget per field, and
which of them the form's conditions show and mark required."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFormLayout,
    QFrame,
    QGroupBox,
    QLabel,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app.core import rules
from app.core.forms import Field, Form, FormSet, conditions
from app.core.store import Store
from app.ui.editor.field_label import make_field_label, set_label_text
from app.ui.fields import FieldWidget, make_field_widget
from app.ui.fields.base import guard_wheel
from app.ui.fields.grid import GridField
from app.ui.i18n import tr

__all__ = ["FormBody", "condition_readers"]


class FormBody(QScrollArea):
    """Builds a form's widgets by field type and keeps their visibility and required marks.

    It knows nothing of values, saving or messages: the editor owns those."""

    def __init__(
        self, form: Form, formset: FormSet, store: Store, lang: str, parent: QWidget
    ) -> None:
        super().__init__(parent)
        self.form, self.lang = form, lang
        self._widgets: dict[str, FieldWidget] = {}
        self._labels: dict[str, QLabel] = {}
        self._boxes: dict[str, QGroupBox] = {}
        self._layouts: dict[str, QFormLayout] = {}
        self._order = list(form.fields)
        self._visible: dict[str, bool] = {}
        self._required: dict[str, bool] = {}
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        content = QWidget(self)
        column = QVBoxLayout(content)
        for section in form.sections:
            box = QGroupBox(section.title.get(lang), content)
            layout = QFormLayout(box)
            layout.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
            # Labels stay level with the input when a message line makes the row taller.
            layout.setLabelAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
            for fld in section.fields:
                self._add_field(fld, formset, store, box, layout)
            self._boxes[section.id] = box
            self._layouts[section.id] = layout
            column.addWidget(box)
        column.addStretch(1)
        self.setWidget(content)

    def _add_field(
        self, fld: Field, formset: FormSet, store: Store, box: QGroupBox, layout: QFormLayout
    ) -> None:
        if fld.id == self.form.roles.grid and fld.type == "text":  # grids read by name
            widget: FieldWidget = GridField(fld, formset, store, self.lang, parent=box)
            guard_wheel(widget)
        else:
            widget = make_field_widget(fld, formset, self.lang, store=store, parent=box)
        label = make_field_label(box, fld.required or fld.required_when is not None)
        self._widgets[fld.id] = widget
        self._labels[fld.id] = label
        self._visible[fld.id] = True
        self._required[fld.id] = bool(fld.required)
        self._update_label(fld.id)
        layout.addRow(label, widget)

    # ------------------------------------------------------------------ reading

    @property
    def widgets(self) -> Mapping[str, FieldWidget]:
        """field id -> its widget, in form order."""
        return self._widgets

    def widget(self, field_id: str) -> FieldWidget:
        return self._widgets[field_id]

    def label(self, field_id: str) -> QLabel:
        """The label beside a field (a ``FieldLabel`` when the field can be required)."""
        return self._labels[field_id]

    def section_box(self, section_id: str) -> QGroupBox:
        return self._boxes[section_id]

    def is_visible(self, field_id: str) -> bool:
        return self._visible[field_id]

    def is_required(self, field_id: str) -> bool:
        """Marked required (*) by the conditions, whether or not it is shown."""
        return self._required[field_id]

    def position(self, field_id: str) -> int:
        """The field's place in the form (fields not in the form sort last)."""
        return self._order.index(field_id) if field_id in self._order else len(self._order)

    # ------------------------------------------------------------------ conditions and language

    def apply_conditions(self, data: Mapping[str, Any], field_ids: Iterable[str]) -> None:
        """Re-evaluate show_when / required_when of ``field_ids`` against ``data``."""
        sections: set[str] = set()
        for fid in field_ids:
            fld = self.form.fields[fid]
            visible = rules.is_visible(fld, data)
            required = rules.is_required(fld, data)
            if visible != self._visible[fid]:
                self._visible[fid] = visible
                self._layouts[fld.section].setRowVisible(self._widgets[fid], visible)
                sections.add(fld.section)
            if required != self._required[fid]:
                self._required[fid] = required
                self._update_label(fid)
        for section in self.form.sections:
            if section.id in sections:
                shown = any(self._visible[f.id] for f in section.fields)
                self._boxes[section.id].setVisible(shown)

    def set_lang(self, lang: str) -> None:
        self.lang = lang
        for section in self.form.sections:
            self._boxes[section.id].setTitle(section.title.get(lang))
        for fid, widget in self._widgets.items():
            widget.set_lang(lang)
            self._update_label(fid)

    def _update_label(self, field_id: str) -> None:
        label = self._labels[field_id]
        required = self._required[field_id]
        set_label_text(label, self.form.fields[field_id].label.get(self.lang), required)
        label.setToolTip(tr("required_mark_tip", self.lang) if required else "")

    # ------------------------------------------------------------------ task fields

    TASK_STYLE = "background: #fff3c4; border-radius: 3px;"  # the 我的任务 marker colour

    def highlight(self, field_ids: Iterable[str]) -> list[str]:
        """Mark the fields a task asks for (label background, ``taskField`` property);
        returns those of this form, in form order."""
        wanted = set(field_ids)
        marked = [fid for fid in self._order if fid in wanted]
        for fid in marked:
            label = self._labels[fid]
            label.setProperty("taskField", True)
            label.setStyleSheet(self.TASK_STYLE)
        return marked

    # ------------------------------------------------------------------ focus

    def focus_field(self, field_id: str) -> None:
        """Scroll to a field and put the cursor in it."""
        widget = self._widgets[field_id]
        self.ensureWidgetVisible(widget)
        widget.focus_target().setFocus(Qt.FocusReason.OtherFocusReason)

    def first_visible(self, after: str | None = None) -> str | None:
        """The first shown field (after ``after``, when given); None when there is none."""
        start = 0 if after is None else self.position(after) + 1
        return next((fid for fid in self._order[start:] if self._visible[fid]), None)

    def commit_all(self) -> None:
        """Have every widget take in what is half-typed (as leaving it would)."""
        for widget in self._widgets.values():
            widget.commit()


def condition_readers(form: Form) -> dict[str, set[str]]:
    """field id -> the fields whose show_when / required_when read it."""
    out: dict[str, set[str]] = {}
    for fld in form.fields.values():
        for source in conditions.fields_of(fld.show_when) | conditions.fields_of(fld.required_when):
            out.setdefault(source, set()).add(fld.id)
    return out
