"""Code pickers (issue 16 item 3): the best match is first and selected, so one Enter takes
it; "hz", "01" and "汉" each pick 汉族; regions list the worker's own county and city first."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QInputMethodEvent
from PySide6.QtWidgets import QApplication, QWidget

from app.core.forms import FormSet
from app.core.store import Grid, Store
from app.ui import fields as F
from tests.ui.test_fields import _focus


def _picker(qtbot, store: Store | None, formset: FormSet, field: str) -> F.CodePickerField:  # noqa: ANN001
    widget = F.make_field_widget(formset.form("resident").fields[field], formset, "zh", store=store)
    qtbot.addWidget(widget)
    assert isinstance(widget, F.CodePickerField)
    _focus(qtbot, widget.focus_target())
    return widget


def _type(qtbot, widget: QWidget, text: str) -> None:  # noqa: ANN001
    """Latin letters and digits as key presses, Chinese as an input-method commit."""
    if text.isascii():
        qtbot.keyClicks(widget, text)
        return
    event = QInputMethodEvent()
    event.setCommitString(text)
    QApplication.sendEvent(widget, event)


def _enter(qtbot) -> None:  # noqa: ANN001
    """One Enter, delivered where a real one goes: the open list if there is one."""
    target = QApplication.activePopupWidget() or QApplication.focusWidget()
    qtbot.keyClick(target, Qt.Key.Key_Return)


@pytest.mark.parametrize("typed", ["hz", "01", "汉"])
def test_one_keystroke_and_one_enter_pick_han(qtbot, formset: FormSet, typed: str) -> None:  # noqa: ANN001
    picker = _picker(qtbot, None, formset, "ethnicity")
    _type(qtbot, picker.focus_target(), typed)
    popup = picker.completer().popup()
    qtbot.waitUntil(popup.isVisible)
    assert popup.currentIndex().row() == 0  # the best match is selected
    assert popup.currentIndex().data(F.CODE_ROLE) == "01"
    with qtbot.waitSignal(picker.changed):
        _enter(qtbot)
    assert picker.value() == "01"
    assert picker.display_text() == "01 汉族"
    assert not popup.isVisible()


def test_enter_with_the_list_closed_takes_the_best_match(qtbot, formset: FormSet) -> None:  # noqa: ANN001
    picker = _picker(qtbot, None, formset, "ethnicity")
    _type(qtbot, picker.focus_target(), "hz")  # 汉族 and 回族 both: the list's first wins
    picker.completer().popup().hide()
    with qtbot.waitSignal(picker.nextRequested):
        _enter(qtbot)
    assert picker.value() == "01"


@pytest.mark.parametrize(
    ("grid", "typed", "first"),
    [
        ("330106001001", "西湖区", "330106"),  # 杭州的西湖区, not 南昌的
        ("360103001001", "西湖区", "360103"),  # a worker in 南昌: theirs
        ("330106001001", "hz", "330100"),  # 杭州市 before 湖州市 and 惠州市
        ("330106001001", "滨江", "330108"),  # a county of the worker's own city
    ],
)
def test_regions_rank_the_workers_own_county_and_city_first(  # noqa: PLR0913
    qtbot,  # noqa: ANN001
    store: Store,
    formset: FormSet,
    grid: str,
    typed: str,
    first: str,
) -> None:
    store.put_grid(Grid(grid, "第一网格", grid[:9], "社区"))
    picker = _picker(qtbot, store, formset, "residence_region")
    _type(qtbot, picker.focus_target(), typed)
    popup = picker.completer().popup()
    qtbot.waitUntil(popup.isVisible)
    assert popup.currentIndex().data(F.CODE_ROLE) == first
    with qtbot.waitSignal(picker.changed):
        _enter(qtbot)
    assert picker.value() == first


def test_an_opened_form_makes_no_search_lists_until_someone_types(qtbot, store: Store) -> None:  # noqa: ANN001
    """Opening the resident form builds no picker's typed-search list and no reference
    completer (a fifth of the form's item models, made at every open); a search makes them
    (typing and picking through them: the tests above)."""
    from app.ui.editor import RecordEditor

    editor = RecordEditor(store, "resident")
    editor.confirm_close = lambda _e: "discard"  # type: ignore[assignment, return-value]
    qtbot.addWidget(editor)
    editor.show()
    widgets = editor.body.widgets.values()
    pickers = [w for w in widgets if isinstance(w, F.CodePickerField)]
    references = [w for w in widgets if isinstance(w, F.ReferenceField)]
    assert pickers and references
    assert all(p._matches_model is None for p in pickers)
    assert all(r._completer is None for r in references)
    picker = next(p for p in pickers if p.field.id == "ethnicity")
    assert [e.code for e in picker.ranked("hz")][:1] == ["01"]
    picker._fill("hz")
    assert picker._matches_model is not None and picker._matches_model.rowCount() > 0
    assert references[0].search("无此人") == 0 and references[0]._completer is not None
