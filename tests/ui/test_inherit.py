"""Stop retyping (issue 16 item 2), in the editor with real widgets: the ID number gives
户籍地 when its area code is a current region, a corrected number re-derives what the old one
filled (and asks before replacing typed values), and picking a house fills the address."""

from __future__ import annotations

import datetime as dt

import pytest
from PySide6.QtCore import Qt

from app.core.store import Grid, Store
from app.ui.editor import RecordEditor
from tests import factories
from tests.ui.test_editor import open_editor  # noqa: F401 (fixture)
from tests.ui.test_fields import _focus, type_text

GRID = "330106001001"
ADDRESS = "浙江省杭州市西湖区文澜街18号听涛雅苑1栋1单元201室"


def _type_id(qtbot, editor: RecordEditor, number: str) -> None:  # noqa: ANN001
    edit = editor.widget("id_number").focus_target()
    _focus(qtbot, edit)
    edit.selectAll()
    qtbot.keyClicks(edit, number)


def test_the_id_number_gives_hukou_region_when_it_is_a_current_region(
    qtbot,  # noqa: ANN001
    open_editor,  # noqa: ANN001, F811
) -> None:
    editor = open_editor()
    _type_id(qtbot, editor, factories.id_number(dt.date(1990, 3, 7), 124, area="330106"))
    assert editor.values()["hukou_region"] == "330106"
    editor = open_editor()
    # 330103 下城区 was merged away in 2021: no current region, nothing guessed
    _type_id(qtbot, editor, factories.id_number(dt.date(1990, 3, 7), 124, area="330103"))
    assert editor.values().get("hukou_region") is None
    assert editor.values()["birth_date"] == "1990-03-07"


def test_a_corrected_id_number_rederives_what_it_filled(qtbot, open_editor) -> None:  # noqa: ANN001, F811
    editor = open_editor()
    asked: list[str] = []
    editor.confirm_rederive = lambda _w, text, _lang: asked.append(text) or True
    _type_id(qtbot, editor, factories.id_number(dt.date(1990, 3, 7), 124))  # a woman
    assert (editor.values()["birth_date"], editor.values()["gender"]) == ("1990-03-07", "2")
    _type_id(qtbot, editor, factories.id_number(dt.date(1991, 4, 8), 125))  # corrected: a man
    assert (editor.values()["birth_date"], editor.values()["gender"]) == ("1991-04-08", "1")
    assert asked == []  # those were derived: nothing to ask


@pytest.mark.parametrize("answer", [True, False])
def test_a_corrected_id_number_asks_before_replacing_a_typed_value(
    qtbot,  # noqa: ANN001
    open_editor,  # noqa: ANN001, F811
    answer: bool,
) -> None:
    editor = open_editor()
    asked: list[str] = []
    editor.confirm_rederive = lambda _w, text, _lang: asked.append(text) or answer
    _type_id(qtbot, editor, factories.id_number(dt.date(1990, 3, 7), 124))
    birth = editor.widget("birth_date").focus_target()
    _focus(qtbot, birth)
    birth.selectAll()
    qtbot.keyClicks(birth, "1990-03-08")  # the worker types over the derived date
    qtbot.keyClick(birth, Qt.Key.Key_Return)
    _type_id(qtbot, editor, factories.id_number(dt.date(1991, 4, 8), 124))
    assert len(asked) == 1 and "出生日期" in asked[0] and "1990-03-08" in asked[0]
    assert "性别" not in asked[0]  # gender was derived and agrees: no question
    assert editor.values()["birth_date"] == ("1991-04-08" if answer else "1990-03-08")


@pytest.mark.parametrize(
    ("form", "address_field"), [("unit", "address_text"), ("resident", "residence_address")]
)
def test_picking_a_house_fills_its_address_grid_and_area(
    qtbot,  # noqa: ANN001
    open_editor,  # noqa: ANN001, F811
    store: Store,
    form: str,
    address_field: str,
) -> None:
    store.put_grid(Grid(GRID, "第一网格", "330106001", "云溪社区"))
    house = store.save(
        "house", {"house_code": "H1", "address_text": ADDRESS, "grid": GRID, "owner_name": "甲"}
    ).id
    editor = open_editor(form)
    picker = editor.widget("house_ref")
    _focus(qtbot, picker.focus_target())
    type_text(qtbot, picker.focus_target(), "ttya")
    qtbot.waitUntil(lambda: picker.completer.popup().isVisible())
    qtbot.keyClick(picker.completer.popup(), Qt.Key.Key_Down)
    qtbot.keyClick(picker.completer.popup(), Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: editor.values().get("house_ref") == house)
    values = editor.values()
    assert values[address_field] == ADDRESS
    assert values["grid"] == GRID
    if form == "resident":
        assert values["residence_region"] == "330106"  # the county of the grid
