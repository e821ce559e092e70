"""What a form body needs to know of a form, compiled once per form, and the box of one section
that is built only when it is needed.

Why lazily: a resident form has 49 fields in 7 sections and the first screen shows one or two;
building, laying out and wiring every widget was most of the time it took to open the form.
A section's box stands empty at about its final height (so the scroll bar is right) until it
comes into view, gets the keyboard, or a field in it is needed (``FormBody.ensure_built``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtGui import (
    QColor,
    QFocusEvent,
    QFontMetrics,
    QMoveEvent,
    QPainter,
    QPaintEvent,
    QResizeEvent,
    QShowEvent,
)
from PySide6.QtWidgets import QFormLayout, QGroupBox, QLabel, QWidget

from app.core.forms import Field, Form, conditions
from app.ui.editor.field_label import REQUIRED_COLOR, REQUIRED_MARK

__all__ = ["FormPlan", "SectionBox", "condition_readers", "form_plan"]

_ROW_SPACING = 6  # about what a QFormLayout puts between rows in the styles we ship
_MARK_GAP = 2  # pixels between a required mark and its label
_MARK_ALIGN = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter


@dataclass(frozen=True)
class FormPlan:
    """A form's layout facts, the same for every record: worked out once per form, not per open."""

    order: tuple[str, ...]
    position: Mapping[str, int]
    sections: Mapping[str, tuple[Field, ...]]
    row: Mapping[str, int]  # field id -> its row in its section
    readers: Mapping[str, frozenset[str]]  # field id -> the fields whose conditions read it

    def place(self, field_id: str) -> int:
        """The field's place in the form (fields not in the form sort last)."""
        return self.position.get(field_id, len(self.order))


_PLANS: dict[int, tuple[Form, FormPlan]] = {}


def form_plan(form: Form) -> FormPlan:
    """The plan of ``form`` (cached per form object; form sets are loaded once per process)."""
    cached = _PLANS.get(id(form))
    if cached is not None and cached[0] is form:
        return cached[1]
    order = tuple(form.fields)
    plan = FormPlan(
        order=order,
        position={fid: i for i, fid in enumerate(order)},
        sections={s.id: tuple(s.fields) for s in form.sections},
        row={f.id: i for s in form.sections for i, f in enumerate(s.fields)},
        readers={k: frozenset(v) for k, v in condition_readers(form).items()},
    )
    _PLANS[id(form)] = (form, plan)
    return plan


def condition_readers(form: Form) -> dict[str, set[str]]:
    """field id -> the fields whose show_when / required_when read it."""
    out: dict[str, set[str]] = {}
    for fld in form.fields.values():
        for source in conditions.fields_of(fld.show_when) | conditions.fields_of(fld.required_when):
            out.setdefault(source, set()).add(fld.id)
    return out


class _Gate(QWidget):
    """The room of a section's rows not built yet: the last row of the section's layout, about
    as tall as they will be (so the scroll bar is right), and a stop in the tab chain where
    they will be. Coming into view or Tab / Shift+Tab into it builds them."""

    def __init__(self, box: SectionBox) -> None:
        super().__init__(box)
        self._box = box
        self.setFocusPolicy(Qt.FocusPolicy.TabFocus)

    def focusInEvent(self, event: QFocusEvent) -> None:  # noqa: N802 (Qt API)
        super().focusInEvent(event)
        self._box.entered(backwards=event.reason() == Qt.FocusReason.BacktabFocusReason)

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 (Qt API)
        super().showEvent(event)
        self._box.moved()

    def moveEvent(self, event: QMoveEvent) -> None:  # noqa: N802 (Qt API)
        super().moveEvent(event)
        self._box.moved()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(event)
        self._box.moved()


