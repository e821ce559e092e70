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
from PySide6.QtGui import QFocusEvent, QMoveEvent, QResizeEvent, QShowEvent
from PySide6.QtWidgets import QFormLayout, QGroupBox, QWidget

from app.core.forms import Field, Form, conditions

__all__ = ["FormPlan", "SectionBox", "condition_readers", "form_plan"]

_ROW_SPACING = 6  # about what a QFormLayout puts between rows in the styles we ship
_BOX_FRAME = 36  # a group box's title and margins, about


@dataclass(frozen=True)
class FormPlan:
    """A form's layout facts, the same for every record: worked out once per form, not per open."""

    order: tuple[str, ...]
    position: Mapping[str, int]
    sections: Mapping[str, tuple[Field, ...]]
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
    """A zero-size stand-in in the tab chain where an unbuilt section's fields will be: Tab or
    Shift+Tab into it builds the section and moves on to its first or last field."""

    def __init__(self, box: SectionBox) -> None:
        super().__init__(box)
        self._box = box
        self.setFocusPolicy(Qt.FocusPolicy.TabFocus)
        self.setGeometry(0, 0, 0, 0)

    def focusInEvent(self, event: QFocusEvent) -> None:  # noqa: N802 (Qt API)
        super().focusInEvent(event)
        self._box.entered(backwards=event.reason() == Qt.FocusReason.BacktabFocusReason)


class SectionBox(QGroupBox):
    """One section's box: empty at its estimated height until ``build`` fills it.

    ``on_seen`` is called whenever the box may have come into view (moved, resized, shown);
    ``on_enter(backwards)`` when the keyboard tabs into it unbuilt."""

    def __init__(
        self,
        section_id: str,
        title: str,
        parent: QWidget,
        row_height: int,
        on_seen: Callable[[], None],
        on_enter: Callable[[SectionBox, bool], None],
    ) -> None:
        super().__init__(title, parent)
        self.section_id = section_id
        self.built = False
        self._row_height = row_height
        self._on_seen, self._on_enter = on_seen, on_enter
        self.form_layout = QFormLayout(self)
        self.form_layout.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        # Labels stay level with the input when a message line makes the row taller.
        self.form_layout.setLabelAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self._gate: _Gate | None = _Gate(self)

    def set_estimate(self, rows: int) -> None:
        """Hold the room ``rows`` shown rows will take (unbuilt only)."""
        if not self.built:
            self.setMinimumHeight(_BOX_FRAME + rows * (self._row_height + _ROW_SPACING))

    def finish(self) -> list[QWidget]:
        """The fields are in: drop the estimate and put the new widgets in the tab chain where
        the section stands (widgets made late join the window's chain at its end). Returns
        the section's widgets that take Tab, in order."""
        self.built = True
        self.setMinimumHeight(0)
        self.form_layout.activate()  # its real height now: the sections below stay put
        gate, self._gate = self._gate, None
        if gate is None:
            return []
        window = self.window()
        takers = [
            w
            for w in self.findChildren(QWidget)
            if w is not gate
            and w.window() is window  # not a drop-down's list: a window of its own
            and w.focusPolicy() & Qt.FocusPolicy.TabFocus
        ]
        before: QWidget = gate
        for widget in takers:
            QWidget.setTabOrder(before, widget)
            before = widget
        gate.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        gate.hide()
        return takers

    def entered(self, backwards: bool) -> None:
        self._on_enter(self, backwards)

    def placed(self) -> bool:
        """Whether the layout has put the box in its place yet (until then it sits at 0, 0)."""
        return self.testAttribute(Qt.WidgetAttribute.WA_Moved)

    def rect_in(self, viewport: QWidget) -> QRect:
        """Where the box is, in ``viewport``'s coordinates."""
        return QRect(self.mapTo(viewport, QPoint(0, 0)), self.size())

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 (Qt API)
        super().showEvent(event)
        if not self.built:
            self._on_seen()

    def moveEvent(self, event: QMoveEvent) -> None:  # noqa: N802 (Qt API)
        super().moveEvent(event)
        if not self.built:
            self._on_seen()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(event)
        if not self.built:
            self._on_seen()
