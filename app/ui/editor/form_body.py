"""The scrolling body of an editor: one box per section, one labelled widget per field, and
which of them the form's conditions show and mark required.

Sections are built when they are needed (``sections``): at open only those on screen. What the
conditions say (shown, required, highlighted) is kept for every field, built or not, and given
to a section's widgets when it is built."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from PySide6.QtCore import QCoreApplication, QEvent, Qt
from PySide6.QtGui import QResizeEvent, QShowEvent
from PySide6.QtWidgets import QFrame, QLabel, QScrollArea, QVBoxLayout, QWidget

from app.core import rules
from app.core.forms import Field, Form, FormSet
from app.core.store import Store
from app.ui.editor.field_label import input_height, make_field_label
from app.ui.editor.sections import SectionBox, condition_readers, form_plan
from app.ui.fields import FieldWidget, make_field_widget
from app.ui.fields.base import guard_wheel
from app.ui.fields.grid import GridField
from app.ui.i18n import tr

__all__ = ["FormBody", "condition_readers"]

_SEEN_EVENT = QEvent.Type(QEvent.registerEventType())
OnBuild = Callable[[Mapping[str, FieldWidget]], None]


class FormBody(QScrollArea):
    """Builds a form's widgets by field type and keeps their visibility and required marks.

    It knows nothing of values, saving or messages: the editor owns those, and ``on_build``
    hands it each section's new widgets (field id -> widget) to fill and wire. ``lazy=False``
    builds every section at once."""

    def __init__(
        self,
        form: Form,
        formset: FormSet,
        store: Store,
        lang: str,
        parent: QWidget,
        *,
        on_build: OnBuild | None = None,
        lazy: bool = True,
    ) -> None:
        super().__init__(parent)
        self.form, self.formset, self.store, self.lang = form, formset, store, lang
        self.plan = form_plan(form)
        self._on_build = on_build
        self._widgets: dict[str, FieldWidget] = {}
        self._labels: dict[str, QLabel] = {}
        self._boxes: dict[str, SectionBox] = {}
        self._visible: dict[str, bool] = dict.fromkeys(self.plan.order, True)
        self._required: dict[str, bool] = {f.id: bool(f.required) for f in form.fields.values()}
        self._marked: set[str] = set()
        self._seen_posted = False
        self._opened = False  # shown once: from then on the layout says what is on screen
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        content = QWidget(self)
        column = self._column = QVBoxLayout(content)
        row_height = input_height()
        for section in form.sections:
            box = SectionBox(
                section.id,
                section.title.get(lang),
                self.plan.sections[section.id],
                content,
                row_height,
                self._seen_later,
                self._entered,
            )
            box.set_estimate(len(section.fields))
            self._boxes[section.id] = box
            column.addWidget(box)
        column.addStretch(1)
        self.setWidget(content)
        for section in form.sections[: None if not lazy else 1]:
            self.ensure_built(section.id)

    # ------------------------------------------------------------------ building

    def ensure_built(self, section_id: str) -> None:
        """Build all of a section's widgets now (nothing when they are built)."""
        box = self._boxes[section_id]
        self._build_rows(box, len(box.fields))

    def build_all(self) -> None:
        """Build every section (what walks every widget needs them all)."""
        for section_id in self._boxes:
            self.ensure_built(section_id)

    def is_built(self, field_id: str) -> bool:
        return field_id in self._widgets

    def _build_rows(self, box: SectionBox, upto: int) -> list[QWidget]:
        """Build a section's rows from the first unbuilt one up to ``upto``; returns the new
        widgets that take Tab."""
        if upto <= box.count:
            return []
        new: dict[str, FieldWidget] = {}
        tops: list[QWidget] = []
        for row in range(box.count, upto):
            fld = box.fields[row]
            label, new[fld.id] = self._add_field(fld, box, row)
            tops += (label, new[fld.id])
        box.count = upto
        takers = box.finish(tops)
        box.set_estimate(self._unbuilt_shown(box))
        if box.isVisible():
            self._column.activate()  # the boxes below move now, not after a paint
        if self._on_build is not None:
            self._on_build(new)
        return takers

    def _unbuilt_shown(self, box: SectionBox) -> int:
        return sum(self._visible[f.id] for f in box.fields[box.count :])

    def _add_field(self, fld: Field, box: SectionBox, row: int) -> tuple[QLabel, FieldWidget]:
        if fld.id == self.form.roles.grid and fld.type == "text":  # grids read by name
            widget: FieldWidget = GridField(fld, self.formset, self.store, self.lang, parent=box)
            guard_wheel(widget)
        else:
            widget = make_field_widget(fld, self.formset, self.lang, store=self.store, parent=box)
        label = make_field_label(box)
        self._widgets[fld.id] = widget
        self._labels[fld.id] = label
        self._update_label(fld.id)
        if fld.id in self._marked:
            self._mark(label)
        box.form_layout.insertRow(row, label, widget)
        if not self._visible[fld.id]:
            box.form_layout.setRowVisible(widget, False)
        elif box.isVisible():  # at once, not queued: the layout counts only shown widgets
            label.show()
            widget.show()
        return label, widget

    def _build_seen(self) -> None:
        """Build the rows that are (partly) on screen: as many as fit from where the built
        rows end to the bottom of the view."""
        viewport = self.viewport()
        area = viewport.rect()
        for box in self._boxes.values():
            if box.built or not box.isVisible() or not box.placed():
                continue
            room = box.unbuilt_rect(viewport)
            if not room.intersects(area):
                continue
            self._build_rows(box, self._rows_to(box, area.bottom() - room.top() + 1))

    def _entered(self, box: SectionBox, backwards: bool) -> None:
        """Tab (or Shift+Tab) reached a section's unbuilt rows: build them and go on into
        the first (or last) of them that takes the cursor."""
        takers = self._build_rows(box, len(box.fields))
        shown = [w for w in takers if w.isVisible() and w.isEnabled()]
        target = (shown[-1] if backwards else shown[0]) if shown else self._beyond(box, backwards)
        if target is None:
            return
        reason = Qt.FocusReason.BacktabFocusReason if backwards else Qt.FocusReason.TabFocusReason
        target.setFocus(reason)
        self.ensureWidgetVisible(target)

    def _beyond(self, box: SectionBox, backwards: bool) -> QWidget | None:
        """The next (previous) stop in the tab chain when the rows built hold none."""
        widget: QWidget = box.gate
        for _ in range(10000):
            widget = widget.previousInFocusChain() if backwards else widget.nextInFocusChain()
            if widget is box.gate:
                return None
            tabs = widget.focusPolicy() & Qt.FocusPolicy.TabFocus
            if tabs and widget.isVisible() and widget.isEnabled():
                return widget
        return None

    def _seen_later(self) -> None:
        """Look for rows come into view once the layout has settled: a posted event runs after
        the layout requests of this round and before the paint (posted at low priority), so
        what is on screen is built before it is first painted, and what only passed through
        the view while the layout was settling is not built."""
        if not self._seen_posted:
            self._seen_posted = True
            QCoreApplication.postEvent(self, QEvent(_SEEN_EVENT))

    def customEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt API)
        if event.type() == _SEEN_EVENT:
            self._seen_posted = False
            self._build_seen()
        else:
            super().customEvent(event)

    def scrollContentsBy(self, dx: int, dy: int) -> None:  # noqa: N802 (Qt API)
        super().scrollContentsBy(dx, dy)
        self._build_seen()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(event)
        if not self._opened:
            self._build_expected()
        self._seen_later()

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 (Qt API)
        super().showEvent(event)
        self._opened = True

    def _build_expected(self) -> None:
        """Before the first show: build the rows the view will show, from the estimated
        heights (the boxes are not laid out yet). Built now, they are shown, laid out and
        painted with the rest; built after the show, they cost a second layout pass."""
        height = self.viewport().height()
        y = self._column.contentsMargins().top()
        for box in self._boxes.values():
            if y >= height:
                return
            if box.isHidden():
                continue
            if not box.built:
                rows_top = y + box.sizeHint().height() - box.gate.height()
                # one row more than estimated: cheaper now than in a second pass
                self._build_rows(box, self._rows_to(box, height - rows_top + box.pitch))
            y += box.sizeHint().height() + self._column.spacing()

    def _rows_to(self, box: SectionBox, room: int) -> int:
        """How far to build ``box`` for its unbuilt rows to fill ``room`` pixels."""
        wanted = -(-room // box.pitch)  # rows that fit, rounded up
        upto = box.count
        while upto < len(box.fields) and wanted > 0:
            wanted -= self._visible[box.fields[upto].id]
            upto += 1
        return upto

    # ------------------------------------------------------------------ reading

    @property
    def widgets(self) -> Mapping[str, FieldWidget]:
        """field id -> its widget, in form order. Builds every section: the editor itself goes
        through ``built_widgets`` and ``widget``."""
        self.build_all()
        return {fid: self._widgets[fid] for fid in self.plan.order}

    def built_widgets(self) -> Mapping[str, FieldWidget]:
        """The widgets built so far (field id -> widget)."""
        return self._widgets

    def widget(self, field_id: str) -> FieldWidget:
        """A field's widget (its section's rows down to it are built first when needed)."""
        if field_id not in self._widgets:
            box = self._boxes[self.form.fields[field_id].section]
            self._build_rows(box, self.plan.row[field_id] + 1)
        return self._widgets[field_id]

    def label(self, field_id: str) -> QLabel:
        """The label beside a field (its required mark is painted by its section's box)."""
        self.widget(field_id)
        return self._labels[field_id]

    def section_box(self, section_id: str) -> SectionBox:
        return self._boxes[section_id]

    def is_visible(self, field_id: str) -> bool:
        return self._visible[field_id]

    def is_required(self, field_id: str) -> bool:
        """Marked required (*) by the conditions, whether or not it is shown."""
        return self._required[field_id]

    def position(self, field_id: str) -> int:
        """The field's place in the form (fields not in the form sort last)."""
        return self.plan.place(field_id)

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
                if fid in self._widgets:
                    self._boxes[fld.section].form_layout.setRowVisible(self._widgets[fid], visible)
                sections.add(fld.section)
            if required != self._required[fid]:
                self._required[fid] = required
                if fid in self._labels:
                    self._update_label(fid)
        for section_id in sections:
            box = self._boxes[section_id]
            box.set_estimate(self._unbuilt_shown(box))
            box.setVisible(any(self._visible[f.id] for f in box.fields))

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
        fld = self.form.fields[field_id]
        label.setText(fld.label.get(self.lang))
        label.setToolTip(tr("required_mark_tip", self.lang) if required else "")
        self._boxes[fld.section].set_required(label, required)

    def is_marked(self, field_id: str) -> bool:
        """Whether the field's row shows the red * (built rows only: the others show nothing)."""
        label = self._labels.get(field_id)
        return label is not None and self._boxes[self.form.fields[field_id].section].is_marked(
            label
        )

    # ------------------------------------------------------------------ task fields

    TASK_STYLE = "background: #fff3c4; border-radius: 3px;"  # the 我的任务 marker colour

    def highlight(self, field_ids: Iterable[str]) -> list[str]:
        """Mark the fields a task asks for (label background, ``taskField`` property);
        returns those of this form, in form order."""
        wanted = set(field_ids)
        marked = [fid for fid in self.plan.order if fid in wanted]
        self._marked.update(marked)
        for fid in marked:
            if fid in self._labels:
                self._mark(self._labels[fid])
        return marked

    def _mark(self, label: QLabel) -> None:
        label.setProperty("taskField", True)
        label.setStyleSheet(self.TASK_STYLE)

    # ------------------------------------------------------------------ focus

    def focus_field(self, field_id: str) -> None:
        """Scroll to a field and put the cursor in it."""
        widget = self.widget(field_id)
        self.ensureWidgetVisible(widget)
        widget.focus_target().setFocus(Qt.FocusReason.OtherFocusReason)

    def first_visible(self, after: str | None = None) -> str | None:
        """The first shown field (after ``after``, when given); None when there is none."""
        order = self.plan.order
        start = 0 if after is None else self.position(after) + 1
        return next((fid for fid in order[start:] if self._visible[fid]), None)

    def commit_all(self) -> None:
        """Have every built widget take in what is half-typed (as leaving it would)."""
        for widget in self._widgets.values():
            widget.commit()