class SectionBox(QGroupBox):
    """One section's box, its rows built from the top as far as needed (``count`` of them).

    ``on_seen`` is called whenever the unbuilt rows may have come into view (moved, resized,
    shown); ``on_enter(box, backwards)`` when the keyboard tabs into them."""

    def __init__(
        self,
        section_id: str,
        title: str,
        fields: tuple[Field, ...],
        parent: QWidget,
        row_height: int,
        on_seen: Callable[[], None],
        on_enter: Callable[[SectionBox, bool], None],
    ) -> None:
        super().__init__(title, parent)
        self.section_id, self.fields = section_id, fields
        self.count = 0  # rows built, from the top
        self.pitch = row_height + _ROW_SPACING
        self._on_seen, self._on_enter = on_seen, on_enter
        self.form_layout = QFormLayout(self)
        self.form_layout.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        # Labels stay level with the input when a message line makes the row taller.
        self.form_layout.setLabelAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.gate = _Gate(self)
        self.form_layout.addRow(self.gate)
        self._marked: list[QLabel] = []  # labels of the rows marked required, in no order
        # room for the marks before the labels (a mark in touch mode's larger font included)
        margins = self.form_layout.contentsMargins()
        margins.setLeft(max(margins.left(), 2 * self.fontMetrics().horizontalAdvance("*") + 4))
        self.form_layout.setContentsMargins(margins)

    @property
    def built(self) -> bool:
        return self.count >= len(self.fields)

    def set_estimate(self, rows: int) -> None:
        """Hold the room ``rows`` shown rows not built yet will take."""
        if not self.built:
            self.gate.setFixedHeight(rows * self.pitch)

    def placed(self) -> bool:
        """Whether the layout has put the unbuilt rows in their place yet (until then they
        sit at 0, 0)."""
        return self.gate.testAttribute(Qt.WidgetAttribute.WA_Moved)

    def unbuilt_rect(self, viewport: QWidget) -> QRect:
        """Where the unbuilt rows are, in ``viewport``'s coordinates."""
        return QRect(self.gate.mapTo(viewport, QPoint(0, 0)), self.gate.size())

    def finish(self, new: list[QWidget]) -> list[QWidget]:
        """Rows were added (widgets ``new``): put the ones that take Tab in the tab chain
        where the rows stand (widgets made late join the window's chain at its end), before
        the gate; when every row is built the gate leaves the chain and the layout.
        Returns the new widgets that take Tab, in order."""
        window = self.window()
        takers = [
            w
            for top in new
            for w in (top, *top.findChildren(QWidget))
            if w.window() is window  # not a drop-down's list: a window of its own
            and w.focusPolicy() & Qt.FocusPolicy.TabFocus
        ]
        gate = self.gate
        before: QWidget = gate
        for widget in takers:
            QWidget.setTabOrder(before, widget)
            before = widget
        if self.built:
            gate.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            self.form_layout.setRowVisible(gate, False)
        elif takers:
            QWidget.setTabOrder(takers[-1], gate)  # the gate goes after the new rows
        if self.isVisible():  # on screen: the real height now, so what is below moves
            self.form_layout.activate()  # before the next paint
        return takers

    def set_required(self, label: QLabel, required: bool) -> None:
        """Mark (or unmark) a row as required: a red * painted before its label."""
        if required == (label in self._marked):
            return
        if required:
            self._marked.append(label)
        else:
            self._marked.remove(label)
        self.update(self.mark_rect(label))

    def is_marked(self, label: QLabel) -> bool:
        """Whether the row of ``label`` shows the required mark."""
        return label in self._marked

    def mark_rect(self, label: QLabel) -> QRect:
        """Where the required mark of ``label``'s row is painted, in the box's coordinates."""
        return self._mark_rect(label, label.fontMetrics().horizontalAdvance(REQUIRED_MARK))

    @staticmethod
    def _mark_rect(label: QLabel, width: int) -> QRect:
        geometry = label.geometry()
        return QRect(geometry.left() - width - _MARK_GAP, geometry.top(), width, geometry.height())

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt API)
        """The box, then the required marks of its shown rows: one call into Python per box
        painted instead of one per label (the labels stay plain QLabels, in one font)."""
        super().paintEvent(event)
        if not self._marked:
            return
        font = self._marked[0].font()
        width = QFontMetrics(font).horizontalAdvance(REQUIRED_MARK)
        area = event.rect()
        painter = QPainter(self)
        painter.setPen(QColor(REQUIRED_COLOR))
        painter.setFont(font)
        for label in self._marked:
            rect = self._mark_rect(label, width)
            if rect.intersects(area) and not label.isHidden():
                painter.drawText(rect, _MARK_ALIGN, REQUIRED_MARK)
        painter.end()

    def entered(self, backwards: bool) -> None:
        self._on_enter(self, backwards)

    def moved(self) -> None:
        if not self.built:
            self._on_seen()
