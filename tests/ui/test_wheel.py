"""The mouse wheel over a form: only the focused field takes it; over every other field the
form scrolls on (five wheel clicks while scrolling past 职业类别 once saved code 5).

Real ``QWheelEvent``s are delivered to the widget under the pointer, for every field type of
every shipped form and every inner widget of those fields."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QLineEdit, QScrollBar, QWidget

from app.core.forms import FormSet
from app.core.store import Store
from app.ui.editor import RecordEditor
from app.ui.fields import ChoiceField, MultiChoiceField

FORMS = ("resident", "house", "unit", "address")


@pytest.fixture
def editors(qtbot, store: Store) -> Iterator[dict[str, RecordEditor]]:
    made = {}
    for form in FORMS:
        editor = RecordEditor(store, form, author="网格员甲")
        editor.confirm_close = lambda _e: "discard"
        qtbot.addWidget(editor)
        editor.resize(800, 500)  # shorter than every form: the form scrolls
        editor.show()
        qtbot.waitExposed(editor)
        made[form] = editor
    yield made


def wheel(widget: QWidget, clicks: int = 1, down: bool = True) -> None:
    """Turn the wheel ``clicks`` notches with the pointer over the middle of ``widget``.

    Delivered as the application delivers a wheel from the mouse: to the widget under the
    pointer first, then up its parents until one accepts it (``QApplication::notify``; an
    event sent from a test is otherwise not passed up)."""
    centre = widget.rect().center()
    step = QPoint(0, -120 if down else 120)
    for _ in range(clicks):
        target, local = widget, centre
        while target is not None:
            event = QWheelEvent(
                QPointF(local),
                QPointF(widget.mapToGlobal(centre)),
                QPoint(),
                step,
                Qt.MouseButton.NoButton,
                Qt.KeyboardModifier.NoModifier,
                Qt.ScrollPhase.NoScrollPhase,
                False,
            )
            event.ignore()
            handled = QApplication.sendEvent(target, event)
            if (handled and event.isAccepted()) or target.isWindow():
                break
            local = target.mapToParent(local)
            target = target.parentWidget()


def _inner(widget: QWidget) -> list[QWidget]:
    """The field widget and everything inside it a pointer can be over (viewports too)."""
    out = [widget, *widget.findChildren(QWidget)]
    return [w for w in out if w.window() is widget.window() and not isinstance(w, QScrollBar)]


def _park_focus(qtbot, editor: RecordEditor, avoid: str) -> QWidget:
    """Put the keyboard focus in a plain text field other than ``avoid``."""
    for fid in editor.form.fields:
        target = editor.widget(fid).focus_target()
        if fid != avoid and type(target) is QLineEdit and editor.is_field_visible(fid):
            editor.activateWindow()
            target.setFocus(Qt.FocusReason.OtherFocusReason)
            qtbot.waitUntil(lambda t=target: QApplication.focusWidget() is t)
            return target
    raise AssertionError("no text field to park the focus in")


def test_every_field_passes_the_wheel_to_the_form_when_not_focused(
    qtbot, editors: dict[str, RecordEditor], formset: FormSet
) -> None:
    seen: set[str] = set()
    for form, editor in editors.items():
        bar = editor.scroll.verticalScrollBar()
        assert bar.maximum() > 0, form
        for fid, fld in editor.form.fields.items():
            if not editor.is_field_visible(fid):
                continue
            seen.add(fld.type)
            parked = _park_focus(qtbot, editor, fid)
            for inner in _inner(editor.widget(fid)):
                before = editor.values()
                editor.scroll.ensureWidgetVisible(editor.widget(fid))
                down = bar.value() < bar.maximum()
                start = bar.value()
                wheel(inner, 5, down)
                where = f"{form}.{fid} ({fld.type}) {type(inner).__name__}"
                assert editor.values() == before, where
                assert (bar.value() > start) if down else (bar.value() < start), where
                assert QApplication.focusWidget() is parked, where
    all_types = {f.type for form in FORMS for f in formset.form(form).fields.values()}
    assert seen == all_types


def test_five_clicks_over_a_dropdown_while_scrolling_change_nothing(
    qtbot, editors: dict[str, RecordEditor]
) -> None:
    editor = editors["resident"]
    field = editor.widget("occupation_code")
    assert isinstance(field, ChoiceField)
    _park_focus(qtbot, editor, "occupation_code")
    bar = editor.scroll.verticalScrollBar()
    bar.setValue(0)
    wheel(field.combo, 5)
    assert editor.values().get("occupation_code") is None
    assert bar.value() > 0
    assert not field.combo.focusPolicy() & Qt.FocusPolicy.WheelFocus & ~Qt.FocusPolicy.StrongFocus


def test_the_focused_dropdown_still_takes_the_wheel(
    qtbot, editors: dict[str, RecordEditor]
) -> None:
    editor = editors["resident"]
    field = editor.widget("occupation_code")
    editor.activateWindow()
    field.combo.setFocus(Qt.FocusReason.MouseFocusReason)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is field.combo)
    bar = editor.scroll.verticalScrollBar()
    start = bar.value()
    wheel(field.combo, 2)
    assert editor.values().get("occupation_code") is not None
    assert bar.value() == start


def test_a_list_with_its_own_scroll_bar_scrolls_only_when_focused(
    qtbot, editors: dict[str, RecordEditor]
) -> None:
    """A multi-choice list longer than its box (a long code table) keeps its own scrolling
    for when the person is in it; passing over it scrolls the form."""
    editor = editors["resident"]
    fid = next(f for f, w in editor.body.widgets.items() if isinstance(w, MultiChoiceField))
    field = editor.widget(fid)
    field.list.setFixedHeight(field.list.sizeHintForRow(0) + 4)
    qtbot.waitUntil(lambda: field.list.verticalScrollBar().maximum() > 0)
    _park_focus(qtbot, editor, fid)
    bar, own = editor.scroll.verticalScrollBar(), field.list.verticalScrollBar()
    bar.setValue(0)
    wheel(field.list.viewport(), 3)
    assert own.value() == 0 and bar.value() > 0
    field.list.setFocus(Qt.FocusReason.MouseFocusReason)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is field.list)
    start = bar.value()
    wheel(field.list.viewport(), 1)
    assert own.value() > 0 and bar.value() == start
